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

#endif /* FASTSEG_MULTISCALE_H */
