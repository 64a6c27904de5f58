"""Per-pixel context features, written only for the requested pixels.

For each image the kernel builds the integral images it needs (float64, scratch
owned by the caller): of the image (local means), of its square (local standard
deviations), of its left-right asymmetry (mean asymmetry) and of the brain mask
(position).  Every box statistic is then four reads per channel, so the cost
per requested pixel is independent of the box sizes, and nothing of the size of
(pixels x features) exists except the output rows.

Row layout (columns, in order; C channels):

    window       k k C                the k x k window of every channel, (dy, dx, c) with c
                                      fastest (k = 1: the pixel itself; k = 0: none),
                                      borders by the ``rowmap`` / ``colmap`` of
                                      ``fastseg.features.pad_index`` (-1: zero)
    means        C per mean size      s x s box mean, zero outside the image
    stds         C per std size       s x s box standard deviation, zero outside
    asymmetry    C, then C            x - x[mirror column] at brain pixels (0 elsewhere);
                                      its box mean
    gradient     C                    box-gradient magnitude at size s: the difference
                                      of the s x r boxes right and left of the pixel
                                      (below and above), / (s r), r = s // 2, zero outside
    position     2 + len(boxes)       row in the brain's bounding box (0 top, 1
                                      bottom); |column in the box - 0.5|; the
                                      brain's share of each s x s box

Compiler directives are set once, in setup.py.
"""
from libc.math cimport fabs, sqrtf
from libc.stdint cimport uint64_t
from libc.string cimport memcpy
from libc.stdlib cimport malloc, free

from ._padded cimport check_pad_maps


cdef inline void _box(const double* I, Py_ssize_t stride, Py_ssize_t C,
                      Py_ssize_t y0, Py_ssize_t y1, Py_ssize_t x0, Py_ssize_t x1, double* res) noexcept nogil:
    """res[c] = sum of channel c over rows [y0, y1) and columns [x0, x1) of an integral image."""
    cdef const double* p11 = I + y1 * stride + x1 * C
    cdef const double* p01 = I + y0 * stride + x1 * C
    cdef const double* p10 = I + y1 * stride + x0 * C
    cdef const double* p00 = I + y0 * stride + x0 * C
    cdef Py_ssize_t c
    if C == 4:  # the MRI case: a fixed trip count the compiler unrolls and vectorises
        res[0] = (p11[0] - p01[0]) - (p10[0] - p00[0])
        res[1] = (p11[1] - p01[1]) - (p10[1] - p00[1])
        res[2] = (p11[2] - p01[2]) - (p10[2] - p00[2])
        res[3] = (p11[3] - p01[3]) - (p10[3] - p00[3])
        return
    for c in range(C):
        res[c] = (p11[c] - p01[c]) - (p10[c] - p00[c])


cdef void _integrals(const float* img, const unsigned char* inside, Py_ssize_t W, Py_ssize_t C,
                     Py_ssize_t r0, Py_ssize_t h, Py_ssize_t c0, Py_ssize_t w, const Py_ssize_t* mirror,
                     double* I1, double* I2, double* Id, double* acc) noexcept nogil:
    """One pass over the box rows [r0, r0 + h) x columns [c0, c0 + w), pixels outside the brain as 0:
    integral images of x (I1), of x * x (I2, if not NULL) and of x - x[mirror] (Id, if not NULL),
    each (h + 1, w + 1, C).  ``acc`` holds 3 C running row sums."""
    cdef Py_ssize_t stride = (w + 1) * C, y, x, c, here, above, p, q
    cdef double* a1 = acc
    cdef double* a2 = acc + C
    cdef double* ad = acc + 2 * C
    cdef const float* src
    cdef const float* mir
    for x in range(stride):
        I1[x] = 0.0
        if I2 != NULL:
            I2[x] = 0.0
        if Id != NULL:
            Id[x] = 0.0
    for y in range(h):
        here = (y + 1) * stride
        for c in range(3 * C):
            acc[c] = 0.0
        for c in range(C):
            I1[here + c] = 0.0
            if I2 != NULL:
                I2[here + c] = 0.0
            if Id != NULL:
                Id[here + c] = 0.0
        for x in range(w):
            p = (r0 + y) * W + c0 + x
            src = img + p * C
            here = (y + 1) * stride + (x + 1) * C
            above = here - stride
            if inside[p]:
                for c in range(C):
                    a1[c] += src[c]
                if I2 != NULL:
                    for c in range(C):
                        a2[c] += <double>src[c] * src[c]
                if Id != NULL:
                    for c in range(C):
                        ad[c] += src[c]
                    q = (r0 + y) * W + mirror[c0 + x]
                    if inside[q]:
                        mir = img + q * C
                        for c in range(C):
                            ad[c] -= mir[c]
            for c in range(C):
                I1[here + c] = I1[above + c] + a1[c]
            if I2 != NULL:
                for c in range(C):
                    I2[here + c] = I2[above + c] + a2[c]
            if Id != NULL:
                for c in range(C):
                    Id[here + c] = Id[above + c] + ad[c]


