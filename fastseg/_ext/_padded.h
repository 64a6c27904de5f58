/* Channel planes from interleaved pixels (_padded.pxd). */
#ifndef FASTSEG_PADDED_H
#define FASTSEG_PADDED_H

#include <Python.h>  /* Py_ssize_t */

/* Channel planes from interleaved pixels: channel c of pixel x goes to
   dst[c * plane + x].  Four channels go four pixels at a time through an SSE
   4x4 transpose (SSE is part of every x86-64 target); other channel counts,
   and other targets, take the plain loop. */
static inline void fs_deinterleave(const float *src, Py_ssize_t n, Py_ssize_t C,
                                   float *dst, Py_ssize_t plane)
{
    Py_ssize_t x, c;
    for (x = 0; x < n; x++)
        for (c = 0; c < C; c++)
            dst[c * plane + x] = src[x * C + c];
}

#if defined(__SSE__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 1)
#include <xmmintrin.h>
static inline void fs_deinterleave4(const float *src, Py_ssize_t n, float *dst, Py_ssize_t plane)
{
    Py_ssize_t x = 0;
    for (; x + 4 <= n; x += 4) {
        __m128 r0 = _mm_loadu_ps(src + 4 * x);
        __m128 r1 = _mm_loadu_ps(src + 4 * x + 4);
        __m128 r2 = _mm_loadu_ps(src + 4 * x + 8);
        __m128 r3 = _mm_loadu_ps(src + 4 * x + 12);
        _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
        _mm_storeu_ps(dst + x, r0);
        _mm_storeu_ps(dst + plane + x, r1);
        _mm_storeu_ps(dst + 2 * plane + x, r2);
        _mm_storeu_ps(dst + 3 * plane + x, r3);
    }
    fs_deinterleave(src + 4 * x, n - x, 4, dst + x, plane);
}
#else
static inline void fs_deinterleave4(const float *src, Py_ssize_t n, float *dst, Py_ssize_t plane)
{
    fs_deinterleave(src, n, 4, dst, plane);
}
#endif

#endif /* FASTSEG_PADDED_H */
