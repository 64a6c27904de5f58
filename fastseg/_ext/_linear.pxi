# The fused linear scoring kernels: included by _linear.pyx (baseline build) and _linear_avx2.pyx
# (built with AVX2 and FMA); see _linear.pyx's docstring.

from ._padded cimport check_pad_maps, pad_image, pad_rows_planar

include "_simd.pxi"

cdef extern from "_linear.h":
    const Py_ssize_t FS_LIN_BLOCK
    const char* fs_lin_simd_path() noexcept nogil
    int fs_lin_interleaved_ok(Py_ssize_t C, Py_ssize_t W) noexcept nogil
    int fs_lin_planar(
        const float* planes, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t row_len,
        Py_ssize_t plane, Py_ssize_t k, const float* wt, float bias,
        const unsigned char* mask, float fill, float* out,
    ) noexcept nogil
    int fs_lin_interleaved(
        const float* padded, Py_ssize_t H, Py_ssize_t W, Py_ssize_t k, const float* wt, float bias,
        const unsigned char* mask, float fill, float* out,
    ) noexcept nogil

#: Output pixels per block of the planar kernel; its scratch rows need ``ceil(W / BLOCK) * BLOCK + k - 1`` floats.
BLOCK = FS_LIN_BLOCK


def simd_path():
    """Which compiled inner loops this build of the module runs: ``"avx2+fma"`` or ``"baseline"``."""
    return fs_lin_simd_path().decode("ascii")


def interleaved_ok(Py_ssize_t n_channels, Py_ssize_t width):
    """Whether :func:`linear_scores_interleaved` runs for this channel count and image width (in this
    build: the AVX2 one, which ``fastseg._ext.for_this_cpu`` loads only on a CPU that runs it)."""
    return bool(fs_lin_interleaved_ok(n_channels, width))


