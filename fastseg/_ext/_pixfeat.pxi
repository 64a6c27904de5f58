# The pixel-feature kernels: included by _pixfeat.pyx (baseline build) and _pixfeat_avx2.pyx
# (built with AVX2); see _pixfeat.pyx's docstring.

from libc.math cimport fabs, sqrtf
from libc.stdint cimport uint64_t
from libc.string cimport memcpy, memmove, memset
from libc.stdlib cimport malloc, free

from ._mlp cimport forward_tile
from ._normalize cimport normalize_one
from ._padded cimport check_pad_maps


cdef inline void _integral_row_c(const float* img, const unsigned char* inside, Py_ssize_t W, Py_ssize_t C,
                                 Py_ssize_t yi, Py_ssize_t c0, Py_ssize_t w, const Py_ssize_t* mirror,
                                 const double* P1, double* I1, const double* P2, double* I2,
                                 const double* Pd, double* Id, double* acc) noexcept nogil:
    """One row of the integral images over the box columns [c0, c0 + w) of image row ``yi``, pixels
    outside the brain as 0: I1 = P1 + the running row sums of x, I2 = P2 + those of x * x (if I2 is not
    NULL), Id = Pd + those of x - x[mirror] (if Id is not NULL); P* the integral rows above, each row
    (w + 1) C values.  ``acc`` holds 3 C running row sums."""
    cdef Py_ssize_t x, c, here, p, q
    cdef double* a1 = acc
    cdef double* a2 = acc + C
    cdef double* ad = acc + 2 * C
    cdef const float* src
    cdef const float* mir
    for c in range(3 * C):
        acc[c] = 0.0
    for c in range(C):
        I1[c] = 0.0
        if I2 != NULL:
            I2[c] = 0.0
        if Id != NULL:
            Id[c] = 0.0
    for x in range(w):
        p = yi * W + c0 + x
        src = img + p * C
        here = (x + 1) * C
        if inside[p]:
            for c in range(C):
                a1[c] += src[c]
            if I2 != NULL:
                for c in range(C):
                    a2[c] += <double>src[c] * src[c]
            if Id != NULL:
                for c in range(C):
                    ad[c] += src[c]
                q = yi * W + mirror[c0 + x]
                if inside[q]:
                    mir = img + q * C
                    for c in range(C):
                        ad[c] -= mir[c]
        for c in range(C):
            I1[here + c] = P1[here + c] + a1[c]
        if I2 != NULL:
            for c in range(C):
                I2[here + c] = P2[here + c] + a2[c]
        if Id != NULL:
            for c in range(C):
                Id[here + c] = Pd[here + c] + ad[c]


cdef void _integral_row4(const float* img, const unsigned char* inside, Py_ssize_t W,
                         Py_ssize_t yi, Py_ssize_t c0, Py_ssize_t w, const Py_ssize_t* mirror,
                         const double* P1, double* I1, const double* P2, double* I2,
                         const double* Pd, double* Id) noexcept nogil:
    """``_integral_row_c`` for four channels, the same sums in the same order, with the running row sums
    in local variables: in ``acc`` (memory that may alias the integral images, as far as the compiler
    knows) every addition went through a store and a reload."""
    cdef Py_ssize_t x, here, p, q
    cdef double a0, a1, a2, a3, s0, s1, s2, s3, d0, d1, d2, d3
    cdef const float* src
    cdef const float* mir
    a0 = a1 = a2 = a3 = s0 = s1 = s2 = s3 = d0 = d1 = d2 = d3 = 0.0
    for x in range(4):
        I1[x] = 0.0
        if I2 != NULL:
            I2[x] = 0.0
        if Id != NULL:
            Id[x] = 0.0
    for x in range(w):
        p = yi * W + c0 + x
        here = (x + 1) * 4
        if inside[p]:
            src = img + p * 4
            a0 += src[0]
            a1 += src[1]
            a2 += src[2]
            a3 += src[3]
            if I2 != NULL:
                s0 += <double>src[0] * src[0]
                s1 += <double>src[1] * src[1]
                s2 += <double>src[2] * src[2]
                s3 += <double>src[3] * src[3]
            if Id != NULL:
                d0 += src[0]
                d1 += src[1]
                d2 += src[2]
                d3 += src[3]
                q = yi * W + mirror[c0 + x]
                if inside[q]:
                    mir = img + q * 4
                    d0 -= mir[0]
                    d1 -= mir[1]
                    d2 -= mir[2]
                    d3 -= mir[3]
        I1[here] = P1[here] + a0
        I1[here + 1] = P1[here + 1] + a1
        I1[here + 2] = P1[here + 2] + a2
        I1[here + 3] = P1[here + 3] + a3
        if I2 != NULL:
            I2[here] = P2[here] + s0
            I2[here + 1] = P2[here + 1] + s1
            I2[here + 2] = P2[here + 2] + s2
            I2[here + 3] = P2[here + 3] + s3
        if Id != NULL:
            Id[here] = Pd[here] + d0
            Id[here + 1] = Pd[here + 1] + d1
            Id[here + 2] = Pd[here + 2] + d2
            Id[here + 3] = Pd[here + 3] + d3


cdef void _integral_row(const float* img, const unsigned char* inside, Py_ssize_t W, Py_ssize_t C,
                        Py_ssize_t yi, Py_ssize_t c0, Py_ssize_t w, const Py_ssize_t* mirror,
                        const double* P1, double* I1, const double* P2, double* I2,
                        const double* Pd, double* Id, double* acc) noexcept nogil:
    """``_integral_row_c``; with C = 4 (every MRI slice), ``_integral_row4``."""
    if C == 4:
        _integral_row4(img, inside, W, yi, c0, w, mirror, P1, I1, P2, I2, Pd, Id)
    else:
        _integral_row_c(img, inside, W, C, yi, c0, w, mirror, P1, I1, P2, I2, Pd, Id, acc)


