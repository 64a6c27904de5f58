/* Eigenvalues of symmetric 3x3 matrices for the multiscale kernel (_multiscale.pxi), a row at a time.

   A = q I + p B with q = trace / 3, p = sqrt(tr((A - q I)^2) / 6), so B is traceless with
   tr(B^2) = 6 and its eigenvalues are the roots of t^3 - 3 t - 2 r, r = det(B) / 2 in [-1, 1]:
   2 cos(acos(r) / 3 - 2 pi k / 3).  The largest root is beta(s) = 2 cos(2 acos(s) / 3) at
   s = sqrt((1 + r) / 2), a function analytic on [0, 1] (the square root takes the branch point),
   so a degree-14 polynomial in 2 s - 1 gives it to 3e-13; the smallest root is -beta at
   s = sqrt((1 - r) / 2) and the middle one is minus their sum.  Everything is float64 and
   branch-free, so the compiler vectorises the loop (8.5 ns a matrix with AVX2, 35 ns with a branch); rounding r costs at most sqrt(float64 eps) ~ 1.5e-8
   times p near a double eigenvalue (the closed form's conditioning), below float32's rounding of
   the result. */
#ifndef FASTSEG_MULTISCALE_H
#define FASTSEG_MULTISCALE_H

#include <math.h>
#include <stddef.h>
#include <string.h>

/* ---------------------------------------------------------------------------- the Gaussian's taps

   dst[i] = sum_{k = r .. 1} w[k] (src[r - k][i] + src[r + k][i]), then + w[0] src[r][i]: the sum
   from the tails inwards (small terms first, so float32 keeps them), each element in that order
   whatever the path, so every build gives the same bits.  Blocks of 32 outputs stay in registers
   while all 2 r + 1 inputs stream past (the naive loop loads and stores dst once per tap).  GCC and
   Clang vector extensions; other compilers take the scalar loop. */
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"  /* the vectors never cross a call boundary: no ABI at stake */
typedef float fs_v8 __attribute__((vector_size(32)));

static inline fs_v8 fs_load8(const float *p)
{
    fs_v8 v;
    memcpy(&v, p, sizeof v);
    return v;
}
#define FS_HAVE_V8 1


/* dst[i .. i + 32) and dst[i .. i + 8): one block of outputs, accumulated in registers */
static inline void fs_fir_block32(const float *const *src, float *restrict dst, const float *w, ptrdiff_t r,
                                  ptrdiff_t i)
{
    ptrdiff_t k;
    fs_v8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    for (k = r; k >= 1; k--) {
        const float *p = src[r - k] + i, *q = src[r + k] + i;
        fs_v8 wk = {w[k], w[k], w[k], w[k], w[k], w[k], w[k], w[k]};
        a0 = a0 + wk * (fs_load8(p) + fs_load8(q));
        a1 = a1 + wk * (fs_load8(p + 8) + fs_load8(q + 8));
        a2 = a2 + wk * (fs_load8(p + 16) + fs_load8(q + 16));
        a3 = a3 + wk * (fs_load8(p + 24) + fs_load8(q + 24));
    }
    {
        const float *c = src[r] + i;
        fs_v8 w0 = {w[0], w[0], w[0], w[0], w[0], w[0], w[0], w[0]};
        a0 = a0 + w0 * fs_load8(c);
        a1 = a1 + w0 * fs_load8(c + 8);
        a2 = a2 + w0 * fs_load8(c + 16);
        a3 = a3 + w0 * fs_load8(c + 24);
    }
    memcpy(dst + i, &a0, sizeof a0);
    memcpy(dst + i + 8, &a1, sizeof a1);
    memcpy(dst + i + 16, &a2, sizeof a2);
    memcpy(dst + i + 24, &a3, sizeof a3);
}

static inline void fs_fir_block8(const float *const *src, float *restrict dst, const float *w, ptrdiff_t r,
                                 ptrdiff_t i)
{
    ptrdiff_t k;
    fs_v8 a0 = {0};
    for (k = r; k >= 1; k--) {
        fs_v8 wk = {w[k], w[k], w[k], w[k], w[k], w[k], w[k], w[k]};
        a0 = a0 + wk * (fs_load8(src[r - k] + i) + fs_load8(src[r + k] + i));
    }
    {
        fs_v8 w0 = {w[0], w[0], w[0], w[0], w[0], w[0], w[0], w[0]};
        a0 = a0 + w0 * fs_load8(src[r] + i);
    }
    memcpy(dst + i, &a0, sizeof a0);
}
#endif

/* dst must not overlap the rows of src: the ragged end of a row is made by one more block that
   overlaps the last whole one (its shared outputs are recomputed, to the same bits: every lane does
   the scalar loop's arithmetic in its order), so a masked row's span of any width stays on the
   four-accumulator path instead of the latency-bound single vector and the scalar loop. */
