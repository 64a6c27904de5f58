# The MLP forward pass over a tile of rows, shared with the fused pixel-feature
# scorer (``_pixfeat.pixel_network_scores``), which cimports it: one implementation,
# so both paths give the same numbers for the same rows.  A linear model is the
# network without hidden layers (output: identity for decision values, logistic
# for logistic regression's probabilities).  Inline, so each module that cimports
# it compiles it with its own flags (the AVX2 build of ``_pixfeat`` with AVX2 and FMA,
# no multiply-add fused: the same bits); the matrix products are BLAS's either way.

from libc.math cimport expf, tanhf
from scipy.linalg.cython_blas cimport sgemm

cdef enum:
    ACT_IDENTITY = 0
    ACT_RELU = 1
    ACT_TANH = 2
    ACT_LOGISTIC = 3


cdef inline void activate(float* a, Py_ssize_t n, const float* bias, Py_ssize_t t, int code) noexcept nogil:
    """``a[i, j] = act(a[i, j] + bias[j])`` in place for a row-major (t, n) block."""
    cdef Py_ssize_t i, j
    cdef float z
    cdef float* row
    for i in range(t):
        row = a + i * n
        if code == ACT_RELU:
            for j in range(n):
                z = row[j] + bias[j]
                row[j] = z if z > 0 else 0
        elif code == ACT_TANH:
            for j in range(n):
                row[j] = tanhf(row[j] + bias[j])
        elif code == ACT_LOGISTIC:
            for j in range(n):
                row[j] = 1 / (1 + expf(-(row[j] + bias[j])))
        else:
            for j in range(n):
                row[j] = row[j] + bias[j]


cdef inline void relu_dot(const float* a, Py_ssize_t t, Py_ssize_t n, const float* bias, const float* w,
                          float* out) noexcept nogil:
    """``out[i] = sum_j relu(a[i, j] + bias[j]) w[j]`` for a row-major (t, n) block: a ReLU layer and
    the one output unit after it in one pass (no BLAS call for a matrix-vector product, no write of
    the activations).  Eight partial sums per row (j mod 8, kept in vector registers), added
    pairwise, then the last n mod 8 terms in order."""
    cdef Py_ssize_t i, j, q, n8 = n - n % 8
    cdef const float* row
    cdef float s[8]
    cdef float z, r
    for i in range(t):
        row = a + i * n
        for q in range(8):
            s[q] = 0
        for j in range(0, n8, 8):
            for q in range(8):
                z = row[j + q] + bias[j + q]
                s[q] += (z if z > 0 else 0) * w[j + q]
        r = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]))
        for j in range(n8, n):
            z = row[j] + bias[j]
            r += (z if z > 0 else 0) * w[j]
        out[i] = r


cdef inline void forward_tile(
    float* tile,                   # IN  (t, sizes[0]) windows
    Py_ssize_t t,
    const float* weights,          # IN  layers' (n_in, n_out) row-major matrices, concatenated
    const float* biases,           # IN  layers' biases, concatenated
    const Py_ssize_t* sizes,       # IN  (n_layers + 1,) widths, last = 1
    Py_ssize_t n_layers,
    int code,                      #     hidden activation
    int output,                    #     the output unit's activation (logistic for a binary MLP)
    float* act0, float* act1,      # SCRATCH (t * max width,) each
) noexcept nogil:
    """Run the tile through all layers; the outputs end up in the first t floats of ``act0`` if
    ``n_layers`` is odd, else of ``act1``."""
    cdef char transa = b'N', transb = b'N'
    cdef float alpha = 1, beta = 0
    cdef int m, n = <int>t, kk, lda, ldb, ldc
    cdef float* src = tile
    cdef float* dst = act0
    cdef Py_ssize_t layer
    for layer in range(n_layers):
        # Row-major (t, n_in) @ (n_in, n_out) = column-major (n_out, n_in) x (n_in, t).
        kk = <int>sizes[layer]
        m = <int>sizes[layer + 1]
        if layer == n_layers - 1 and layer > 0 and code == ACT_RELU:
            # the output unit after a ReLU layer, whose pre-activations src holds: both in one pass
            relu_dot(src, t, kk, biases - kk, weights, dst)
            activate(dst, 1, biases, t, output)
            break
        lda = m
        ldb = kk
        ldc = m
        sgemm(&transa, &transb, &m, &n, &kk, &alpha, <float*>weights, &lda, src, &ldb, &beta, dst, &ldc)
        if not (layer == n_layers - 2 and sizes[n_layers] == 1 and code == ACT_RELU):
            activate(dst, m, biases, t, code if layer < n_layers - 1 else output)
        weights += sizes[layer] * sizes[layer + 1]
        biases += sizes[layer + 1]
        src = dst
        dst = act1 if dst == act0 else act0
    return