cdef inline Py_ssize_t _clip(Py_ssize_t v, Py_ssize_t hi) noexcept nogil:
    return 0 if v < 0 else (hi if v > hi else v)


cdef inline double* _ring(double* I, Py_ssize_t i, Py_ssize_t R, Py_ssize_t stride) noexcept nogil:
    """Row ``i`` of an integral image kept in a ring of ``R`` rows of ``stride`` values."""
    return I + (i % R) * stride


cdef inline void _row_boxes_c(const double* top, const double* bot, Py_ssize_t C,
                     Py_ssize_t w, Py_ssize_t lo, Py_ssize_t span, Py_ssize_t n, double* res) noexcept nogil:
    """Box sums along a row: res[i C + c] = the sum of channel c over the rows between the integral
    image's rows ``top`` and ``bot`` and columns [clip(lo + i), clip(lo + i + span)) of its region, for
    i < n (the four reads of the integral image, in the same order, for every i at once)."""
    cdef const double* t0
    cdef const double* t1
    cdef const double* b0
    cdef const double* b1
    cdef Py_ssize_t i, c, j, x0, x1
    cdef Py_ssize_t i0 = _clip(-lo, n), i1 = _clip(w - span - lo + 1, n)
    if i1 < i0:
        i1 = i0
    for i in range(i0):
        x0, x1 = _clip(lo + i, w) * C, _clip(lo + i + span, w) * C
        for c in range(C):
            res[i * C + c] = (bot[x1 + c] - top[x1 + c]) - (bot[x0 + c] - top[x0 + c])
    # the interior, where nothing is clipped: one contiguous loop the compiler vectorises
    t0, t1 = top + lo * C, top + (lo + span) * C
    b0, b1 = bot + lo * C, bot + (lo + span) * C
    for j in range(i0 * C, i1 * C):
        res[j] = (b1[j] - t1[j]) - (b0[j] - t0[j])
    for i in range(i1, n):
        x0, x1 = _clip(lo + i, w) * C, _clip(lo + i + span, w) * C
        for c in range(C):
            res[i * C + c] = (bot[x1 + c] - top[x1 + c]) - (bot[x0 + c] - top[x0 + c])


cdef void _row_boxes(const double* top, const double* bot, Py_ssize_t C,
                     Py_ssize_t w, Py_ssize_t lo, Py_ssize_t span, Py_ssize_t n, double* res) noexcept nogil:
    """``_row_boxes_c`` with C = 4 (every MRI slice) a constant the compiler unrolls and vectorises."""
    if C == 4:
        _row_boxes_c(top, bot, 4, w, lo, span, n, res)
    else:
        _row_boxes_c(top, bot, C, w, lo, span, n, res)


cdef inline void _put_c(const double* src, Py_ssize_t n, Py_ssize_t C, double scale, bint root,
               float* tmp, float* ctx, Py_ssize_t Fc) noexcept nogil:
    """ctx[i Fc + c] = float(src[i C + c] * scale), or its square root if ``root``, for i < n."""
    cdef Py_ssize_t i, c
    for i in range(n * C):
        tmp[i] = <float>(src[i] * scale)
    if root:
        for i in range(n * C):
            tmp[i] = sqrtf(tmp[i])
    for i in range(n):
        for c in range(C):
            ctx[i * Fc + c] = tmp[i * C + c]


cdef void _put(const double* src, Py_ssize_t n, Py_ssize_t C, double scale, bint root,
               float* tmp, float* ctx, Py_ssize_t Fc) noexcept nogil:
    """``_put_c`` with C = 4 (every MRI slice) a constant the compiler unrolls and vectorises."""
    if C == 4:
        _put_c(src, n, 4, scale, root, tmp, ctx, Fc)
    else:
        _put_c(src, n, C, scale, root, tmp, ctx, Fc)


cdef inline void _asym_c(const float* img, const unsigned char* inside, Py_ssize_t base, Py_ssize_t xa,
                         Py_ssize_t m, const Py_ssize_t* mirror, Py_ssize_t C, float* cx, Py_ssize_t cs) noexcept nogil:
    """cx[i cs + c] = the pixel's value minus its mirror's (the value itself if the mirror is not brain,
    0 outside the brain) for the pixels xa .. xa + m - 1 of the image row starting at pixel ``base``."""
    cdef Py_ssize_t i, c, p, q
    for i in range(m):
        p = base + xa + i
        q = base + mirror[xa + i]
        cell = cx + i * cs
        if not inside[p]:
            for c in range(C):
                cell[c] = 0.0
        elif inside[q]:
            for c in range(C):
                cell[c] = img[p * C + c] - img[q * C + c]
        else:
            for c in range(C):
                cell[c] = img[p * C + c]


cdef void _asym(const float* img, const unsigned char* inside, Py_ssize_t base, Py_ssize_t xa,
                Py_ssize_t m, const Py_ssize_t* mirror, Py_ssize_t C, float* cx, Py_ssize_t cs) noexcept nogil:
    """``_asym_c`` with C = 4 (every MRI slice) a constant the compiler unrolls and vectorises."""
    if C == 4:
        _asym_c(img, inside, base, xa, m, mirror, 4, cx, cs)
    else:
        _asym_c(img, inside, base, xa, m, mirror, C, cx, cs)


