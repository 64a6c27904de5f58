# The MLP forward pass over a tile of rows, shared with the fused pixel-feature
# scorer (``_pixfeat.pixel_mlp_scores``), which cimports it: one implementation,
# so both paths give the same numbers for the same rows.

cdef void forward_tile(
    float* tile, Py_ssize_t t, const float* weights, const float* biases, const Py_ssize_t* sizes,
    Py_ssize_t n_layers, int code, float* act0, float* act1,
) noexcept nogil
