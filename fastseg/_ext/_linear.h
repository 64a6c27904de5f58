/* Inner loops of the fused linear scoring kernels (_linear.pyx). */
#ifndef FASTSEG_LINEAR_H
#define FASTSEG_LINEAR_H

#include <string.h>
#include <stddef.h>
#include <stdint.h>

/* Planar layout: output pixels per register block, 8 vectors of 8 floats. */
#define FS_LIN_BLOCK 64
/* Interleaved layout: output pixels per register block (8 vectors of 2 pixels x 4 channels). */
#define FS_LIN_IBLOCK 16

#if defined(__GNUC__) && !defined(__INTEL_COMPILER)
#define FS_LIN_VECTOR 1
typedef float fs_v8 __attribute__((vector_size(32)));
#define FS_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define FS_LIN_VECTOR 0
#define FS_ALWAYS_INLINE inline
#endif

/* The AVX2 build of the module (compiled with AVX2 and FMA, see setup.py) has the interleaved
   kernel and accumulates with explicit fused multiply-adds; the baseline build has neither.
   Nothing is contracted implicitly (-ffp-contract=off): an FMA is one written here. */
#if FS_LIN_VECTOR && defined(__AVX2__) && defined(__FMA__)
#define FS_LIN_AVX2 1
#include <immintrin.h>
/* a + w * v, rounded once */
#define FS_LIN_MADD(a, w, v) ((a) = (fs_v8)_mm256_fmadd_ps(_mm256_set1_ps(w), (__m256)(v), (__m256)(a)))
#define FS_LIN_SIMD_PATH "avx2+fma"
#else
#define FS_LIN_AVX2 0
#define FS_LIN_MADD(a, w, v) ((a) += (w) * (v))
#define FS_LIN_SIMD_PATH "baseline"
#endif

static FS_ALWAYS_INLINE int fs_is_finite(float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    return (bits & 0x7f800000u) != 0x7f800000u;
}

/* ---------------------------------------------------------------- planar layout */

/* Scores of one block of FS_LIN_BLOCK pixels of output row y from x0.
   planes: C padded channel planes (rows of row_len floats, planes `plane` floats
   apart), row_len >= x0 + FS_LIN_BLOCK + k - 1.  wt: (k, k, C) weights. */