def scratch_size(Py_ssize_t H, Py_ssize_t W, Py_ssize_t C, Py_ssize_t n_columns):
    """Number of float64 values of scratch pixel_context needs for (H, W, C) images and
    ``n_columns`` context columns: room for four integral images (three of them used as rings
    of rows, whose pages beyond the rings are never touched), then row buffers."""
    return 4 * (H + 1) * (W + 1) * C + 3 * C + 5 * W * C + W * n_columns


def n_context_columns(Py_ssize_t C, Py_ssize_t k, Py_ssize_t n_means, Py_ssize_t n_stds,
                      bint asymmetry, bint gradient, bint position, Py_ssize_t n_boxes):
    """Number of columns the kernel writes for these families."""
    return (C * (k * k + n_means + n_stds + 2 * asymmetry + gradient)
            + (2 + n_boxes if position else 0))


cdef int _check_context(
    const float[:, :, :, ::1] images, const unsigned char[:, :, ::1] brain, const unsigned char[:, :, ::1] rows,
    const Py_ssize_t[::1] row_start, const Py_ssize_t[:, ::1] mirror, const Py_ssize_t[:, ::1] bbox,
    const Py_ssize_t[::1] mean_sizes, const Py_ssize_t[::1] std_sizes, const Py_ssize_t[::1] brain_boxes,
    Py_ssize_t k, const Py_ssize_t[::1] rowmap, const Py_ssize_t[::1] colmap,
    bint asymmetry, Py_ssize_t asymmetry_box, Py_ssize_t gradient_size, Py_ssize_t n0, Py_ssize_t n1,
) except -1:
    """Raise ValueError unless the arguments every context kernel shares are consistent (checked
    before the GIL is released)."""
    cdef Py_ssize_t N = images.shape[0], H = images.shape[1], W = images.shape[2]
    cdef Py_ssize_t SM = mean_sizes.shape[0], SS = std_sizes.shape[0], SB = brain_boxes.shape[0]
    cdef Py_ssize_t n, x, j
    if brain.shape[0] != N or brain.shape[1] != H or brain.shape[2] != W:
        raise ValueError("brain must have the images' (N, H, W)")
    if rows.shape[0] != N or rows.shape[1] != H or rows.shape[2] != W:
        raise ValueError("rows must have the images' (N, H, W)")
    if row_start.shape[0] != N + 1 or mirror.shape[0] != N or mirror.shape[1] != W:
        raise ValueError("row_start must have N + 1 entries and mirror shape (N, W)")
    if bbox.shape[0] != N or bbox.shape[1] != 4:
        raise ValueError("bbox must have shape (N, 4)")
    if not (0 <= n0 <= n1 <= N):
        raise ValueError("need 0 <= n0 <= n1 <= N")
    for j in range(SM):
        if mean_sizes[j] < 1 or mean_sizes[j] % 2 == 0:
            raise ValueError("box sizes must be odd and >= 1")
    for j in range(SS):
        if std_sizes[j] < 1 or std_sizes[j] % 2 == 0:
            raise ValueError("box sizes must be odd and >= 1")
    for j in range(SB):
        if brain_boxes[j] < 1 or brain_boxes[j] % 2 == 0:
            raise ValueError("box sizes must be odd and >= 1")
    if k < 0 or (k and k % 2 == 0):
        raise ValueError("k must be 0 or odd")
    check_pad_maps(rowmap, colmap, H, W, k // 2)
    if gradient_size and (gradient_size < 3 or gradient_size % 2 == 0):
        raise ValueError("gradient_size must be 0 or odd and >= 3")
    if asymmetry and (asymmetry_box < 1 or asymmetry_box % 2 == 0):
        raise ValueError("asymmetry_box must be odd and >= 1")
    for n in range(n0, n1):
        if row_start[n + 1] < row_start[n]:
            raise ValueError("row_start must be non-decreasing")
        if not (0 <= bbox[n, 0] <= bbox[n, 1] < H and 0 <= bbox[n, 2] <= bbox[n, 3] < W):
            raise ValueError("bbox must lie in the image")
        for x in range(W):
            if mirror[n, x] < 0 or mirror[n, x] >= W:
                raise ValueError("mirror columns must lie in the image")
    return 0


cdef double* _inverse_areas(const Py_ssize_t[::1] mean_sizes, const Py_ssize_t[::1] std_sizes,
                            const Py_ssize_t[::1] brain_boxes) except NULL:
    """1 / s^2 of every box size (means, stds, brain boxes), in that order; the caller frees it."""
    cdef Py_ssize_t SM = mean_sizes.shape[0], SS = std_sizes.shape[0], SB = brain_boxes.shape[0], j
    cdef double* inv_area = <double*>malloc((SM + SS + SB + 1) * sizeof(double))
    if inv_area == NULL:
        raise MemoryError()
    for j in range(SM):
        inv_area[j] = 1.0 / <double>(mean_sizes[j] * mean_sizes[j])
    for j in range(SS):
        inv_area[SM + j] = 1.0 / <double>(std_sizes[j] * std_sizes[j])
    for j in range(SB):
        inv_area[SM + SS + j] = 1.0 / <double>(brain_boxes[j] * brain_boxes[j])
    return inv_area


def pixel_context(
    const float[:, :, :, ::1] images not None,       # IN  (N, H, W, C)
    const unsigned char[:, :, ::1] brain not None,   # IN  (N, H, W) 0/1
    const unsigned char[:, :, ::1] rows not None,    # IN  (N, H, W) 0/1: pixels to describe
    const Py_ssize_t[::1] row_start not None,        # IN  (N + 1,) first output row of each image
    const Py_ssize_t[:, ::1] mirror not None,        # IN  (N, W) mirror column of each column
    const Py_ssize_t[:, ::1] bbox not None,          # IN  (N, 4) brain rows [r0, r1], columns [c0, c1]
    const Py_ssize_t[::1] mean_sizes not None,
    const Py_ssize_t[::1] std_sizes not None,
    const Py_ssize_t[::1] brain_boxes not None,
    Py_ssize_t k,
    const Py_ssize_t[::1] rowmap not None,          # IN  (H + 2 (k // 2),) window rows, pad_index
    const Py_ssize_t[::1] colmap not None,          # IN  (W + 2 (k // 2),) window columns, pad_index
    bint asymmetry, Py_ssize_t asymmetry_box, Py_ssize_t gradient_size, bint position,
    float[:, ::1] out not None,                      # OUT (n_rows, >= offset + columns)
    Py_ssize_t offset,
    double[::1] scratch not None,                    # SCRATCH >= scratch_size(H, W, C, columns)
    Py_ssize_t n0, Py_ssize_t n1,                    # images [n0, n1) only
):
    """Write the context columns of every requested pixel of images n0 .. n1 - 1 into ``out``.

    Box statistics count pixels outside the brain as 0, so the integral images
    only span the brain's bounding box (an empty brain: every statistic is 0).
    """
    cdef Py_ssize_t N = images.shape[0], H = images.shape[1], W = images.shape[2], C = images.shape[3]
    cdef Py_ssize_t SM = mean_sizes.shape[0], SS = std_sizes.shape[0], SB = brain_boxes.shape[0]
    cdef Py_ssize_t F = n_context_columns(C, k, SM, SS, asymmetry, gradient_size > 0, position, SB)
    cdef double inv_asym, inv_grad
    cdef double* inv_area = NULL
    # preconditions, checked before the GIL is released
    _check_context(images, brain, rows, row_start, mirror, bbox, mean_sizes, std_sizes, brain_boxes, k,
                   rowmap, colmap, asymmetry, asymmetry_box, gradient_size, n0, n1)
    if offset < 0 or out.shape[1] < offset + F or row_start[0] < 0 or row_start[N] > out.shape[0]:
        raise ValueError(f"out must have the rows of row_start and at least {offset + F} columns")
    if scratch.shape[0] < scratch_size(H, W, C, F):
        raise ValueError(f"scratch must hold scratch_size(H, W, C, {F}) values")
    if H * W * C == 0:
        return
    inv_area = _inverse_areas(mean_sizes, std_sizes, brain_boxes)
    inv_asym = 1.0 / <double>(asymmetry_box * asymmetry_box) if asymmetry else 0.0
    inv_grad = 1.0 / <double>(gradient_size * (gradient_size // 2)) if gradient_size else 0.0
    try:
        _pixel_rows(images, brain, rows, row_start, mirror, bbox, mean_sizes, std_sizes, brain_boxes, k, rowmap, colmap,
                    asymmetry, asymmetry_box, gradient_size, position, out, offset, 0, scratch, n0, n1,
                    inv_area, inv_asym, inv_grad, NULL, NULL)
    finally:
        free(inv_area)


cdef struct _Scorer:
    # what pixel_mlp_scores hands _pixel_rows to score rows as they are made (tile by tile)
    const float* weights
    const float* biases
    const Py_ssize_t* sizes
    Py_ssize_t n_layers
    int activation
    int output
    float* act0
    float* act1
    Py_ssize_t tile_rows
    float* scores                # (N, H, W) the output
    Py_ssize_t P                 # H W
    const unsigned char* want    # the current image's requested pixels
    float* dst                   # ... and its scores
    Py_ssize_t p                 # the next pixel to write


cdef void _score_rows(_Scorer* sc, float* rows, Py_ssize_t t) noexcept nogil:
    """Score ``t`` <= tile_rows rows through the network; write each output to the next requested pixel
    (rows are in raster order), and 0 to the pixels skipped on the way."""
    cdef Py_ssize_t j
    cdef float* result
    forward_tile(rows, t, sc.weights, sc.biases, sc.sizes, sc.n_layers, sc.activation, sc.output,
                 sc.act0, sc.act1)
    cdef uint64_t word
    result = sc.act0 if sc.n_layers % 2 == 1 else sc.act1
    for j in range(t):
        while sc.p + 8 <= sc.P:  # to the next requested pixel: through the background 8 mask bytes at a time
            memcpy(&word, sc.want + sc.p, 8)
            if word != 0:
                break
            memset(sc.dst + sc.p, 0, 8 * sizeof(float))
            sc.p += 8
        while not sc.want[sc.p]:
            sc.dst[sc.p] = 0.0
            sc.p += 1
        sc.dst[sc.p] = result[j]
        sc.p += 1


cdef void _pixel_rows(
    const float[:, :, :, ::1] images, const unsigned char[:, :, ::1] brain, const unsigned char[:, :, ::1] rows,
    const Py_ssize_t[::1] row_start, const Py_ssize_t[:, ::1] mirror, const Py_ssize_t[:, ::1] bbox,
    const Py_ssize_t[::1] mean_sizes, const Py_ssize_t[::1] std_sizes, const Py_ssize_t[::1] brain_boxes,
    Py_ssize_t k, const Py_ssize_t[::1] rowmap, const Py_ssize_t[::1] colmap,
    bint asymmetry, Py_ssize_t asymmetry_box, Py_ssize_t gradient_size, bint position,
    float[:, ::1] out, Py_ssize_t offset, Py_ssize_t row_base, double[::1] scratch, Py_ssize_t n0, Py_ssize_t n1,
    const double* inv_area, double inv_asym, double inv_grad, _Scorer* sc, const float* src,
) noexcept:
    """The loops of pixel_context, its preconditions checked (releases the GIL).

    Row by row: every box statistic of the row's span of requested pixels is
    computed at once into ``ctx`` (the context columns, one row per pixel of the
    span) by contiguous loops over the span, then each requested pixel's row is
    its window plus its row of ``ctx``.  Global row ``row`` (``row_start``'s
    numbering) is written to ``out[row - row_base]``.

    With ``src`` not NULL, the pixels of the (one) image are read from there instead of ``images``.

    With a scorer ``sc`` (``out`` then a buffer of at least ``tile_rows + W - 1``
    rows, offset 0), rows are scored as they are made: after each image row,
    every full tile of rows not yet scored goes through the network, and when
    the buffer has no room left for another image row, the rows left over move
    to its start; so the rows never leave the cache.  An image's last rows are
    scored at its end.  The tiles are those of scoring
    all the image's rows at once, ``tile_rows`` at a time from its first row.
    """
    cdef Py_ssize_t H = images.shape[1], W = images.shape[2], C = images.shape[3]
    cdef Py_ssize_t SM = mean_sizes.shape[0], SS = std_sizes.shape[0], SB = brain_boxes.shape[0]
    cdef Py_ssize_t plane = (H + 1) * (W + 1) * C
    cdef Py_ssize_t KC = k * k * C
    cdef Py_ssize_t Fc = n_context_columns(C, k, SM, SS, asymmetry, gradient_size > 0, position, SB) - KC
    cdef Py_ssize_t n, y, x, c, j, i, r, s, y0, y1, col, row, r0, c0, h, w, stride, bstride, p, q, xa, xb, m
    cdef Py_ssize_t half = k // 2, dy, dx, yy, xx
    cdef uint64_t word
    cdef double inv, mean, v, gx, gy, inv_r, inv_c, ypos
    cdef const float* img
    cdef const unsigned char* inside
    cdef const unsigned char* want
    cdef float* dst
    cdef bint need1 = SM > 0 or SS > 0 or gradient_size > 0, need2 = SS > 0
    cdef const double* top
    cdef const double* bot
    cdef double* I1 = &scratch[0]
    cdef double* I2 = &scratch[plane]
    cdef double* Id = &scratch[2 * plane]
    cdef double* Ib = &scratch[3 * plane]
    cdef double* acc = &scratch[4 * plane]           # 3 C running sums
    cdef double* T1 = acc + 3 * C                     # W C each: box sums along the span
    cdef double* T2 = T1 + W * C
    cdef double* T3 = T2 + W * C
    cdef double* T4 = T3 + W * C
    cdef float* tmp = <float*>(T4 + W * C)            # W C
    cdef float* ctx = <float*>(T4 + 2 * W * C)        # W x Fc context columns of the span
    cdef float* cx                                    # where the span's context rows go: ctx or out
    cdef Py_ssize_t cs                                # ... and their stride
    cdef bint direct
    cdef Py_ssize_t filled, head = 0, t, count
    cdef Py_ssize_t R, done, ahead
    cdef Py_ssize_t rmax = gradient_size // 2  # the largest half box that reads I1, I2 or Id
    for j in range(SM):
        rmax = max(rmax, mean_sizes[j] // 2)
    for j in range(SS):
        rmax = max(rmax, std_sizes[j] // 2)
    if asymmetry:
        rmax = max(rmax, asymmetry_box // 2)
    with nogil:
        for n in range(n0, n1):
            if sc != NULL:  # this image's rows go to the start of out, its scores to its plane of scores
                row_base, head = row_start[n], 0
                sc.want, sc.dst, sc.p = &rows[n, 0, 0], sc.scores + n * H * W, 0
            if row_start[n + 1] == row_start[n]:
                if sc != NULL:
                    memset(sc.dst, 0, H * W * sizeof(float))
                continue
            img = &images[n, 0, 0, 0] if src == NULL else src
            inside = &brain[n, 0, 0]
            r0, c0 = bbox[n, 0], bbox[n, 2]
            h, w = bbox[n, 1] - r0 + 1, bbox[n, 3] - c0 + 1
            stride, bstride = (w + 1) * C, w + 1
            # the integral images of x, x * x and the asymmetry are made a row at a time, just before
            # the first image row that reads it, into rings of R rows (row i in slot i % R): the rows
            # the boxes of one image row read, and no more, stay in cache
            R = min(2 * rmax + 2, h + 1)
            done = 0
            if need1 or asymmetry:
                for x in range(stride):
                    I1[x] = 0.0
                    if need2:
                        I2[x] = 0.0
                    if asymmetry:
                        Id[x] = 0.0
            if position and SB > 0:
                for x in range(w + 1):
                    Ib[x] = 0.0
                for y in range(h):
                    count = 0  # an integer: exact like the double it replaces, without its add latency
                    Ib[(y + 1) * bstride] = 0.0
                    for x in range(w):
                        count += inside[(r0 + y) * W + c0 + x]
                        Ib[(y + 1) * bstride + x + 1] = Ib[y * bstride + x + 1] + <double>count
            inv_r = 1.0 / (<double>(h - 1) if h > 1 else 1.0)
            inv_c = 1.0 / (<double>(w - 1) if w > 1 else 1.0)
            row = row_start[n]
            for y in range(H):
                if row >= row_start[n + 1]:  # no more rows allowed (or none left)
                    break
                # the span [xa, xb] of requested pixels in this row; none: next row
                want = &rows[n, y, 0]
                xa = 0
                while xa + 8 <= W:
                    memcpy(&word, want + xa, 8)
                    if word != 0:
                        break
                    xa += 8
                while xa < W and not want[xa]:
                    xa += 1
                if xa == W:
                    continue
                xb = W - 1
                while not want[xb]:
                    xb -= 1
                m = xb - xa + 1
                # Context columns of the whole span, family by family: straight into the output rows
                # when every pixel of the span is requested (brain rows mostly are one run), else into
                # ctx, one row per pixel of the span, copied to the requested pixels' rows below.
                direct = Fc > 0 and row + m <= row_start[n + 1]  # (no context columns: nothing to place)
                x = xa
                while direct and x <= xb:
                    direct = want[x] != 0
                    x += 1
                if direct:
                    cx, cs = &out[row - row_base, offset + KC], out.shape[1]
                else:
                    cx, cs = ctx, Fc
                if need1 or asymmetry:  # the integral rows up to the lowest this image row reads
                    ahead = _clip(y + rmax + 1 - r0, h)
                    while done < ahead:
                        _integral_row(img, inside, W, C, r0 + done, c0, w, &mirror[n, 0],
                                      _ring(I1, done, R, stride), _ring(I1, done + 1, R, stride),
                                      _ring(I2, done, R, stride) if need2 else NULL,
                                      _ring(I2, done + 1, R, stride) if need2 else NULL,
                                      _ring(Id, done, R, stride) if asymmetry else NULL,
                                      _ring(Id, done + 1, R, stride) if asymmetry else NULL, acc)
                        done += 1
                col = 0
                for j in range(SM):
                    s = mean_sizes[j]
                    r = s // 2
                    y0, y1 = _clip(y - r - r0, h), _clip(y + r + 1 - r0, h)
                    _row_boxes(_ring(I1, y0, R, stride), _ring(I1, y1, R, stride), C, w, xa - r - c0, s, m, T1)
                    _put(T1, m, C, inv_area[j], False, tmp, cx + col, cs)
                    col += C
                for j in range(SS):
                    s = std_sizes[j]
                    r = s // 2
                    y0, y1 = _clip(y - r - r0, h), _clip(y + r + 1 - r0, h)
                    _row_boxes(_ring(I1, y0, R, stride), _ring(I1, y1, R, stride), C, w, xa - r - c0, s, m, T1)
                    _row_boxes(_ring(I2, y0, R, stride), _ring(I2, y1, R, stride), C, w, xa - r - c0, s, m, T2)
                    inv = inv_area[SM + j]
                    for i in range(m * C):  # T2 := the variance
                        mean = T1[i] * inv
                        v = T2[i] * inv - mean * mean
                        T2[i] = v if v > 0.0 else 0.0
                    _put(T2, m, C, 1.0, True, tmp, cx + col, cs)
                    col += C
                if asymmetry:
                    _asym(img, inside, y * W, xa, m, &mirror[n, 0], C, cx + col, cs)
                    col += C
                    r = asymmetry_box // 2
                    y0, y1 = _clip(y - r - r0, h), _clip(y + r + 1 - r0, h)
                    _row_boxes(_ring(Id, y0, R, stride), _ring(Id, y1, R, stride), C, w, xa - r - c0,
                               asymmetry_box, m, T1)
                    _put(T1, m, C, inv_asym, False, tmp, cx + col, cs)
                    col += C
                if gradient_size:
                    # right minus left (rows of the s x s box), below minus above (its columns); r = s // 2
                    s = gradient_size
                    r = s // 2
                    y0, y1 = _clip(y - r - r0, h), _clip(y + r + 1 - r0, h)
                    top, bot = _ring(I1, y0, R, stride), _ring(I1, y1, R, stride)
                    _row_boxes(top, bot, C, w, xa + 1 - c0, r, m, T1)
                    _row_boxes(top, bot, C, w, xa - r - c0, r, m, T2)
                    _row_boxes(_ring(I1, _clip(y + 1 - r0, h), R, stride), bot, C, w, xa - r - c0, s, m, T3)
                    _row_boxes(top, _ring(I1, _clip(y - r0, h), R, stride), C, w, xa - r - c0, s, m, T4)
                    for i in range(m * C):  # T1 := the squared magnitude
                        gx = T1[i] - T2[i]
                        gy = T3[i] - T4[i]
                        T1[i] = (gx * gx + gy * gy) * (inv_grad * inv_grad)
                    _put(T1, m, C, 1.0, True, tmp, cx + col, cs)
                    col += C
                if position:
                    ypos = (y - r0) * inv_r
                    for i in range(m):
                        cx[i * cs + col] = <float>ypos
                        cx[i * cs + col + 1] = <float>fabs((xa + i - c0) * inv_c - 0.5)
                    col += 2
                    for j in range(SB):
                        s = brain_boxes[j]
                        r = s // 2
                        y0, y1 = _clip(y - r - r0, h), _clip(y + r + 1 - r0, h)
                        _row_boxes(Ib + y0 * bstride, Ib + y1 * bstride, 1, w, xa - r - c0, s, m, T1)
                        _put(T1, m, 1, inv_area[SM + SS + j], False, tmp, cx + col, cs)
                        col += 1
                # the rows of the requested pixels: window, then context
                if direct and k == 3 and C == 4 and 1 <= y < H - 1 and xa >= 1 and xb < W - 1:
                    # the MRI default, every pixel of the span requested and inside the image: the
                    # windows alone (the context is in place), with constant sizes the compiler inlines
                    for x in range(xa, xb + 1):
                        dst = &out[row - row_base, offset]
                        row += 1
                        for dy in range(3):
                            memcpy(dst + 12 * dy, img + ((y + dy - 1) * W + x - 1) * 4, 12 * sizeof(float))
                else:
                    for x in range(xa, xb + 1):
                        if not want[x]:
                            continue
                        if row >= row_start[n + 1]:  # more requested pixels than row_start allows
                            break
                        dst = &out[row - row_base, offset]
                        row += 1
                        p = y * W + x
                        if k == 1:
                            for c in range(C):
                                dst[c] = img[p * C + c]
                        elif k == 3 and C == 4 and 1 <= y < H - 1 and 1 <= x < W - 1:  # the MRI default
                            for dy in range(3):  # constant sizes: the compiler inlines the copies
                                memcpy(dst + 12 * dy, img + ((y + dy - 1) * W + x - 1) * 4, 12 * sizeof(float))
                        elif k and half <= y < H - half and half <= x < W - half:
                            col = 0
                            for dy in range(-half, half + 1):  # inside: k contiguous pixels per window row
                                memcpy(dst + col, img + ((y + dy) * W + x - half) * C, k * C * sizeof(float))
                                col += k * C
                        elif k:
                            col = 0
                            for dy in range(-half, half + 1):
                                yy = rowmap[y + dy + half]
                                for dx in range(-half, half + 1):
                                    xx = colmap[x + dx + half]
                                    if yy < 0 or xx < 0:  # constant mode, outside the image: zero
                                        for c in range(C):
                                            dst[col + c] = 0.0
                                    else:
                                        for c in range(C):
                                            dst[col + c] = img[(yy * W + xx) * C + c]
                                    col += C
                        if Fc and not direct:
                            memcpy(dst + KC, ctx + (x - xa) * Fc, Fc * sizeof(float))
                if sc != NULL:
                    # score the full tiles of the rows not scored yet (from ``head`` on); when another
                    # image row might not fit, move the rows left over to the start of the buffer
                    filled = row - row_base
                    while filled - head >= sc.tile_rows:
                        _score_rows(sc, &out[head, 0], sc.tile_rows)
                        head += sc.tile_rows
                    if out.shape[0] - filled < W and head > 0:
                        if filled > head:  # (all scored: nothing to move, and out[head] may be past the end)
                            memmove(&out[0, 0], &out[head, 0], (filled - head) * out.shape[1] * sizeof(float))
                        row_base += head
                        head = 0
            if sc != NULL:  # the image's last rows, then 0 for the pixels after its last requested one
                filled = row - row_base
                while head < filled:
                    t = min(sc.tile_rows, filled - head)
                    _score_rows(sc, &out[head, 0], t)
                    head += t
                while sc.p < H * W:
                    sc.dst[sc.p] = 0.0
                    sc.p += 1


def pixel_mlp_scores(
    const float[:, :, :, ::1] images not None,       # IN  (N, H, W, C)
    const unsigned char[:, :, ::1] brain not None,   # IN  (N, H, W) 0/1
    const unsigned char[:, :, ::1] rows not None,    # IN  (N, H, W) 0/1: pixels to score
    const Py_ssize_t[::1] row_start not None,        # IN  (N + 1,) cumulative counts of ``rows``
    const Py_ssize_t[:, ::1] mirror not None,        # IN  (N, W) mirror column of each column
    const Py_ssize_t[:, ::1] bbox not None,          # IN  (N, 4) brain rows [r0, r1], columns [c0, c1]
    const Py_ssize_t[::1] mean_sizes not None,
    const Py_ssize_t[::1] std_sizes not None,
    const Py_ssize_t[::1] brain_boxes not None,
    Py_ssize_t k,
    const Py_ssize_t[::1] rowmap not None,
    const Py_ssize_t[::1] colmap not None,
    bint asymmetry, Py_ssize_t asymmetry_box, Py_ssize_t gradient_size, bint position,
    const float[::1] weights not None,               # IN  layers' (n_in, n_out) matrices, row-major, concatenated
    const float[::1] biases not None,                # IN  layers' biases, concatenated
    const Py_ssize_t[::1] sizes not None,            # IN  (n_layers + 1,) widths: the row width, hidden..., 1
    int activation,                                  #     hidden activation code (as ``_mlp``)
    int output,                                      #     the output unit's: 3 logistic, 0 identity
    float[:, :, ::1] scores not None,                # OUT (N, H, W) the output; 0 where ``rows`` is 0
    float[:, ::1] rowbuf not None,                   # SCRATCH (>= min(most rows of an image, tile_rows + W - 1), row width)
    double[::1] scratch not None,                    # SCRATCH >= scratch_size(H, W, C, row width)
    float[:, ::1] act not None,                      # SCRATCH (2, tile_rows * widest hidden layer)
    Py_ssize_t tile_rows,
    Py_ssize_t n0, Py_ssize_t n1,                    # images [n0, n1) only
    float[:, :, ::1] normalized=None,                # SCRATCH (H, W, C), or None: the images are normalised
    double min_std=0.0,                              #     ... with this least spread (as _normalize)
):
    """Score every requested pixel of images n0 .. n1 - 1 with an MLP over its feature rows
    (window and context, as :func:`pixel_context` writes them), one image at a time.  A linear
    model is the network without hidden layers (sizes (F, 1)): ``output`` 0 gives its decision
    values, 3 (logistic regression) its probabilities.

    An image's rows go into ``rowbuf`` image row by image row; as soon as it holds
    ``tile_rows`` rows they go through the network (``_mlp.forward_tile``, as
    :func:`fastseg._ext._mlp.mlp_rows` runs them) and each output to its pixel of
    ``scores``.  So the rows stay in the core's cache between the two steps (the
    rows of a whole 240 x 240 brain, 3.5 MB, would not), and the tiles are those
    of the image's rows ``tile_rows`` at a time from its first: the same numbers
    as those two kernels called in turn, without returning to Python between images.

    With ``normalized``, the images are the raw slices: each is first normalised
    over its brain (``_normalize.normalize_brain``'s numbers) into that one-slice
    buffer, where the row kernel finds it in cache (a normalised chunk of slices
    would be read back from memory).  Returns -1, or the first image holding a
    NaN or an infinite value (its scores and the following images' are then not
    written); without ``normalized``, -1.
    """
    cdef Py_ssize_t N = images.shape[0], H = images.shape[1], W = images.shape[2], C = images.shape[3]
    cdef Py_ssize_t SM = mean_sizes.shape[0], SS = std_sizes.shape[0], SB = brain_boxes.shape[0]
    cdef Py_ssize_t F = n_context_columns(C, k, SM, SS, asymmetry, gradient_size > 0, position, SB)
    cdef Py_ssize_t n_layers = sizes.shape[0] - 1, widest = 1, n_weights = 0, n_biases = 0
    cdef Py_ssize_t n, j, p, P = H * W, count, most = 0
    cdef const unsigned char* want
    cdef _Scorer sc
    cdef bint finite
    cdef double* stats = NULL
    cdef double inv_asym, inv_grad
    cdef double* inv_area = NULL
    # preconditions, checked before the GIL is released
    _check_context(images, brain, rows, row_start, mirror, bbox, mean_sizes, std_sizes, brain_boxes, k,
                   rowmap, colmap, asymmetry, asymmetry_box, gradient_size, n0, n1)
    if n_layers < 1 or sizes[0] != F or sizes[n_layers] != 1:
        raise ValueError(f"sizes must run from the row width {F} to 1")
    for j in range(n_layers):
        if sizes[j + 1] < 1 or sizes[j + 1] > 2147483647:
            raise ValueError("layer widths must be in 1 .. 2**31 - 1")
        n_weights += sizes[j] * sizes[j + 1]
        n_biases += sizes[j + 1]
        widest = max(widest, sizes[j + 1])
    if weights.shape[0] != n_weights or biases.shape[0] != n_biases:
        raise ValueError(f"weights/biases must hold {n_weights}/{n_biases} values for these sizes")
    if scores.shape[0] != N or scores.shape[1] != H or scores.shape[2] != W:
        raise ValueError(f"scores must have shape {(N, H, W)}")
    if not 0 <= output <= 3:
        raise ValueError(f"output must be an activation code 0-3, got {output}")
    if tile_rows < 1 or tile_rows > 2147483647 or act.shape[0] != 2 or act.shape[1] < tile_rows * widest:
        raise ValueError(f"need 1 <= tile_rows < 2**31 and act of shape (2, >= {tile_rows * widest})")
    if scratch.shape[0] < scratch_size(H, W, C, F):
        raise ValueError(f"scratch must hold scratch_size(H, W, C, {F}) values")
    for n in range(n0, n1):  # the scatter below relies on row_start counting rows exactly
        count = 0
        want = &rows[n, 0, 0]
        for p in range(P):
            count += want[p] != 0
        if count != row_start[n + 1] - row_start[n]:
            raise ValueError("row_start must count the requested pixels of each image")
        most = max(most, count)
    most = min(most, tile_rows + W - 1)  # rows are scored as soon as a tile is full (see _pixel_rows)
    if rowbuf.shape[1] != F or rowbuf.shape[0] < most:
        raise ValueError(f"rowbuf must have shape (>= {most}, {F})")
    if normalized is not None and (normalized.shape[0] != H or normalized.shape[1] != W or normalized.shape[2] != C):
        raise ValueError(f"normalized must have shape {(H, W, C)}")
    if normalized is not None and not min_std >= 0:
        raise ValueError(f"min_std must be >= 0, got {min_std}")
    if N * H * W == 0 or n0 == n1:
        return -1
    inv_area = _inverse_areas(mean_sizes, std_sizes, brain_boxes)
    inv_asym = 1.0 / <double>(asymmetry_box * asymmetry_box) if asymmetry else 0.0
    inv_grad = 1.0 / <double>(gradient_size * (gradient_size // 2)) if gradient_size else 0.0
    sc.weights, sc.biases, sc.sizes, sc.n_layers = &weights[0], &biases[0], &sizes[0], n_layers
    sc.activation, sc.output, sc.act0, sc.act1 = activation, output, &act[0, 0], &act[1, 0]
    sc.tile_rows, sc.scores, sc.P = tile_rows, &scores[0, 0, 0], P
    try:
        if normalized is None:
            _pixel_rows(images, brain, rows, row_start, mirror, bbox, mean_sizes, std_sizes, brain_boxes, k,
                        rowmap, colmap, asymmetry, asymmetry_box, gradient_size, position, rowbuf, 0, 0, scratch,
                        n0, n1, inv_area, inv_asym, inv_grad, &sc, NULL)
            return -1
        stats = <double*>malloc(2 * C * sizeof(double))
        if stats == NULL:
            raise MemoryError()
        for n in range(n0, n1):
            with nogil:
                finite = normalize_one(&images[n, 0, 0, 0], &brain[n, 0, 0], P, C, &normalized[0, 0, 0],
                                       stats, stats + C, min_std)
            if not finite:
                return n
            _pixel_rows(images, brain, rows, row_start, mirror, bbox, mean_sizes, std_sizes, brain_boxes, k,
                        rowmap, colmap, asymmetry, asymmetry_box, gradient_size, position, rowbuf, 0, 0, scratch,
                        n, n + 1, inv_area, inv_asym, inv_grad, &sc, &normalized[0, 0, 0])
        return -1
    finally:
        free(inv_area)
        free(stats)


include "_simd.pxi"


def cpu_has_avx2():
    """Whether this CPU runs AVX2 instructions (False where that cannot be asked)."""
    return fs_cpu_has_avx2() != 0
