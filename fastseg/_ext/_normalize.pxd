# One slice's brain normalisation, shared with the fused pixel scorer (``_pixfeat.pixel_network_scores``),
# which cimports it to normalise each slice into a buffer that stays in cache: one implementation, so
# both paths give the same numbers.

cdef bint normalize_one(
    const float* image, const unsigned char* brain, Py_ssize_t P, Py_ssize_t C, float* out,
    double* mean, double* std, double min_std,
) noexcept nogil
