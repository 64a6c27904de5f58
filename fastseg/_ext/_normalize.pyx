"""Per-slice standardisation of each channel over the brain pixels; background set to 0.

Four passes per slice: a finiteness check of every value (integer operations the
compiler vectorises; it also brings the slice into cache for the others), then
over the brain pixels the sum, the squared deviations and the write,
accumulated in float64, without the boolean-indexed copies numpy would make.
Checking here, slice by slice, spares callers a separate pass over the whole
batch in memory.

Compiler directives are set once, in setup.py.
"""
from libc.math cimport sqrt
from libc.stdint cimport uint64_t
from libc.string cimport memcpy, memset


cdef extern from "_normalize.h":
    int fs_all_finite(const float* x, Py_ssize_t n) noexcept nogil


def normalize_brain(
    const float[:, :, :, ::1] images not None,   # IN      (N, H, W, C)
    const unsigned char[:, :, ::1] brain not None,  # IN   (N, H, W) non-zero = brain
    float[:, :, :, ::1] out not None,            # OUT     (N, H, W, C)
    double[:, ::1] stats not None,               # SCRATCH (2, C) mean and std of one slice
    double min_std,
):
    """Write ``(x - mean) / std`` over each slice's brain pixels (std < min_std: 1), 0 elsewhere.

    Returns -1, or the first slice holding a NaN or an infinite value (anywhere, brain or not): that
    slice and the following ones are then not written.
    """
    cdef Py_ssize_t N = images.shape[0], H = images.shape[1], W = images.shape[2], C = images.shape[3]
    cdef Py_ssize_t n, bad = -1
    if brain.shape[0] != N or brain.shape[1] != H or brain.shape[2] != W:
        raise ValueError(f"brain must have shape {(N, H, W)}")
    if out.shape[0] != N or out.shape[1] != H or out.shape[2] != W or out.shape[3] != C:
        raise ValueError(f"out must have shape {(N, H, W, C)}")
    if stats.shape[0] != 2 or stats.shape[1] != C:
        raise ValueError(f"stats must have shape {(2, C)}")
    if N * H * W * C == 0:
        return -1
    with nogil:
        for n in range(N):
            if not normalize_one(&images[n, 0, 0, 0], &brain[n, 0, 0], H * W, C, &out[n, 0, 0, 0],
                                 &stats[0, 0], &stats[1, 0], min_std):
                bad = n
                break
    return bad


cdef bint normalize_one(
    const float* image,            # IN  (P, C) pixels of one slice
    const unsigned char* brain,    # IN  (P,) non-zero = brain
    Py_ssize_t P, Py_ssize_t C,
    float* out,                    # OUT (P, C)
    double* mean, double* std,     # SCRATCH (C,) each
    double min_std,
) noexcept nogil:
    """Normalise one slice (as ``normalize_brain``) unless it holds a NaN or an infinite value (anywhere,
    brain or not): then return False, ``out`` not written."""
    if not fs_all_finite(image, P * C):
        return False
    normalize_slice(image, brain, P, C, out, mean, std, min_std)
    return True


cdef inline Py_ssize_t next_brain(const unsigned char* brain, Py_ssize_t p, Py_ssize_t P) noexcept nogil:
    """The first brain pixel at or after ``p`` (``P`` if none): through background runs eight mask
    bytes at a time (most of a slice is background)."""
    cdef uint64_t word
    while p + 8 <= P:
        memcpy(&word, brain + p, 8)
        if word != 0:
            break
        p += 8
    while p < P and not brain[p]:
        p += 1
    return p


cdef inline Py_ssize_t run_end(const unsigned char* brain, Py_ssize_t p, Py_ssize_t P) noexcept nogil:
    """The end of the run of brain pixels starting at ``p``."""
    while p < P and brain[p]:
        p += 1
    return p