cdef int check_common(
    const float[:, :, :, ::1] images, const Py_ssize_t[::1] rowmap, const Py_ssize_t[::1] colmap,
    const float[:, :, ::1] weights, const unsigned char[:, :, ::1] mask, float[:, :, ::1] out,
) except -1:
    """The O(1) facts (and the O(H + W) index maps) that memory safety depends on."""
    cdef Py_ssize_t N = images.shape[0], H = images.shape[1], W = images.shape[2]
    cdef Py_ssize_t C = images.shape[3]
    cdef Py_ssize_t k = weights.shape[0]
    if k < 1 or k % 2 == 0 or weights.shape[1] != k or weights.shape[2] != C:
        raise ValueError(f"weights must have shape (k, k, {C}) with odd k, got {tuple(weights.shape)[:3]}")
    check_pad_maps(rowmap, colmap, H, W, k // 2)
    if out.shape[0] != N or out.shape[1] != H or out.shape[2] != W:
        raise ValueError(f"out must have shape {(N, H, W)}, got {tuple(out.shape)[:3]}")
    if mask is not None and (mask.shape[0] != N or mask.shape[1] != H or mask.shape[2] != W):
        raise ValueError(f"mask must have shape {(N, H, W)}, got {tuple(mask.shape)[:3]}")
    return 0


def linear_scores_planar(
    const float[:, :, :, ::1] images not None,   # IN      (N, H, W, C)
    const Py_ssize_t[::1] rowmap not None,       # IN      (H + 2r,) padding row map
    const Py_ssize_t[::1] colmap not None,       # IN      (W + 2r,) padding column map
    const float[:, :, ::1] weights not None,     # IN      (k, k, C) weights in feature order
    float intercept,
    const unsigned char[:, :, ::1] mask,         # IN      (N, H, W) non-zero = score, or None = all
    float fill_value,
    float[:, :, ::1] out not None,               # OUT     (N, H, W)
    float[:, :, ::1] planes not None,            # SCRATCH (C, band + 2r, >= ceil(W/BLOCK)*BLOCK + 2r)
):
    """Write ``intercept + correlation(image, weights)`` for every pixel into ``out`` (planar layout).

    Works for any channel count on any CPU.  Images go in bands of
    ``band = planes.shape[1] - 2r`` output rows (any band >= 1; the caller picks
    one whose planes fit in cache).  Pixels where ``mask`` is zero get
    ``fill_value``; blocks of ``BLOCK`` pixels of a row with none selected are
    not computed.  Returns the number of images with a non-finite computed score.
    """
    check_common(images, rowmap, colmap, weights, mask, out)
    cdef Py_ssize_t N = images.shape[0], H = images.shape[1], W = images.shape[2]
    cdef Py_ssize_t C = images.shape[3]
    cdef Py_ssize_t k = weights.shape[0]
    cdef Py_ssize_t r = k // 2
    cdef Py_ssize_t n_blocks = (W + FS_LIN_BLOCK - 1) // FS_LIN_BLOCK
    cdef Py_ssize_t row_len = planes.shape[2]
    cdef Py_ssize_t band = planes.shape[1] - 2 * r
    cdef Py_ssize_t plane = planes.shape[1] * row_len
    cdef Py_ssize_t n, y0, rows, n_bad = 0
    cdef int bad
    cdef bint has_mask = mask is not None
    cdef const unsigned char* mask_ptr = NULL
    if planes.shape[0] != C or band < 1 or row_len < n_blocks * FS_LIN_BLOCK + 2 * r:
        raise ValueError(
            f"planes must have shape ({C}, >= {1 + 2 * r}, >= {n_blocks * FS_LIN_BLOCK + 2 * r}), "
            f"got {tuple(planes.shape)[:3]}"
        )
    if N * H * W == 0:
        return 0
    with nogil:
        for n in range(N):
            bad = 0
            y0 = 0
            while y0 < H:
                rows = min(band, H - y0)
                # Padded rows y0 .. y0 + rows + 2r - 1 hold every window of output rows y0 .. y0 + rows - 1.
                pad_rows_planar(&images[n, 0, 0, 0], H, W, C, &rowmap[0], &colmap[0], r,
                                y0, y0 + rows + 2 * r, &planes[0, 0, 0], row_len, plane)
                if has_mask:
                    mask_ptr = &mask[n, y0, 0]
                bad |= fs_lin_planar(&planes[0, 0, 0], C, rows, W, row_len, plane, k, &weights[0, 0, 0],
                                     intercept, mask_ptr, fill_value, &out[n, y0, 0])
                y0 += rows
            n_bad += bad != 0
    return n_bad


def linear_scores_interleaved(
    const float[:, :, :, ::1] images not None,   # IN      (N, H, W, 4)
    const Py_ssize_t[::1] rowmap not None,       # IN      (H + 2r,) padding row map
    const Py_ssize_t[::1] colmap not None,       # IN      (W + 2r,) padding column map
    const float[:, :, ::1] weights not None,     # IN      (k, k, 4) weights in feature order
    float intercept,
    const unsigned char[:, :, ::1] mask,         # IN      (N, H, W) non-zero = score, or None = all
    float fill_value,
    float[:, :, ::1] out not None,               # OUT     (N, H, W)
    float[:, :, ::1] padded not None,            # SCRATCH (H + 2r, W + 2r, 4)
):
    """As :func:`linear_scores_planar` for four channels, on the interleaved padded image.

    Only when :func:`interleaved_ok` (four channels, ``W >= 16``, the AVX2+FMA build);
    raises ValueError otherwise.  Blocks of 16 pixels with none selected are not
    computed.  Returns the number of images with a non-finite computed score.
    """
    check_common(images, rowmap, colmap, weights, mask, out)
    cdef Py_ssize_t N = images.shape[0], H = images.shape[1], W = images.shape[2]
    cdef Py_ssize_t C = images.shape[3]
    cdef Py_ssize_t k = weights.shape[0]
    cdef Py_ssize_t r = k // 2
    cdef Py_ssize_t n, n_bad = 0
    cdef bint has_mask = mask is not None
    cdef const unsigned char* mask_ptr = NULL
    if not fs_lin_interleaved_ok(C, W):
        raise ValueError(f"the interleaved kernel needs C == 4, W >= 16 and the AVX2+FMA build (C={C}, W={W})")
    if padded.shape[0] != H + 2 * r or padded.shape[1] != W + 2 * r or padded.shape[2] != C:
        raise ValueError(f"padded must have shape {(H + 2 * r, W + 2 * r, C)}, got {tuple(padded.shape)[:3]}")
    if N * H * W == 0:
        return 0
    with nogil:
        for n in range(N):
            pad_image(&images[n, 0, 0, 0], H, W, C, &rowmap[0], &colmap[0], r, &padded[0, 0, 0])
            if has_mask:
                mask_ptr = &mask[n, 0, 0]
            n_bad += fs_lin_interleaved(&padded[0, 0, 0], H, W, k, &weights[0, 0, 0], intercept,
                                        mask_ptr, fill_value, &out[n, 0, 0]) != 0
    return n_bad
