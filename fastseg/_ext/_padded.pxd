# The padded image, shared by the window kernels: padding one image into a
# caller-owned scratch buffer (interleaved or as channel planes) and copying a
# window out of it.
#
# The border of the padded image is described by two index maps that
# ``fastseg.features.pad_index`` builds (the single place that knows what the
# modes mean): padded row ``i`` shows source row ``rowmap[i]`` and padded column
# ``j`` shows source column ``colmap[j]``, ``-1`` meaning zero.  The kernels only
# follow the maps, so every kernel pads the same way.
#
# ``cdef inline`` functions in a .pxd are compiled into each extension that
# cimports them; there is no separate module to build.

from libc.string cimport memcpy, memset


cdef inline int check_pad_maps(
    const Py_ssize_t[::1] rowmap,  # IN  (H + 2r,)
    const Py_ssize_t[::1] colmap,  # IN  (W + 2r,)
    Py_ssize_t H, Py_ssize_t W, Py_ssize_t r,
) except -1:
    """Raise ValueError unless the maps have the padded lengths and point inside the image."""
    cdef Py_ssize_t i
    if rowmap.shape[0] != H + 2 * r or colmap.shape[0] != W + 2 * r:
        raise ValueError("rowmap/colmap must have lengths H + 2*(k//2) and W + 2*(k//2)")
    for i in range(rowmap.shape[0]):
        if rowmap[i] < -1 or rowmap[i] >= H:
            raise ValueError("rowmap holds an index outside the image")
    for i in range(colmap.shape[0]):
        if colmap[i] < -1 or colmap[i] >= W:
            raise ValueError("colmap holds an index outside the image")
    return 0


cdef inline void pad_image(
    const float* img,              # IN  (H, W, C) C-contiguous image
    Py_ssize_t H, Py_ssize_t W, Py_ssize_t C,
    const Py_ssize_t* rowmap,      # IN  (H + 2r,) source row of each padded row, -1 = zero
    const Py_ssize_t* colmap,      # IN  (W + 2r,) source column of each padded column, -1 = zero
    Py_ssize_t r,
    float* padded,                 # OUT (H + 2r, W + 2r, C)
) noexcept nogil:
    """Copy ``img`` into ``padded`` through the index maps (constant padding is zero).

    The interior of each padded row is one contiguous copy of a source row; only
    the ``r`` border pixels on either side go through ``colmap``.
    """
    cdef Py_ssize_t i, j, src_row, src_col
    cdef Py_ssize_t Wp = W + 2 * r
    cdef Py_ssize_t row_len = Wp * C
    cdef float* dst
    cdef const float* src
    for i in range(H + 2 * r):
        dst = padded + i * row_len
        src_row = rowmap[i]
        if src_row < 0:
            memset(dst, 0, row_len * sizeof(float))
            continue
        src = img + src_row * W * C
        memcpy(dst + r * C, src, W * C * sizeof(float))
        for j in range(r):
            src_col = colmap[j]
            if src_col < 0:
                memset(dst + j * C, 0, C * sizeof(float))
            else:
                memcpy(dst + j * C, src + src_col * C, C * sizeof(float))
        for j in range(W + r, Wp):
            src_col = colmap[j]
            if src_col < 0:
                memset(dst + j * C, 0, C * sizeof(float))
            else:
                memcpy(dst + j * C, src + src_col * C, C * sizeof(float))


cdef extern from *:
    """
    /* Four interleaved channels to four planes, four pixels at a time with an SSE
       4x4 transpose (SSE is part of every x86-64 target); plain C elsewhere.
       Returns 1 when every value copied is finite (a sum of value * 0 stays 0),
       so that callers get the finiteness check for free with the copy. */
    #if defined(__SSE__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 1)
    #include <xmmintrin.h>
    static inline int fs_deinterleave4(const float *src, Py_ssize_t n, float *dst, Py_ssize_t plane)
    {
        Py_ssize_t x = 0;
        const __m128 zero = _mm_setzero_ps();
        __m128 probe = _mm_setzero_ps();   /* stays 0 unless some value * 0 is NaN (NaN or inf) */
        float p[4];
        for (; x + 4 <= n; x += 4) {
            __m128 r0 = _mm_loadu_ps(src + 4 * x);
            __m128 r1 = _mm_loadu_ps(src + 4 * x + 4);
            __m128 r2 = _mm_loadu_ps(src + 4 * x + 8);
            __m128 r3 = _mm_loadu_ps(src + 4 * x + 12);
            probe = _mm_add_ps(probe, _mm_mul_ps(_mm_add_ps(_mm_add_ps(r0, r1), _mm_add_ps(r2, r3)), zero));
            _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
            _mm_storeu_ps(dst + x, r0);
            _mm_storeu_ps(dst + plane + x, r1);
            _mm_storeu_ps(dst + 2 * plane + x, r2);
            _mm_storeu_ps(dst + 3 * plane + x, r3);
        }
        _mm_storeu_ps(p, probe);
        float q = p[0] + p[1] + p[2] + p[3];
        for (; x < n; x++) {
            dst[x] = src[4 * x];
            dst[plane + x] = src[4 * x + 1];
            dst[2 * plane + x] = src[4 * x + 2];
            dst[3 * plane + x] = src[4 * x + 3];
            q += (src[4 * x] + src[4 * x + 1] + src[4 * x + 2] + src[4 * x + 3]) * 0.0f;
        }
        return q == 0.0f;
    }
    #else
    static inline int fs_deinterleave4(const float *src, Py_ssize_t n, float *dst, Py_ssize_t plane)
    {
        Py_ssize_t x;
        float q = 0.0f;
        for (x = 0; x < n; x++) {
            dst[x] = src[4 * x];
            dst[plane + x] = src[4 * x + 1];
            dst[2 * plane + x] = src[4 * x + 2];
            dst[3 * plane + x] = src[4 * x + 3];
            q += (src[4 * x] + src[4 * x + 1] + src[4 * x + 2] + src[4 * x + 3]) * 0.0f;
        }
        return q == 0.0f;
    }
    #endif
    """
    bint fs_deinterleave4(const float* src, Py_ssize_t n, float* dst, Py_ssize_t plane) noexcept nogil