static inline void fs_fir_rows(const float *const *src, float *restrict dst, const float *w, ptrdiff_t r,
                               ptrdiff_t n)
{
    ptrdiff_t i = 0, k;
#ifdef FS_HAVE_V8
    if (n >= 32) {
        for (; i + 32 <= n; i += 32)
            fs_fir_block32(src, dst, w, r, i);
        if (i < n)
            fs_fir_block32(src, dst, w, r, n - 32);
        return;
    }
    if (n >= 8) {
        for (; i + 8 <= n; i += 8)
            fs_fir_block8(src, dst, w, r, i);
        if (i < n)
            fs_fir_block8(src, dst, w, r, n - 8);
        return;
    }
#endif
    for (; i < n; i++) {
        float acc = 0.0f;
        for (k = r; k >= 1; k--)
            acc = acc + w[k] * (src[r - k][i] + src[r + k][i]);
        dst[i] = acc + w[0] * src[r][i];
    }
}

/* beta(s) as a polynomial in t = 2 s - 1 (least-squares fit on 400001 points of [0, 1]). */
static inline double fs_largest_root(double t)
{
    double v = -3.3662363000632692e-09;
    v = v * t + 1.1021240821741543e-08;
    v = v * t + -2.4994627424977142e-08;
    v = v * t + 8.6838894800213294e-08;
    v = v * t + -3.2052622920049953e-07;
    v = v * t + 1.1320070491199873e-06;
    v = v * t + -4.0710792010006769e-06;
    v = v * t + 1.5080676208102509e-05;
    v = v * t + -5.7840034880155285e-05;
    v = v * t + 0.00023285120649121555;
    v = v * t + -0.0010082493629027264;
    v = v * t + 0.004932705603506388;
    v = v * t + -0.031018376873847311;
    v = v * t + 0.4948181326463858;
    v = v * t + 1.5320888862379631;
    return v;
}

/* e[0 .. n), e[n .. 2n), e[2n .. 3n): the eigenvalues, decreasing, of the matrices whose upper
   triangles (00, 01, 02, 11, 12, 22) are the rows h[0 .. n), ..., h[5n .. 6n); h and e must not
   overlap (restrict: the loop is vectorised without run-time alias checks). */
static inline void fs_eig3_rows(const float *restrict h, float *restrict e, ptrdiff_t n)
{
    const float *restrict h00 = h, *restrict h01 = h + n, *restrict h02 = h + 2 * n;
    const float *restrict h11 = h + 3 * n, *restrict h12 = h + 4 * n, *restrict h22 = h + 5 * n;
    float *restrict e0 = e, *restrict e1 = e + n, *restrict e2 = e + 2 * n;
    for (ptrdiff_t i = 0; i < n; i++) {
        double a = h00[i], b = h01[i], c = h02[i], d = h11[i], f = h12[i], g = h22[i];
        double q = (a + d + g) / 3.0;
        double aa = a - q, dd = d - q, gg = g - q;
        double p2 = aa * aa + dd * dd + gg * gg + 2.0 * (b * b + c * c + f * f);
        double p = sqrt(p2 / 6.0);
        /* p = 0 only when A = q I, where B = 0 whatever the scale, so a tiny addend replaces a branch
           (it changes nothing for p > 1e-284, and every p from float32 matrices is larger) */
        double inv = 1.0 / (p + 1e-300);
        aa *= inv; dd *= inv; gg *= inv; b *= inv; c *= inv; f *= inv;
        double r = 0.5 * (aa * (dd * gg - f * f) - b * (b * gg - f * c) + c * (b * f - dd * c));
        /* |r| <= 1 up to rounding; fabs keeps a rounding past +-1 from making a NaN (and keeps the
           loop free of comparisons, which GCC does not if-convert under -ftrapping-math) */
        double b1 = fs_largest_root(2.0 * sqrt(fabs(0.5 + 0.5 * r)) - 1.0);
        double b3 = fs_largest_root(2.0 * sqrt(fabs(0.5 - 0.5 * r)) - 1.0);
        e0[i] = (float)(q + p * b1);
        e1[i] = (float)(q + p * (b3 - b1));
        e2[i] = (float)(q - p * b3);
    }
}

/* ---------------------------------------------------------------------------- 2-D features of a row

   The Sobel magnitude and the Hessian eigenvalues of one row y of a 2-D Gaussian g in one pass over
   x.  The caller resolves the rows: u, c, d = g[y - 1], g[y], g[y + 1] (border repeated, which for
   one step is scipy's 'reflect'); numpy.gradient along y of g at lo(y), y, hi(y) is
   (a1 - a0) sa, (c1 - c0) sc, (b1 - b0) sb, and the Hessian's yy entry is their outer difference
   times sc.  Along x the same stencils are resolved per pixel: the border pixels take the general
   path, the others the branch-free one, which the compiler vectorises; both do the same arithmetic
   in the same order as the row-by-row functions of _multiscale.pxi, so the values do not depend on
   the path. */