cdef void masked_sums(
    const float* image, const unsigned char* brain, Py_ssize_t P, Py_ssize_t C,
    Py_ssize_t c0, Py_ssize_t nc,  # channels c0 .. c0 + nc - 1, nc <= 4
    const double* centre,          # IN  (C,) subtracted before squaring (squares only)
    bint squares,
    double* sums,                  # OUT (C,) sums[c0:c0 + nc]
) noexcept nogil:
    """Sums over brain pixels of up to four channels in one scan (or of squared deviations).

    Four scalar accumulators, one per channel, are independent chains that stay
    in registers; the pixels are visited run of brain pixels by run, in raster
    order (the background is skipped eight mask bytes at a time).
    """
    cdef double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0, d
    cdef double m0 = centre[c0] if squares else 0.0
    cdef double m1 = centre[c0 + 1] if squares and nc > 1 else 0.0
    cdef double m2 = centre[c0 + 2] if squares and nc > 2 else 0.0
    cdef double m3 = centre[c0 + 3] if squares and nc > 3 else 0.0
    cdef const float* px
    cdef Py_ssize_t p, q, end
    p = next_brain(brain, 0, P)
    while p < P:
        end = run_end(brain, p, P)
        for q in range(p, end):
            px = image + q * C + c0
            if squares:
                d = px[0] - m0
                a0 += d * d
                if nc > 1:
                    d = px[1] - m1
                    a1 += d * d
                if nc > 2:
                    d = px[2] - m2
                    a2 += d * d
                if nc > 3:
                    d = px[3] - m3
                    a3 += d * d
            else:
                a0 += px[0]
                if nc > 1:
                    a1 += px[1]
                if nc > 2:
                    a2 += px[2]
                if nc > 3:
                    a3 += px[3]
        p = next_brain(brain, end, P)
    sums[c0] = a0
    if nc > 1:
        sums[c0 + 1] = a1
    if nc > 2:
        sums[c0 + 2] = a2
    if nc > 3:
        sums[c0 + 3] = a3


cdef void normalize_slice(
    const float* image,            # IN  (P, C) pixels of one slice
    const unsigned char* brain,    # IN  (P,) non-zero = brain
    Py_ssize_t P, Py_ssize_t C,
    float* out,                    # OUT (P, C)
    double* mean, double* std,     # SCRATCH (C,) each
    double min_std,
) noexcept nogil:
    """One slice: the means, then the spreads around them (four channels per scan), then the write."""
    cdef Py_ssize_t p, c, count = 0
    for p in range(P):
        count += brain[p] != 0
    if count == 0:
        for c in range(C):
            mean[c] = 0.0
            std[c] = 1.0
    else:
        for c in range(0, C, 4):
            masked_sums(image, brain, P, C, c, min(4, C - c), mean, False, mean)
        for c in range(C):
            mean[c] /= count
        for c in range(0, C, 4):
            masked_sums(image, brain, P, C, c, min(4, C - c), mean, True, std)
        for c in range(C):
            std[c] = sqrt(std[c] / count)
            if std[c] < min_std:
                std[c] = 1.0
    for c in range(C):
        std[c] = 1.0 / std[c]  # multiply, not divide, in the write pass below
    if C == 4:  # the MRI case: the same arithmetic with a fixed channel count, which the compiler vectorises
        write4(image, brain, P, out, mean, std)
        return
    for p in range(P):
        if brain[p]:
            for c in range(C):
                out[p * C + c] = <float>((image[p * C + c] - mean[c]) * std[c])
        else:
            for c in range(C):
                out[p * C + c] = 0.0


cdef void write4(const float* image, const unsigned char* brain, Py_ssize_t P, float* out,
                 const double* mean, const double* scale) noexcept nogil:
    """out = (image - mean) * scale at brain pixels, 0 elsewhere, for four channels: run by run, each
    background run one memset, each brain run a loop without branches."""
    cdef double m0 = mean[0], m1 = mean[1], m2 = mean[2], m3 = mean[3]
    cdef double s0 = scale[0], s1 = scale[1], s2 = scale[2], s3 = scale[3]
    cdef Py_ssize_t p = 0, q, start, end
    cdef const float* px
    cdef float* o
    while p < P:
        start = next_brain(brain, p, P)
        memset(out + 4 * p, 0, 4 * (start - p) * sizeof(float))
        end = run_end(brain, start, P)
        for q in range(start, end):
            px = image + 4 * q
            o = out + 4 * q
            o[0] = <float>((px[0] - m0) * s0)
            o[1] = <float>((px[1] - m1) * s1)
            o[2] = <float>((px[2] - m2) * s2)
            o[3] = <float>((px[3] - m3) * s3)
        p = end