cdef inline void _local_box(Py_ssize_t y, Py_ssize_t x, Py_ssize_t s, Py_ssize_t r0, Py_ssize_t h,
                            Py_ssize_t c0, Py_ssize_t w, Py_ssize_t* box) noexcept nogil:
    """The s x s box centred on (y, x), clipped to the region and in its coordinates: box = y0, y1, x0, x1."""
    cdef Py_ssize_t r = s // 2
    box[0] = min(max(y - r - r0, 0), h)
    box[1] = min(max(y + r + 1 - r0, 0), h)
    box[2] = min(max(x - r - c0, 0), w)
    box[3] = min(max(x + r + 1 - c0, 0), w)


def n_context_columns(Py_ssize_t C, Py_ssize_t k, Py_ssize_t n_means, Py_ssize_t n_stds,
                      bint asymmetry, bint gradient, bint position, Py_ssize_t n_boxes):
    """Number of columns the kernel writes for these families."""
    return (C * (k * k + n_means + n_stds + 2 * asymmetry + gradient)
            + (2 + n_boxes if position else 0))


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
    double[::1] scratch not None,                    # SCRATCH >= 4 (H+1)(W+1)C + 7 C
    Py_ssize_t n0, Py_ssize_t n1,                    # images [n0, n1) only
):
    """Write the context columns of every requested pixel of images n0 .. n1 - 1 into ``out``.

    Box statistics count pixels outside the brain as 0, so the integral images
    only span the brain's bounding box (an empty brain: every statistic is 0).
    """
    cdef Py_ssize_t N = images.shape[0], H = images.shape[1], W = images.shape[2], C = images.shape[3]
    cdef Py_ssize_t SM = mean_sizes.shape[0], SS = std_sizes.shape[0], SB = brain_boxes.shape[0]
    cdef Py_ssize_t F = n_context_columns(C, k, SM, SS, asymmetry, gradient_size > 0, position, SB)
    cdef Py_ssize_t plane = (H + 1) * (W + 1) * C
    cdef Py_ssize_t n, x, j
    cdef double inv_asym, inv_grad
    cdef double* inv_area = NULL
    # preconditions, checked before the GIL is released
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
    if offset < 0 or out.shape[1] < offset + F or row_start[0] < 0 or row_start[N] > out.shape[0]:
        raise ValueError(f"out must have the rows of row_start and at least {offset + F} columns")
    if scratch.shape[0] < 4 * plane + 7 * C:
        raise ValueError("scratch is too small")
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
    if H * W * C == 0:
        return
    # 1 / s^2 of every box size (means, stds, brain boxes), computed once
    inv_area = <double*>malloc((SM + SS + SB + 1) * sizeof(double))
    if inv_area == NULL:
        raise MemoryError()
    for j in range(SM):
        inv_area[j] = 1.0 / <double>(mean_sizes[j] * mean_sizes[j])
    for j in range(SS):
        inv_area[SM + j] = 1.0 / <double>(std_sizes[j] * std_sizes[j])
    for j in range(SB):
        inv_area[SM + SS + j] = 1.0 / <double>(brain_boxes[j] * brain_boxes[j])
    inv_asym = 1.0 / <double>(asymmetry_box * asymmetry_box) if asymmetry else 0.0
    inv_grad = 1.0 / <double>(gradient_size * (gradient_size // 2)) if gradient_size else 0.0
    try:
        _pixel_rows(images, brain, rows, row_start, mirror, bbox, mean_sizes, std_sizes, brain_boxes, k, rowmap, colmap,
                    asymmetry, asymmetry_box, gradient_size, position, out, offset, scratch, n0, n1,
                    inv_area, inv_asym, inv_grad)
    finally:
        free(inv_area)


cdef void _pixel_rows(
    const float[:, :, :, ::1] images, const unsigned char[:, :, ::1] brain, const unsigned char[:, :, ::1] rows,
    const Py_ssize_t[::1] row_start, const Py_ssize_t[:, ::1] mirror, const Py_ssize_t[:, ::1] bbox,
    const Py_ssize_t[::1] mean_sizes, const Py_ssize_t[::1] std_sizes, const Py_ssize_t[::1] brain_boxes,
    Py_ssize_t k, const Py_ssize_t[::1] rowmap, const Py_ssize_t[::1] colmap,
    bint asymmetry, Py_ssize_t asymmetry_box, Py_ssize_t gradient_size, bint position,
    float[:, ::1] out, Py_ssize_t offset, double[::1] scratch, Py_ssize_t n0, Py_ssize_t n1,
    const double* inv_area, double inv_asym, double inv_grad,
) noexcept:
    """The loops of pixel_context, its preconditions checked (releases the GIL)."""
    cdef Py_ssize_t H = images.shape[1], W = images.shape[2], C = images.shape[3]
    cdef Py_ssize_t SM = mean_sizes.shape[0], SS = std_sizes.shape[0], SB = brain_boxes.shape[0]
    cdef Py_ssize_t plane = (H + 1) * (W + 1) * C
    cdef Py_ssize_t n, y, x, c, j, r, col, row, r0, c0, h, w, stride, bstride, p
    cdef Py_ssize_t half = k // 2, dy, dx, yy, xx
    cdef Py_ssize_t box[4]
    cdef uint64_t word
    cdef double inv, m, v, gx, gy, inv_r, inv_c, a
    cdef const float* img
    cdef const unsigned char* inside
    cdef const unsigned char* want
    cdef float* dst
    cdef bint need1 = SM > 0 or SS > 0 or gradient_size > 0, need2 = SS > 0
    cdef double* I1 = &scratch[0]
    cdef double* I2 = &scratch[plane]
    cdef double* Id = &scratch[2 * plane]
    cdef double* Ib = &scratch[3 * plane]
    cdef double* acc = &scratch[4 * plane]          # 3 C running sums, then 4 C box results
    cdef double* b1 = acc + 3 * C
    cdef double* b2 = acc + 4 * C
    cdef double* b3 = acc + 5 * C
    cdef double* b4 = acc + 6 * C
    with nogil:
        for n in range(n0, n1):
            if row_start[n + 1] == row_start[n]:
                continue
            img = &images[n, 0, 0, 0]
            inside = &brain[n, 0, 0]
            r0, c0 = bbox[n, 0], bbox[n, 2]
            h, w = bbox[n, 1] - r0 + 1, bbox[n, 3] - c0 + 1
            stride, bstride = (w + 1) * C, w + 1
            if need1 or asymmetry:
                _integrals(img, inside, W, C, r0, h, c0, w, &mirror[n, 0],
                           I1, I2 if need2 else NULL, Id if asymmetry else NULL, acc)
            if position and SB > 0:
                for x in range(w + 1):
                    Ib[x] = 0.0
                for y in range(h):
                    a = 0.0
                    Ib[(y + 1) * bstride] = 0.0
                    for x in range(w):
                        a += inside[(r0 + y) * W + c0 + x]
                        Ib[(y + 1) * bstride + x + 1] = Ib[y * bstride + x + 1] + a
            inv_r = 1.0 / (<double>(h - 1) if h > 1 else 1.0)
            inv_c = 1.0 / (<double>(w - 1) if w > 1 else 1.0)
            row = row_start[n]
            for y in range(H):
                want = &rows[n, y, 0]
                x = -1
                while True:
                    x += 1
                    while x + 8 <= W:  # skip unwanted pixels 8 at a time
                        memcpy(&word, want + x, 8)
                        if word != 0:
                            break
                        x += 8
                    if x >= W:
                        break
                    if not want[x]:
                        continue
                    if row >= row_start[n + 1]:  # more requested pixels than row_start allows
                        break
                    dst = &out[row, offset]
                    row += 1
                    p = y * W + x
                    col = 0
                    if k == 1:
                        for c in range(C):
                            dst[c] = img[p * C + c]
                        col = C
                    elif k and half <= y < H - half and half <= x < W - half:
                        for dy in range(-half, half + 1):  # inside: k contiguous pixels per window row
                            memcpy(dst + col, img + ((y + dy) * W + x - half) * C, k * C * sizeof(float))
                            col += k * C
                    elif k:
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
                    for j in range(SM):
                        _local_box(y, x, mean_sizes[j], r0, h, c0, w, box)
                        _box(I1, stride, C, box[0], box[1], box[2], box[3], b1)
                        inv = inv_area[j]
                        for c in range(C):
                            dst[col + c] = <float>(b1[c] * inv)
                        col += C
                    for j in range(SS):
                        _local_box(y, x, std_sizes[j], r0, h, c0, w, box)
                        _box(I1, stride, C, box[0], box[1], box[2], box[3], b1)
                        _box(I2, stride, C, box[0], box[1], box[2], box[3], b2)
                        inv = inv_area[SM + j]
                        for c in range(C):
                            m = b1[c] * inv
                            v = b2[c] * inv - m * m
                            dst[col + c] = sqrtf(<float>v) if v > 0.0 else 0.0
                        col += C
                    if asymmetry:
                        if not inside[p]:
                            for c in range(C):
                                dst[col + c] = 0.0
                        elif inside[y * W + mirror[n, x]]:
                            for c in range(C):
                                dst[col + c] = img[p * C + c] - img[(y * W + mirror[n, x]) * C + c]
                        else:
                            for c in range(C):
                                dst[col + c] = img[p * C + c]
                        col += C
                        _local_box(y, x, asymmetry_box, r0, h, c0, w, box)
                        _box(Id, stride, C, box[0], box[1], box[2], box[3], b1)
                        inv = inv_asym
                        for c in range(C):
                            dst[col + c] = <float>(b1[c] * inv)
                        col += C
                    if gradient_size:
                        # right minus left, below minus above: boxes of s x r beside the pixel
                        _local_box(y, x, gradient_size, r0, h, c0, w, box)
                        r = min(max(x + 1 - c0, 0), w)           # first column right of the pixel
                        _box(I1, stride, C, box[0], box[1], r, max(box[3], r), b1)
                        r = min(max(x - c0, 0), w)               # the pixel's column
                        _box(I1, stride, C, box[0], box[1], min(box[2], r), r, b2)
                        r = min(max(y + 1 - r0, 0), h)
                        _box(I1, stride, C, r, max(box[1], r), box[2], box[3], b3)
                        r = min(max(y - r0, 0), h)
                        _box(I1, stride, C, min(box[0], r), r, box[2], box[3], b4)
                        inv = inv_grad
                        for c in range(C):
                            gx = b1[c] - b2[c]
                            gy = b3[c] - b4[c]
                            dst[col + c] = sqrtf(<float>((gx * gx + gy * gy) * (inv * inv)))
                        col += C
                    if position:
                        dst[col] = <float>((y - r0) * inv_r)
                        dst[col + 1] = <float>fabs((x - c0) * inv_c - 0.5)
                        col += 2
                        for j in range(SB):
                            _local_box(y, x, brain_boxes[j], r0, h, c0, w, box)
                            _box(Ib, bstride, 1, box[0], box[1], box[2], box[3], b1)
                            dst[col] = <float>(b1[0] * inv_area[SM + SS + j])
                            col += 1