typedef struct {
    const float *u, *c, *d;           /* g[y - 1], g[y], g[y + 1] */
    const float *a0, *a1, *b0, *b1;   /* the rows of the y-gradient at lo(y) and hi(y) */
    const float *c0, *c1;             /* the rows of the y-gradient at y */
    float sa, sb, sc;
    ptrdiff_t n;
} fs_rows2d;

/* numpy.gradient's stencil at i of an axis of n >= 2 */
static inline float fs_pick(ptrdiff_t i, ptrdiff_t n, ptrdiff_t *lo, ptrdiff_t *hi)
{
    if (i == 0) { *lo = 0; *hi = 1; return 1.0f; }
    if (i == n - 1) { *lo = n - 2; *hi = n - 1; return 1.0f; }
    *lo = i - 1; *hi = i + 1; return 0.5f;
}

static inline ptrdiff_t fs_clampi(ptrdiff_t i, ptrdiff_t n) { return i < 0 ? 0 : (i >= n ? n - 1 : i); }

static inline float fs_gx(const float *f, ptrdiff_t x, ptrdiff_t n)
{
    ptrdiff_t lo, hi;
    float s = fs_pick(x, n, &lo, &hi);
    return (f[hi] - f[lo]) * s;
}

static inline float fs_gy(const fs_rows2d *R, ptrdiff_t x) { return (R->c1[x] - R->c0[x]) * R->sc; }
static inline float fs_dud(const fs_rows2d *R, ptrdiff_t x) { return (R->d[x] - R->u[x]) * 1.0f; }
static inline float fs_smy(const fs_rows2d *R, ptrdiff_t x)
{
    return (R->u[x] + 2.0f * R->c[x] + R->d[x]) * 0.25f;
}

static inline void fs_px2d_finish(float ey, float ex, float hyy, float hyx, float hxx,
                                  float *edge, float *e0, float *e1)
{
    float acc = ey * ey, m, dd, hs;
    *edge = sqrtf(acc + ex * ex) / sqrtf(2.0f);
    m = (hyy + hxx) / 2.0f;
    dd = (hyy - hxx) / 2.0f;
    hs = sqrtf(hyx * hyx + dd * dd);
    *e0 = m + hs;
    *e1 = m - hs;
}

/* any x (n >= 2) */
static inline void fs_px2d_general(const fs_rows2d *R, ptrdiff_t x, float *edge, float *e0, float *e1)
{
    ptrdiff_t n = R->n, xm = fs_clampi(x - 1, n), xp = fs_clampi(x + 1, n), lo, hi;
    float sx = fs_pick(x, n, &lo, &hi);
    float ey = (fs_dud(R, xm) + 2.0f * fs_dud(R, x) + fs_dud(R, xp)) * 0.25f;
    float ex = fs_smy(R, xp) - fs_smy(R, xm);
    float hyy = ((R->b1[x] - R->b0[x]) * R->sb - (R->a1[x] - R->a0[x]) * R->sa) * R->sc;
    float hyx = (fs_gy(R, hi) - fs_gy(R, lo)) * sx;
    float hxx = (fs_gx(R->c, hi, n) - fs_gx(R->c, lo, n)) * sx;
    fs_px2d_finish(ey, ex, hyy, hyx, hxx, edge, e0, e1);
}

