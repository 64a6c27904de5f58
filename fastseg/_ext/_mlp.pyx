"""Fused MLP scoring: tile gather of windows + BLAS, never the whole feature matrix.

Each image is padded once (``_padded.pad_image``); then up to ``T`` selected
pixels at a time (raster order) have their k x k x C windows copied into a
``(T, k*k*C)`` tile that stays in cache.  The tile goes through every layer
(``sgemm`` from ``scipy.linalg.cython_blas`` for the matrix products, then bias
and activation in place), and the final logistic unit's values are written to
the tile's pixels.  Layer weights are row-major ``(n_in, n_out)`` as in
``MLPClassifier.coefs_``; read as column-major they are the transposed
matrices BLAS wants, so no copies are made.

Compiler directives are set once, in setup.py.
"""

from ._padded cimport check_pad_maps, copy_window, pad_image


cdef inline Py_ssize_t gather_generic(
    const float* padded, Py_ssize_t stop, Py_ssize_t W, const unsigned char* mask,
    Py_ssize_t* pos, Py_ssize_t T, float* tile, Py_ssize_t* index,
    const Py_ssize_t k, const Py_ssize_t C,
) noexcept nogil:
    cdef Py_ssize_t row_len = (W + k - 1) * C
    cdef Py_ssize_t F = k * k * C
    cdef Py_ssize_t p = pos[0], t = 0, y, x
    while p < stop and t < T:
        if mask == NULL or mask[p]:
            y = p // W
            x = p - y * W
            copy_window(padded + y * row_len + x * C, row_len, tile + t * F, k, C)
            index[t] = p
            t += 1
        p += 1
    pos[0] = p
    return t


cdef Py_ssize_t gather_tile(
    const float* padded,           # IN  (H + 2r, W + 2r, C) padded image
    Py_ssize_t stop, Py_ssize_t W, #     scan raster positions below ``stop``; image width
    const unsigned char* mask,     # IN  (H, W) non-zero = score, or NULL = all
    Py_ssize_t* pos,               # IN/OUT raster position to resume from
    Py_ssize_t T,
    float* tile,                   # OUT (T, k*k*C) windows of the next selected pixels
    Py_ssize_t* index,             # OUT (T,) their raster positions
    Py_ssize_t k, Py_ssize_t C,
) noexcept nogil:
    """Gather the windows of up to ``T`` selected pixels from ``pos`` on; return how many."""
    # Literal window sizes for four channels let the compiler unroll the copies.
    if C == 4:
        if k == 3:
            return gather_generic(padded, stop, W, mask, pos, T, tile, index, 3, 4)
        elif k == 5:
            return gather_generic(padded, stop, W, mask, pos, T, tile, index, 5, 4)
        elif k == 7:
            return gather_generic(padded, stop, W, mask, pos, T, tile, index, 7, 4)
    return gather_generic(padded, stop, W, mask, pos, T, tile, index, k, C)