cdef inline bint _deinterleave_row(
    const float* src,              # IN  (n, C) interleaved pixels
    Py_ssize_t n, const Py_ssize_t C,
    float* dst,                    # OUT C runs of n floats, ``plane`` floats apart
    Py_ssize_t plane,
) noexcept nogil:
    """Copy, and return whether every value is finite (as ``fs_deinterleave4``)."""
    cdef Py_ssize_t x, c
    cdef float v, probe = 0
    for x in range(n):
        for c in range(C):
            v = src[x * C + c]
            dst[c * plane + x] = v
            probe += v * 0
    return probe == 0


cdef inline bint pad_image_planar(
    const float* img,              # IN  (H, W, C) C-contiguous image
    Py_ssize_t H, Py_ssize_t W, Py_ssize_t C,
    const Py_ssize_t* rowmap,      # IN  (H + 2r,) source row of each padded row, -1 = zero
    const Py_ssize_t* colmap,      # IN  (W + 2r,) source column of each padded column, -1 = zero
    Py_ssize_t r,
    float* planes,                 # OUT (C, H + 2r, row_len), row_len >= W + 2r
    Py_ssize_t row_len,
) noexcept nogil:
    """Copy ``img`` into channel planes through the index maps, as :func:`pad_image` does.

    Channel ``c`` of padded pixel ``(i, j)`` goes to ``planes[c, i, j]``, so one
    channel's padded row is contiguous.  Columns ``W + 2r .. row_len - 1`` (slack
    that lets vector loops read past the end of a row) are set to zero.

    Returns whether every value of ``img`` is finite: each source row is copied
    at least once (the maps cover all rows), and the check rides on that copy.
    """
    cdef Py_ssize_t i, j, c, src_row, src_col
    cdef bint finite = True
    cdef Py_ssize_t Hp = H + 2 * r, Wp = W + 2 * r
    cdef Py_ssize_t plane = Hp * row_len
    cdef float* dst
    cdef const float* src
    for i in range(Hp):
        src_row = rowmap[i]
        dst = planes + i * row_len
        if src_row < 0:
            for c in range(C):
                memset(dst + c * plane, 0, row_len * sizeof(float))
            continue
        src = img + src_row * W * C
        # Literal channel counts let the compiler unroll the transposition.
        if C == 4:
            finite &= fs_deinterleave4(src, W, dst + r, plane)
        elif C == 3:
            finite &= _deinterleave_row(src, W, 3, dst + r, plane)
        elif C == 1:
            finite &= _deinterleave_row(src, W, 1, dst + r, plane)
        else:
            finite &= _deinterleave_row(src, W, C, dst + r, plane)
        for c in range(C):
            for j in range(r):
                src_col = colmap[j]
                dst[c * plane + j] = 0 if src_col < 0 else src[src_col * C + c]
            for j in range(W + r, Wp):
                src_col = colmap[j]
                dst[c * plane + j] = 0 if src_col < 0 else src[src_col * C + c]
            if row_len > Wp:
                memset(dst + c * plane + Wp, 0, (row_len - Wp) * sizeof(float))
    return finite


cdef inline void copy_window(
    const float* src,              # IN  top-left of the window in the padded (H + 2r, W + 2r, C) image
    Py_ssize_t row_len,            #     floats per padded row
    float* dst,                    # OUT k * k * C floats, ordered (dy, dx, c)
    const Py_ssize_t k, const Py_ssize_t C,
) noexcept nogil:
    """Copy one window: ``k`` contiguous runs of ``k * C`` floats (call with literal k, C to unroll)."""
    cdef Py_ssize_t dy
    for dy in range(k):
        memcpy(dst + dy * k * C, src + dy * row_len, k * C * sizeof(float))