static FS_ALWAYS_INLINE void fs_lin_block(
    const float *planes, ptrdiff_t C, ptrdiff_t plane, ptrdiff_t row_len, ptrdiff_t k,
    const float *wt, float bias, ptrdiff_t y, ptrdiff_t x0, float *acc_out)
{
    ptrdiff_t c, dy, dx;
#if FS_LIN_VECTOR
    fs_v8 a0, a1, a2, a3, a4, a5, a6, a7, v;
    fs_v8 b = {bias, bias, bias, bias, bias, bias, bias, bias};
    a0 = b; a1 = b; a2 = b; a3 = b; a4 = b; a5 = b; a6 = b; a7 = b;
    for (c = 0; c < C; c++) {
        for (dy = 0; dy < k; dy++) {
            const float *src = planes + c * plane + (y + dy) * row_len + x0;
            const float *w = wt + dy * k * C + c;
            for (dx = 0; dx < k; dx++) {
                const float *s = src + dx;
                const float wd = w[dx * C];
                memcpy(&v, s, 32);      FS_LIN_MADD(a0, wd, v);
                memcpy(&v, s + 8, 32);  FS_LIN_MADD(a1, wd, v);
                memcpy(&v, s + 16, 32); FS_LIN_MADD(a2, wd, v);
                memcpy(&v, s + 24, 32); FS_LIN_MADD(a3, wd, v);
                memcpy(&v, s + 32, 32); FS_LIN_MADD(a4, wd, v);
                memcpy(&v, s + 40, 32); FS_LIN_MADD(a5, wd, v);
                memcpy(&v, s + 48, 32); FS_LIN_MADD(a6, wd, v);
                memcpy(&v, s + 56, 32); FS_LIN_MADD(a7, wd, v);
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
            const float *src = planes + c * plane + (y + dy) * row_len + x0;
            const float *w = wt + dy * k * C + c;
            for (dx = 0; dx < k; dx++) {
                const float wd = w[dx * C];
                for (i = 0; i < FS_LIN_BLOCK; i++) acc_out[i] += wd * src[dx + i];
            }
        }
    }
#endif
}

/* Store n scores of a block: masked pixels get fill.  Returns 1 if a computed score is not finite. */
static FS_ALWAYS_INLINE int fs_lin_store(const float *acc, ptrdiff_t n, const unsigned char *mrow,
                                         float fill, float *orow)
{
    ptrdiff_t i;
    int bad = 0;
    if (mrow) {
        for (i = 0; i < n; i++) {
            if (mrow[i]) { orow[i] = acc[i]; bad |= !fs_is_finite(acc[i]); }
            else orow[i] = fill;
        }
    } else {
        i = 0;
#if FS_LIN_VECTOR
        {   /* Eight at a time: a scalar store-and-test loop costs as much as a k=3 block. */
            typedef uint32_t fs_u8 __attribute__((vector_size(32)));
            const fs_u8 expo = {0x7f800000u, 0x7f800000u, 0x7f800000u, 0x7f800000u,
                                0x7f800000u, 0x7f800000u, 0x7f800000u, 0x7f800000u};
            fs_u8 u, badv = {0, 0, 0, 0, 0, 0, 0, 0};
            for (; i + 8 <= n; i += 8) {
                memcpy(&u, acc + i, 32);
                memcpy(orow + i, acc + i, 32);
                badv |= (fs_u8)((u & expo) == expo);
            }
            for (int j = 0; j < 8; j++) bad |= badv[j] != 0;
        }
#endif
        for (; i < n; i++) { orow[i] = acc[i]; bad |= !fs_is_finite(acc[i]); }
    }
    return bad;
}

/* Does the mask select any of these n pixels?  (NULL mask: all.) Fills the rest otherwise. */
static FS_ALWAYS_INLINE int fs_lin_any(const unsigned char *mrow, ptrdiff_t n, float fill, float *orow)
{
    ptrdiff_t i;
    unsigned char any = 0;
    if (!mrow) return 1;
    for (i = 0; i < n; i++) any |= mrow[i];
    if (!any)
        for (i = 0; i < n; i++) orow[i] = fill;
    return any != 0;
}

/* Scores of H output rows from their planes (H + k - 1 padded rows each). */
static FS_ALWAYS_INLINE int fs_lin_planar_body(
    const float *planes, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t row_len,
    ptrdiff_t plane, ptrdiff_t k, const float *wt, float bias,
    const unsigned char *mask, float fill, float *out)
{
    ptrdiff_t y, x0, n;
    int bad = 0;
    float acc[FS_LIN_BLOCK];
    for (y = 0; y < H; y++) {
        for (x0 = 0; x0 < W; x0 += FS_LIN_BLOCK) {
            const unsigned char *mrow = mask ? mask + y * W + x0 : NULL;
            n = W - x0 < FS_LIN_BLOCK ? W - x0 : FS_LIN_BLOCK;
            if (!fs_lin_any(mrow, n, fill, out + y * W + x0)) continue;
            fs_lin_block(planes, C, plane, row_len, k, wt, bias, y, x0, acc);
            bad |= fs_lin_store(acc, n, mrow, fill, out + y * W + x0);
        }
    }
    return bad;
}

/* Literal window sizes let the compiler unroll the tap loops (k = 3, 5, 7 are
   the sizes used in practice); other sizes run the generic body. */
#define FS_LIN_K_SWITCH(BODY, ...)                       \
    switch (k) {                                         \
    case 3: return BODY(__VA_ARGS__, 3, wt, bias, mask, fill, out); \
    case 5: return BODY(__VA_ARGS__, 5, wt, bias, mask, fill, out); \
    case 7: return BODY(__VA_ARGS__, 7, wt, bias, mask, fill, out); \
    default: return BODY(__VA_ARGS__, k, wt, bias, mask, fill, out); \
    }

#define FS_LIN_PLANAR_ARGS                                                         \
    const float *planes, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, ptrdiff_t row_len, \
    ptrdiff_t plane, ptrdiff_t k, const float *wt, float bias,                     \
    const unsigned char *mask, float fill, float *out

/* Returns 1 if a computed score is not finite. */
static int fs_lin_planar(FS_LIN_PLANAR_ARGS)
{
    FS_LIN_K_SWITCH(fs_lin_planar_body, planes, C, H, W, row_len, plane)
}

/* ------------------------------------------------------------ interleaved layout */

#if FS_LIN_AVX2
/* Sum each pixel's four channel lanes: a..d hold pixels (0,1), (2,3), (4,5), (6,7);
   returns the eight pixel sums in order. */
static inline __m256 fs_sum4_avx2(__m256 a, __m256 b, __m256 c, __m256 d)
{
    /* hadd(hadd(a, b), hadd(c, d)) holds pixels 0 2 4 6 | 1 3 5 7. */
    __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    return _mm256_permutevar8x32_ps(h, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* Scores of output row y, pixels x0 .. x0 + 15, as two vectors.  padded: (H + k - 1,
   W + k - 1, 4) interleaved; wt: (k, k, 4) weights. */
static FS_ALWAYS_INLINE void fs_lin_iblock_avx2(
    const float *padded, ptrdiff_t row_len, ptrdiff_t k, const float *wt, __m256 b,
    ptrdiff_t y, ptrdiff_t x0, __m256 *lo, __m256 *hi)
{
    ptrdiff_t dy, dx;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (dy = 0; dy < k; dy++) {
        const float *src = padded + (y + dy) * row_len + 4 * x0;
        const float *w = wt + dy * k * 4;
        for (dx = 0; dx < k; dx++) {
            const float *s = src + 4 * dx;
            const __m256 wv = _mm256_broadcast_ps((const __m128 *)(w + 4 * dx));
            a0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(s), a0);
            a1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(s + 8), a1);
            a2 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(s + 16), a2);
            a3 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(s + 24), a3);
            a4 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(s + 32), a4);
            a5 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(s + 40), a5);
            a6 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(s + 48), a6);
            a7 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(s + 56), a7);
        }
    }
    *lo = _mm256_add_ps(fs_sum4_avx2(a0, a1, a2, a3), b);
    *hi = _mm256_add_ps(fs_sum4_avx2(a4, a5, a6, a7), b);
}