def mlp_scores(
    const float[:, :, :, ::1] images not None,   # IN      (N, H, W, C)
    const Py_ssize_t[::1] rowmap not None,       # IN      (H + 2r,) padding row map
    const Py_ssize_t[::1] colmap not None,       # IN      (W + 2r,) padding column map
    Py_ssize_t k,
    const float[::1] weights not None,           # IN      layers' (n_in, n_out) matrices, row-major, concatenated
    const float[::1] biases not None,            # IN      layers' biases, concatenated
    const Py_ssize_t[::1] sizes not None,        # IN      (n_layers + 1,) widths: k*k*C, hidden..., 1
    int activation,                              #         hidden activation: 0 identity, 1 relu, 2 tanh, 3 logistic
    const unsigned char[:, :, ::1] mask,         # IN      (N, H, W) non-zero = score, or None = all
    float fill_value,
    float[:, :, ::1] out not None,               # OUT     (N, H, W) positive-class probabilities
    float[:, :, ::1] padded not None,            # SCRATCH (H + 2r, W + 2r, C)
    float[:, ::1] tile not None,                 # SCRATCH (T, k*k*C) window tile
    float[:, ::1] act not None,                  # SCRATCH (2, T * max(sizes[1:])) activations
    Py_ssize_t[::1] index not None,              # SCRATCH (>= T,) raster positions of the tile's pixels
    Py_ssize_t pos_start,                        #         score raster positions [pos_start, pos_stop)
    Py_ssize_t pos_stop,                         #         of each image
):
    """Write the MLP's logistic output for every (selected) pixel into ``out``; others get ``fill_value``.

    Only raster positions ``pos_start .. pos_stop - 1`` of each image are written,
    so that threads can share one image (each pads the whole image into its own
    scratch).  Tiles are consecutive runs of ``T`` selected pixels from
    ``pos_start``: callers that split an image start each part on a tile boundary
    of the whole image, so the GEMMs, and the results, are the same.
    """
    cdef Py_ssize_t N = images.shape[0], H = images.shape[1], W = images.shape[2]
    cdef Py_ssize_t C = images.shape[3]
    cdef Py_ssize_t r = k // 2
    cdef Py_ssize_t F = k * k * C
    cdef Py_ssize_t T = tile.shape[0]
    cdef Py_ssize_t n_layers = sizes.shape[0] - 1
    cdef Py_ssize_t n_weights = 0, n_biases = 0, widest = 1
    cdef Py_ssize_t i, n, t, pos
    cdef bint has_mask = mask is not None
    cdef const unsigned char* mask_ptr = NULL
    cdef float* proba
    cdef float* image_out
    if k < 1 or k % 2 == 0:
        raise ValueError(f"k must be odd and >= 1, got {k}")
    check_pad_maps(rowmap, colmap, H, W, r)
    if n_layers < 1 or sizes[0] != F or sizes[n_layers] != 1:
        raise ValueError(f"sizes must run from k*k*C = {F} to 1")
    for i in range(n_layers):
        if sizes[i + 1] < 1 or sizes[i + 1] > 2147483647 or sizes[i] > 2147483647:
            raise ValueError("layer widths must be in 1 .. 2**31 - 1")
        n_weights += sizes[i] * sizes[i + 1]
        n_biases += sizes[i + 1]
        widest = max(widest, sizes[i + 1])
    if weights.shape[0] != n_weights or biases.shape[0] != n_biases:
        raise ValueError(f"weights/biases must hold {n_weights}/{n_biases} values for these sizes")
    if out.shape[0] != N or out.shape[1] != H or out.shape[2] != W:
        raise ValueError(f"out must have shape {(N, H, W)}, got {tuple(out.shape)[:3]}")
    if has_mask and (mask.shape[0] != N or mask.shape[1] != H or mask.shape[2] != W):
        raise ValueError(f"mask must have shape {(N, H, W)}, got {tuple(mask.shape)[:3]}")
    if padded.shape[0] != H + 2 * r or padded.shape[1] != W + 2 * r or padded.shape[2] != C:
        raise ValueError(f"padded must have shape {(H + 2 * r, W + 2 * r, C)}")
    if T < 1 or T > 2147483647 or tile.shape[1] != F:
        raise ValueError(f"tile must have shape (T, {F}) with 1 <= T < 2**31")
    if act.shape[0] != 2 or act.shape[1] < T * widest:
        raise ValueError(f"act must have shape (2, >= {T * widest})")
    if index.shape[0] < T:
        raise ValueError(f"index must hold at least {T} positions")
    if not 0 <= pos_start <= pos_stop <= H * W:
        raise ValueError(f"positions must satisfy 0 <= pos_start <= pos_stop <= {H * W}, got {pos_start}, {pos_stop}")
    if N * H * W == 0 or pos_start == pos_stop:
        return
    with nogil:
        for n in range(N):
            image_out = &out[n, 0, 0]
            if has_mask:
                mask_ptr = &mask[n, 0, 0]
                for i in range(pos_start, pos_stop):
                    if not mask_ptr[i]:
                        image_out[i] = fill_value
            pad_image(&images[n, 0, 0, 0], H, W, C, &rowmap[0], &colmap[0], r, &padded[0, 0, 0])
            pos = pos_start
            while True:
                t = gather_tile(&padded[0, 0, 0], pos_stop, W, mask_ptr, &pos, T, &tile[0, 0], &index[0], k, C)
                if t == 0:
                    break
                forward_tile(&tile[0, 0], t, &weights[0], &biases[0], &sizes[0], n_layers, activation, ACT_LOGISTIC,
                             &act[0, 0], &act[1, 0])
                proba = &act[0, 0] if n_layers % 2 == 1 else &act[1, 0]
                for i in range(t):
                    image_out[index[i]] = proba[i]


def mlp_rows(
    const float[:, ::1] rows not None,           # IN      (n, sizes[0]) feature rows
    const float[::1] weights not None,           # IN      layers' (n_in, n_out) matrices, concatenated
    const float[::1] biases not None,            # IN      layers' biases, concatenated
    const Py_ssize_t[::1] sizes not None,        # IN      (n_layers + 1,) widths, last = 1
    int code,                                    #         hidden activation
    float[::1] out not None,                     # OUT     (n,) probabilities
    float[:, ::1] act not None,                  # SCRATCH (2, tile_rows * widest layer)
    Py_ssize_t tile_rows,
    int output=ACT_LOGISTIC,                     #         the output unit's activation code
):
    """Probability of the positive class for each feature row: the MLP run in blocks of ``tile_rows`` rows
    straight from ``rows`` (no gather: the rows already are the network's input).  With ``output`` 0
    (identity) the output unit's value itself: a linear model's decision value, for sizes (F, 1)."""
    cdef Py_ssize_t n = rows.shape[0], n_layers = sizes.shape[0] - 1, start, t, j, widest = 0, n_weights = 0, n_biases = 0
    cdef float* result
    if n_layers < 1 or sizes[n_layers] != 1 or sizes[0] != rows.shape[1]:
        raise ValueError("sizes must start with the rows' width and end with 1")
    for j in range(n_layers):
        if sizes[j + 1] < 1:
            raise ValueError("layer widths must be >= 1")
        widest = max(widest, sizes[j + 1])
        n_weights += sizes[j] * sizes[j + 1]
        n_biases += sizes[j + 1]
    if weights.shape[0] != n_weights or biases.shape[0] != n_biases:
        raise ValueError("weights and biases must match sizes")
    if out.shape[0] != n or tile_rows < 1 or act.shape[0] != 2 or act.shape[1] < tile_rows * widest:
        raise ValueError("out must have one entry per row and act shape (2, >= tile_rows * widest)")
    if not ACT_IDENTITY <= output <= ACT_LOGISTIC:
        raise ValueError(f"output must be an activation code 0-3, got {output}")
    if n == 0 or rows.shape[1] == 0:
        return
    with nogil:
        start = 0
        while start < n:
            t = min(tile_rows, n - start)
            forward_tile(<float*>&rows[start, 0], t, &weights[0], &biases[0], &sizes[0], n_layers, code,
                         output, &act[0, 0], &act[1, 0])
            result = &act[0, 0] if n_layers % 2 == 1 else &act[1, 0]
            for j in range(t):
                out[start + j] = result[j]
            start += t
