"""Fused linear scoring: a k x k x C correlation of each image with the model's weights.

A linear model over window features scores pixel ``(y, x)`` as
``b + sum_{dy, dx, c} w[dy, dx, c] * padded[y + dy, x + dx, c]``.  Each image is
padded once into channel planes (``_padded.pad_image_planar``), after which
every tap ``(c, dy, dx)`` adds ``w * plane_row`` to a block of output pixels:
a contiguous multiply-add along x that vectorises.  A block of ``BLOCK``
outputs is kept in registers while all ``k * k * C`` taps are added, so the
only memory traffic is reading the padded rows.

The inner loop is written in C (below) with GCC/Clang vector extensions and
compiled twice: once for AVX2+FMA (``__attribute__((target("avx2,fma")))``),
once for the baseline ISA of the build flags.  The AVX2 version is chosen at
run time with ``__builtin_cpu_supports``, so the extension stays portable
(no ``-march=native``).  Other compilers get a plain scalar loop.

Compiler directives are set once, in setup.py.
"""
from ._padded cimport check_pad_maps, pad_image_planar

cdef extern from *:
    """
    #include <string.h>
    #include <stddef.h>

    /* Output pixels per register block: 8 vectors of 8 floats = 8 independent FMA chains. */
    #define FS_LIN_BLOCK 64

    #if defined(__GNUC__) && !defined(__INTEL_COMPILER)
    #define FS_LIN_VECTOR 1
    typedef float fs_v8 __attribute__((vector_size(32)));
    #define FS_ALWAYS_INLINE inline __attribute__((always_inline))
    #else
    #define FS_LIN_VECTOR 0
    #define FS_ALWAYS_INLINE inline
    #endif

    #if FS_LIN_VECTOR && (defined(__x86_64__) || defined(__i386__))
    #define FS_LIN_DISPATCH 1
    #else
    #define FS_LIN_DISPATCH 0
    #endif

    /* Scores of one block of up to FS_LIN_BLOCK pixels of output row y, starting at x0.
       planes: (C, Hp, row_len) padded channel planes, row_len >= x0 + FS_LIN_BLOCK + k - 1.
       wt: (C, k, k) weights.  acc_out receives FS_LIN_BLOCK scores. */
    static FS_ALWAYS_INLINE void fs_lin_block(
        const float *planes, ptrdiff_t C, ptrdiff_t Hp, ptrdiff_t row_len, ptrdiff_t k,
        const float *wt, float bias, ptrdiff_t y, ptrdiff_t x0, float *acc_out)
    {
        ptrdiff_t c, dy, dx;
    #if FS_LIN_VECTOR
        fs_v8 a0, a1, a2, a3, a4, a5, a6, a7, v;
        fs_v8 b = {bias, bias, bias, bias, bias, bias, bias, bias};
        a0 = b; a1 = b; a2 = b; a3 = b; a4 = b; a5 = b; a6 = b; a7 = b;
        for (c = 0; c < C; c++) {
            for (dy = 0; dy < k; dy++) {
                const float *src = planes + (c * Hp + y + dy) * row_len + x0;
                const float *w = wt + (c * k + dy) * k;
                for (dx = 0; dx < k; dx++) {
                    const float *s = src + dx;
                    const float wd = w[dx];
                    memcpy(&v, s, 32);      a0 += wd * v;
                    memcpy(&v, s + 8, 32);  a1 += wd * v;
                    memcpy(&v, s + 16, 32); a2 += wd * v;
                    memcpy(&v, s + 24, 32); a3 += wd * v;
                    memcpy(&v, s + 32, 32); a4 += wd * v;
                    memcpy(&v, s + 40, 32); a5 += wd * v;
                    memcpy(&v, s + 48, 32); a6 += wd * v;
                    memcpy(&v, s + 56, 32); a7 += wd * v;
                }
            }
        }
        memcpy(acc_out, &a0, 32);      memcpy(acc_out + 8, &a1, 32);
        memcpy(acc_out + 16, &a2, 32); memcpy(acc_out + 24, &a3, 32);
        memcpy(acc_out + 32, &a4, 32); memcpy(acc_out + 40, &a5, 32);
        memcpy(acc_out + 48, &a6, 32); memcpy(acc_out + 56, &a7, 32);
    #else
        ptrdiff_t i;
        for (i = 0; i < FS_LIN_BLOCK; i++) acc_out[i] = bias;
        for (c = 0; c < C; c++) {
            for (dy = 0; dy < k; dy++) {
                const float *src = planes + (c * Hp + y + dy) * row_len + x0;
                const float *w = wt + (c * k + dy) * k;
                for (dx = 0; dx < k; dx++) {
                    const float wd = w[dx];
                    for (i = 0; i < FS_LIN_BLOCK; i++) acc_out[i] += wd * src[dx + i];
                }
            }
        }
    #endif
    }

    /* All scores of one padded image; mask (H, W) may be NULL (score every pixel). */
    static FS_ALWAYS_INLINE void fs_lin_image_body(
        const float *planes, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t row_len,
        ptrdiff_t k, const float *wt, float bias,
        const unsigned char *mask, float fill, float *out)
    {
        const ptrdiff_t Hp = H + k - 1;
        ptrdiff_t y, x0, i, n;
        float acc[FS_LIN_BLOCK];
        for (y = 0; y < H; y++) {
            float *orow = out + y * W;
            const unsigned char *mrow = mask ? mask + y * W : NULL;
            for (x0 = 0; x0 < W; x0 += FS_LIN_BLOCK) {
                n = W - x0 < FS_LIN_BLOCK ? W - x0 : FS_LIN_BLOCK;
                if (mrow) {
                    int any = 0;
                    for (i = 0; i < n; i++) any |= mrow[x0 + i];
                    if (!any) {
                        for (i = 0; i < n; i++) orow[x0 + i] = fill;
                        continue;
                    }
                }
                fs_lin_block(planes, C, Hp, row_len, k, wt, bias, y, x0, acc);
                if (mrow) {
                    for (i = 0; i < n; i++) orow[x0 + i] = mrow[x0 + i] ? acc[i] : fill;
                } else {
                    memcpy(orow + x0, acc, n * sizeof(float));
                }
            }
        }
    }

    #if FS_LIN_DISPATCH
    __attribute__((target("avx2,fma")))
    static void fs_lin_image_avx2(
        const float *planes, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t row_len,
        ptrdiff_t k, const float *wt, float bias,
        const unsigned char *mask, float fill, float *out)
    {
        fs_lin_image_body(planes, C, H, W, row_len, k, wt, bias, mask, fill, out);
    }
    #endif

    static void fs_lin_image_base(
        const float *planes, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t row_len,
        ptrdiff_t k, const float *wt, float bias,
        const unsigned char *mask, float fill, float *out)
    {
        fs_lin_image_body(planes, C, H, W, row_len, k, wt, bias, mask, fill, out);
    }

    static int fs_lin_use_avx2(void)
    {
    #if FS_LIN_DISPATCH
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    #else
        return 0;
    #endif
    }

    static void fs_lin_cpu_init(void)
    {
    #if FS_LIN_DISPATCH
        __builtin_cpu_init();
    #endif
    }

    static void fs_lin_image(
        const float *planes, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t row_len,
        ptrdiff_t k, const float *wt, float bias,
        const unsigned char *mask, float fill, float *out)
    {
    #if FS_LIN_DISPATCH
        if (fs_lin_use_avx2()) {
            fs_lin_image_avx2(planes, C, H, W, row_len, k, wt, bias, mask, fill, out);
            return;
        }
    #endif
        fs_lin_image_base(planes, C, H, W, row_len, k, wt, bias, mask, fill, out);
    }
    """
    const Py_ssize_t FS_LIN_BLOCK
    void fs_lin_cpu_init() noexcept nogil
    int fs_lin_use_avx2() noexcept nogil
    void fs_lin_image(
        const float* planes, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t row_len,
        Py_ssize_t k, const float* wt, float bias,
        const unsigned char* mask, float fill, float* out,
    ) noexcept nogil