static FS_ALWAYS_INLINE int fs_lin_interleaved_body(
    const float *padded, ptrdiff_t H, ptrdiff_t W, ptrdiff_t k, const float *wt, float bias,
    const unsigned char *mask, float fill, float *out)
{
    const ptrdiff_t row_len = (W + k - 1) * 4;
    const __m256 b = _mm256_set1_ps(bias);
    const __m256i expo = _mm256_set1_epi32(0x7f800000);
    __m256i badv = _mm256_setzero_si256();
    __m256 lo, hi;
    ptrdiff_t y, x0, start;
    int bad = 0;
    float acc[FS_LIN_IBLOCK];
    for (y = 0; y < H; y++) {
        for (x0 = 0; x0 < W; x0 += FS_LIN_IBLOCK) {
            /* The last block ends at the row's end (W >= 16), overlapping its neighbour:
               no read past the padded row and no scalar tail. */
            start = x0 + FS_LIN_IBLOCK <= W ? x0 : W - FS_LIN_IBLOCK;
            float *orow = out + y * W + start;
            if (mask) {
                const unsigned char *mrow = mask + y * W + start;
                if (!fs_lin_any(mrow, FS_LIN_IBLOCK, fill, orow)) continue;
                fs_lin_iblock_avx2(padded, row_len, k, wt, b, y, start, &lo, &hi);
                _mm256_storeu_ps(acc, lo);
                _mm256_storeu_ps(acc + 8, hi);
                bad |= fs_lin_store(acc, FS_LIN_IBLOCK, mrow, fill, orow);
            } else {
                fs_lin_iblock_avx2(padded, row_len, k, wt, b, y, start, &lo, &hi);
                _mm256_storeu_ps(orow, lo);
                _mm256_storeu_ps(orow + 8, hi);
                badv = _mm256_or_si256(badv, _mm256_cmpeq_epi32(
                    _mm256_and_si256(_mm256_castps_si256(lo), expo), expo));
                badv = _mm256_or_si256(badv, _mm256_cmpeq_epi32(
                    _mm256_and_si256(_mm256_castps_si256(hi), expo), expo));
            }
        }
    }
    return bad | !_mm256_testz_si256(badv, badv);
}

static int fs_lin_interleaved(const float *padded, ptrdiff_t H, ptrdiff_t W, ptrdiff_t k,
                              const float *wt, float bias, const unsigned char *mask, float fill,
                              float *out)
{
    FS_LIN_K_SWITCH(fs_lin_interleaved_body, padded, H, W)
}

static int fs_lin_interleaved_ok(ptrdiff_t C, ptrdiff_t W)
{
    return C == 4 && W >= FS_LIN_IBLOCK;
}
#else
static int fs_lin_interleaved(const float *padded, ptrdiff_t H, ptrdiff_t W, ptrdiff_t k,
                              const float *wt, float bias, const unsigned char *mask, float fill,
                              float *out)
{
    return -1;  /* never called: fs_lin_interleaved_ok is false */
}

static int fs_lin_interleaved_ok(ptrdiff_t C, ptrdiff_t W)
{
    return 0;
}
#endif

/* "avx2+fma" in the AVX2 build, else "baseline". */
static const char *fs_lin_simd_path(void)
{
    return FS_LIN_SIMD_PATH;
}

#endif /* FASTSEG_LINEAR_H */