def divide_into_slices(
    const double[::1, :, :] volume not None,     # IN  (X, Y, Z), Fortran order (x fastest, as NIfTI stores it)
    double divisor,
    float[:, :, :, ::1] out not None,           # OUT (Z, Y, X, C) slices
    Py_ssize_t channel,
):
    """out[z, y, x, channel] = float32(volume[x, y, z] / divisor), in one pass.

    What ``(volume / divisor).astype(np.float32).transpose(2, 1, 0)`` written
    into one channel of a slice stack gives (IEEE division and rounding: the
    same values), without the float64 quotient, the float32 copy and numpy's
    strided gather of the transpose: both the volume and the slices are walked
    in memory order.
    """
    cdef Py_ssize_t X = volume.shape[0], Y = volume.shape[1], Z = volume.shape[2], C = out.shape[3]
    cdef Py_ssize_t x, y, z
    cdef const double* src
    cdef float* dst
    if out.shape[0] != Z or out.shape[1] != Y or out.shape[2] != X:
        raise ValueError(f"out must have shape ({Z}, {Y}, {X}, C) for a volume of shape ({X}, {Y}, {Z})")
    if not 0 <= channel < C:
        raise ValueError(f"channel must be in [0, {C}), got {channel}")
    if not (divisor > 0 and divisor < float("inf")):
        raise ValueError(f"divisor must be a positive finite number, got {divisor}")
    with nogil:
        for z in range(Z):
            for y in range(Y):
                src = &volume[0, y, z]
                dst = &out[z, y, 0, channel]
                for x in range(X):
                    dst[x * C] = <float>(src[x] / divisor)


# ---------------------------------------------------------------------------
# A stored integer volume z-scored straight into slices, without float64 copies
# ---------------------------------------------------------------------------

ctypedef fused stored_int:
    signed char
    unsigned char
    short
    unsigned short


cdef struct _Grid:
    const char* base   # the address of voxel (0, 0, 0)
    Py_ssize_t X, Y
    Py_ssize_t sx, sy, sz  # strides in bytes (any sign)


cdef enum:
    # numpy's pairwise summation: blocks of at most this many values are summed with 8 accumulators
    PAIRWISE_BLOCK = 128


cdef void _squares(stored_int* kind, const _Grid* g, double mean, Py_ssize_t lo, Py_ssize_t n,
                   double* buf) noexcept nogil:
    """buf[k] = (value(lo + k) - mean)**2 for the values ``lo .. lo + n - 1`` in Fortran order."""
    cdef Py_ssize_t x = lo % g.X, rest = lo // g.X
    cdef Py_ssize_t y = rest % g.Y, z = rest // g.Y
    cdef Py_ssize_t k
    cdef double d
    for k in range(n):
        d = <double>(<const stored_int*>(g.base + x * g.sx + y * g.sy + z * g.sz))[0] - mean
        buf[k] = d * d
        x += 1
        if x == g.X:
            x = 0
            y += 1
            if y == g.Y:
                y = 0
                z += 1


