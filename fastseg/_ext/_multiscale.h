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
#endif

static inline void fs_fir_rows(const float *const *src, float *restrict dst, const float *w, ptrdiff_t r,
                               ptrdiff_t n)
{
    ptrdiff_t i = 0, k;
#ifdef FS_HAVE_V8
    for (; i + 32 <= n; i += 32) {
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
    for (; i + 8 <= n; i += 8) {
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

#endif /* FASTSEG_MULTISCALE_H */
