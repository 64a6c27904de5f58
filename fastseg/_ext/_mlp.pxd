# The MLP forward pass over a tile of rows, shared with the fused pixel-feature
# scorer (``_pixfeat.pixel_mlp_scores``), which cimports it: one implementation,
# so both paths give the same numbers for the same rows.  A linear model is the
# network without hidden layers (output: identity for decision values, logistic
# for logistic regression's probabilities).

cdef void forward_tile(
    float* tile, Py_ssize_t t, const float* weights, const float* biases, const Py_ssize_t* sizes,
    Py_ssize_t n_layers, int code, int output, float* act0, float* act1,
) noexcept nogil