/* the pixels [xa, xb) of the row */
static inline void fs_features2d_row(const fs_rows2d *R, ptrdiff_t xa, ptrdiff_t xb, float *restrict edge,
                                     float *restrict e0, float *restrict e1)
{
    ptrdiff_t n = R->n, x = xa, inside_end = xb < n - 2 ? xb : n - 2;
    const float *restrict u = R->u, *restrict c = R->c, *restrict d = R->d;
    const float *restrict a0 = R->a0, *restrict a1 = R->a1, *restrict b0 = R->b0, *restrict b1 = R->b1;
    const float *restrict c0 = R->c0, *restrict c1 = R->c1;
    const float sa = R->sa, sb = R->sb, sc = R->sc;
    for (; x < xb && x < 2; x++)
        fs_px2d_general(R, x, edge + x, e0 + x, e1 + x);
    for (; x < inside_end; x++) {
        /* the general path's arithmetic with the inside stencils */
        float ey = ((d[x - 1] - u[x - 1]) * 1.0f + 2.0f * ((d[x] - u[x]) * 1.0f) + (d[x + 1] - u[x + 1]) * 1.0f) * 0.25f;
        float ex = (u[x + 1] + 2.0f * c[x + 1] + d[x + 1]) * 0.25f - (u[x - 1] + 2.0f * c[x - 1] + d[x - 1]) * 0.25f;
        float hyy = ((b1[x] - b0[x]) * sb - (a1[x] - a0[x]) * sa) * sc;
        float hyx = ((c1[x + 1] - c0[x + 1]) * sc - (c1[x - 1] - c0[x - 1]) * sc) * 0.5f;
        float hxx = ((c[x + 2] - c[x]) * 0.5f - (c[x] - c[x - 2]) * 0.5f) * 0.5f;
        float acc = ey * ey, m, dd, hs;
        edge[x] = sqrtf(acc + ex * ex) / sqrtf(2.0f);
        m = (hyy + hxx) / 2.0f;
        dd = (hyy - hxx) / 2.0f;
        hs = sqrtf(hyx * hyx + dd * dd);
        e0[x] = m + hs;
        e1[x] = m - hs;
    }
    for (; x < xb; x++)
        fs_px2d_general(R, x, edge + x, e0 + x, e1 + x);
}

/* ---------------------------------------------------------------------------- the output rows

   out[x * F + f] = feats[f * X + x]: a row of pixels' features, made feature by feature, written
   pixel by pixel (each pixel's F values contiguous).  With AVX, blocks of 8 x 8 are transposed in
   registers; the edges (and other builds) copy one value at a time.  Data movement only: the same
   bits on every path. */
#if defined(__AVX__)
#include <immintrin.h>

static inline void fs_transpose8(const float *in, ptrdiff_t in_stride, float *out, ptrdiff_t out_stride)
{
    __m256 r0 = _mm256_loadu_ps(in), r1 = _mm256_loadu_ps(in + in_stride);
    __m256 r2 = _mm256_loadu_ps(in + 2 * in_stride), r3 = _mm256_loadu_ps(in + 3 * in_stride);
    __m256 r4 = _mm256_loadu_ps(in + 4 * in_stride), r5 = _mm256_loadu_ps(in + 5 * in_stride);
    __m256 r6 = _mm256_loadu_ps(in + 6 * in_stride), r7 = _mm256_loadu_ps(in + 7 * in_stride);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    _mm256_storeu_ps(out, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(out + out_stride, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(out + 2 * out_stride, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(out + 3 * out_stride, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(out + 4 * out_stride, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(out + 5 * out_stride, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(out + 6 * out_stride, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(out + 7 * out_stride, _mm256_permute2f128_ps(u3, u7, 0x31));
}
#endif

static inline void fs_write_rows(const float *restrict feats, ptrdiff_t X, ptrdiff_t F, float *restrict out)
{
    ptrdiff_t x = 0, f;
#if defined(__AVX__)
    for (; x + 8 <= X; x += 8) {
        for (f = 0; f + 8 <= F; f += 8)
            fs_transpose8(feats + f * X + x, X, out + x * F + f, F);
        for (; f < F; f++)
            for (ptrdiff_t j = 0; j < 8; j++)
                out[(x + j) * F + f] = feats[f * X + x + j];
    }
#endif
    for (; x < X; x++)
        for (f = 0; f < F; f++)
            out[x * F + f] = feats[f * X + x];
}

/* The same for the pixels of the row whose mask byte is set, into consecutive output rows (with
   AVX: each block of 8 pixels holding one is transposed into tmp, 8 x F floats, and its selected
   rows copied). */
static inline void fs_write_rows_masked(const float *restrict feats, ptrdiff_t X, ptrdiff_t F,
                                        const unsigned char *m, float *restrict out, float *restrict tmp)
{
    ptrdiff_t x = 0, row = 0, f;
#if defined(__AVX__)
    for (; x + 8 <= X; x += 8) {
        ptrdiff_t j;
        int any = 0;
        for (j = 0; j < 8; j++)
            any |= m[x + j];
        if (!any)
            continue;
        for (f = 0; f + 8 <= F; f += 8)
            fs_transpose8(feats + f * X + x, X, tmp + f, F);
        for (; f < F; f++)
            for (j = 0; j < 8; j++)
                tmp[j * F + f] = feats[f * X + x + j];
        for (j = 0; j < 8; j++)
            if (m[x + j]) {
                memcpy(out + row * F, tmp + j * F, (size_t)F * sizeof(float));
                row++;
            }
    }
#else
    (void)tmp;
#endif
    for (; x < X; x++)
        if (m[x]) {
            for (f = 0; f < F; f++)
                out[row * F + f] = feats[f * X + x];
            row++;
        }
}

#endif /* FASTSEG_MULTISCALE_H */