cdef double _pairwise_squares(stored_int* kind, const _Grid* g, double mean, Py_ssize_t lo,
                              Py_ssize_t n) noexcept nogil:
    """The sum of the squared deviations of values ``lo .. lo + n - 1``, added in the order and
    grouping of numpy's pairwise summation of a contiguous float64 array (halves rounded down to
    a multiple of 8 until a block of at most 128; a block summed with 8 interleaved accumulators,
    its tail added one by one), so that the result is the float64 numpy gives, bit for bit."""
    cdef double buf[PAIRWISE_BLOCK]
    cdef double r0, r1, r2, r3, r4, r5, r6, r7, res
    cdef Py_ssize_t i, n2
    if n > PAIRWISE_BLOCK:
        n2 = n // 2
        n2 -= n2 % 8
        return _pairwise_squares(kind, g, mean, lo, n2) + _pairwise_squares(kind, g, mean, lo + n2, n - n2)
    _squares(kind, g, mean, lo, n, buf)
    if n < 8:
        res = 0.0
        for i in range(n):
            res += buf[i]
        return res
    r0, r1, r2, r3, r4, r5, r6, r7 = buf[0], buf[1], buf[2], buf[3], buf[4], buf[5], buf[6], buf[7]
    i = 8
    while i < n - n % 8:
        r0 += buf[i]
        r1 += buf[i + 1]
        r2 += buf[i + 2]
        r3 += buf[i + 3]
        r4 += buf[i + 4]
        r5 += buf[i + 5]
        r6 += buf[i + 6]
        r7 += buf[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += buf[i]
        i += 1
    return res


def zscore_into_slices(
    const stored_int[:, :, :] volume not None,  # IN  (X, Y, Z), any strides (a reoriented view of the file's array)
    float[:, :, :, ::1] out not None,          # OUT (Z, Y, X, C) slices
    Py_ssize_t channel,
    unsigned char[:, :, ::1] brain not None,   # IN/OUT (Z, Y, X): set where the volume is non-zero
):
    """Z-score a stored integer volume over all its voxels into one channel of a slice stack.

    ``out[z, y, x, channel] = float32((v - mean) / std)`` for ``v = volume[x, y, z]``, with the
    mean and (population) standard deviation over every voxel, background zeros included, and
    ``brain[z, y, x] |= v != 0``.  The values are those of the float64 numpy route (``vol =
    volume.astype(float64, order="F")``; ``dev = vol - vol.mean()``; ``std = sqrt((dev * dev).sum()
    / vol.size)``; ``(dev / std).astype(float32)``, with a std of 0 taken as 1), bit for bit: the
    sum of the values is exact in int64 (and so in numpy's float64, for these 8- and 16-bit types),
    the squared deviations are summed in numpy's pairwise order.  Three passes over the stored
    values and none over a float64 copy: what reading a volume costs is little more than its
    decompression.

    Returns
    -------
    (mean, std, any_nonzero)
    """
    cdef Py_ssize_t X = volume.shape[0], Y = volume.shape[1], Z = volume.shape[2], C = out.shape[3]
    cdef Py_ssize_t x, y, z, n = X * Y * Z
    cdef long long total = 0
    cdef bint nonzero = False
    cdef double mean = 0.0, std = 1.0, divisor
    cdef stored_int v
    cdef _Grid g
    cdef const stored_int* src
    cdef float* dst
    cdef unsigned char* mask
    if out.shape[0] != Z or out.shape[1] != Y or out.shape[2] != X:
        raise ValueError(f"out must have shape ({Z}, {Y}, {X}, C) for a volume of shape ({X}, {Y}, {Z})")
    if brain.shape[0] != Z or brain.shape[1] != Y or brain.shape[2] != X:
        raise ValueError(f"brain must have shape ({Z}, {Y}, {X}) for a volume of shape ({X}, {Y}, {Z})")
    if not 0 <= channel < C:
        raise ValueError(f"channel must be in [0, {C}), got {channel}")
    if n == 0 or n > (1 << 36):  # beyond 2**36 values, the sum could leave float64's exact integers
        raise ValueError(f"volume must hold 1 to 2**36 voxels, got shape ({X}, {Y}, {Z})")
    g.base = <const char*>&volume[0, 0, 0]
    g.X, g.Y = X, Y
    g.sx, g.sy, g.sz = volume.strides[0], volume.strides[1], volume.strides[2]
    with nogil:
        for z in range(Z):
            for y in range(Y):
                src = &volume[0, y, z]
                mask = &brain[z, y, 0]
                for x in range(X):
                    v = (<const stored_int*>(<const char*>src + x * g.sx))[0]
                    total += v
                    if v != 0:
                        mask[x] = 1
                        nonzero = True
        mean = <double>total / <double>n
        std = sqrt((0.0 + _pairwise_squares(<stored_int*>NULL, &g, mean, 0, n)) / <double>n)
        divisor = std if std > 0 else 1.0
        for z in range(Z):
            for y in range(Y):
                src = &volume[0, y, z]
                dst = &out[z, y, 0, channel]
                for x in range(X):
                    v = (<const stored_int*>(<const char*>src + x * g.sx))[0]
                    dst[x * C] = <float>((<double>v - mean) / divisor)
    return mean, std, bool(nonzero)