fs_lin_cpu_init()

#: Output pixels computed together; the planar scratch rows need ``ceil(W / BLOCK) * BLOCK + k - 1`` floats.
BLOCK = FS_LIN_BLOCK


def simd_path():
    """Which compiled inner loop runs on this CPU: ``"avx2+fma"`` or ``"baseline"``."""
    return "avx2+fma" if fs_lin_use_avx2() else "baseline"


def linear_scores(
    const float[:, :, :, ::1] images not None,   # IN      (N, H, W, C)
    const Py_ssize_t[::1] rowmap not None,       # IN      (H + 2r,) padding row map
    const Py_ssize_t[::1] colmap not None,       # IN      (W + 2r,) padding column map
    const float[:, :, ::1] weights not None,     # IN      (C, k, k) weights[c, dy, dx]
    float intercept,
    const unsigned char[:, :, ::1] mask,         # IN      (N, H, W) non-zero = score, or None = all
    float fill_value,
    float[:, :, ::1] out not None,               # OUT     (N, H, W)
    float[:, :, ::1] planes not None,            # SCRATCH (C, H + 2r, >= ceil(W/BLOCK)*BLOCK + 2r)
):
    """Write ``intercept + correlation(image, weights)`` for every pixel of every image into ``out``.

    Pixels where ``mask`` is zero get ``fill_value``; blocks of ``BLOCK``
    pixels of a row without any selected pixel are not computed.

    Returns the number of images holding a NaN or infinite value (checked during
    the padding copy; a sum of huge finite values may also count, so callers
    confirm with an exact check before rejecting).
    """
    cdef Py_ssize_t N = images.shape[0], H = images.shape[1], W = images.shape[2]
    cdef Py_ssize_t C = images.shape[3]
    cdef Py_ssize_t k = weights.shape[1]
    cdef Py_ssize_t r = k // 2
    cdef Py_ssize_t n_blocks = (W + FS_LIN_BLOCK - 1) // FS_LIN_BLOCK
    cdef Py_ssize_t row_len = planes.shape[2]
    cdef Py_ssize_t n, n_bad = 0
    cdef const unsigned char* mask_ptr = NULL
    cdef bint has_mask = mask is not None
    if k < 1 or k % 2 == 0 or weights.shape[2] != k:
        raise ValueError(f"weights must have shape (C, k, k) with odd k, got {tuple(weights.shape)[:3]}")
    if weights.shape[0] != C:
        raise ValueError(f"weights must have {C} channel planes, got {weights.shape[0]}")
    check_pad_maps(rowmap, colmap, H, W, r)
    if out.shape[0] != N or out.shape[1] != H or out.shape[2] != W:
        raise ValueError(f"out must have shape {(N, H, W)}, got {tuple(out.shape)[:3]}")
    if mask is not None and (mask.shape[0] != N or mask.shape[1] != H or mask.shape[2] != W):
        raise ValueError(f"mask must have shape {(N, H, W)}, got {tuple(mask.shape)[:3]}")
    if planes.shape[0] != C or planes.shape[1] != H + 2 * r or row_len < n_blocks * FS_LIN_BLOCK + 2 * r:
        raise ValueError(
            f"planes must have shape ({C}, {H + 2 * r}, >= {n_blocks * FS_LIN_BLOCK + 2 * r}), "
            f"got {tuple(planes.shape)[:3]}"
        )
    if N * H * W == 0:
        return 0
    with nogil:
        for n in range(N):
            n_bad += not pad_image_planar(&images[n, 0, 0, 0], H, W, C, &rowmap[0], &colmap[0], r,
                                          &planes[0, 0, 0], row_len)
            if has_mask:
                mask_ptr = &mask[n, 0, 0]
            fs_lin_image(&planes[0, 0, 0], C, H, W, row_len, k, &weights[0, 0, 0], intercept,
                         mask_ptr, fill_value, &out[n, 0, 0])
    return n_bad
