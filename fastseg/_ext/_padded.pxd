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


cdef extern from "_padded.h":
    void fs_deinterleave(const float* src, Py_ssize_t n, Py_ssize_t C, float* dst, Py_ssize_t plane) noexcept nogil
    void fs_deinterleave4(const float* src, Py_ssize_t n, float* dst, Py_ssize_t plane) noexcept nogil


cdef inline void pad_rows_planar(
    const float* img,              # IN  (H, W, C) C-contiguous image
    Py_ssize_t H, Py_ssize_t W, Py_ssize_t C,
    const Py_ssize_t* rowmap,      # IN  (H + 2r,) source row of each padded row, -1 = zero
    const Py_ssize_t* colmap,      # IN  (W + 2r,) source column of each padded column, -1 = zero
    Py_ssize_t r,
    Py_ssize_t i0, Py_ssize_t i1,  #     padded rows i0 .. i1 - 1 to write
    float* planes,                 # OUT (C, >= i1 - i0, row_len), row_len >= W + 2r
    Py_ssize_t row_len,
    Py_ssize_t plane,              #     floats from one channel plane to the next
) noexcept nogil:
    """Copy padded rows ``i0 .. i1 - 1`` of ``img`` into channel planes, as :func:`pad_image` pads.

    Channel ``c`` of padded pixel ``(i, j)`` goes to ``planes[c * plane + (i - i0) * row_len + j]``,
    so one channel's padded row is contiguous.  Columns ``W + 2r .. row_len - 1``
    (slack that lets vector loops read past the end of a row) are set to zero.
    Writing a band of rows at a time keeps the planes small enough to stay in cache.
    """
    cdef Py_ssize_t i, j, c, src_row, src_col
    cdef Py_ssize_t Wp = W + 2 * r
    cdef float* dst
    cdef const float* src
    for i in range(i0, i1):
        src_row = rowmap[i]
        dst = planes + (i - i0) * row_len
        if src_row < 0:
            for c in range(C):
                memset(dst + c * plane, 0, row_len * sizeof(float))
            continue
        src = img + src_row * W * C
        # Literal channel counts let the compiler unroll the transposition.
        if C == 4:
            fs_deinterleave4(src, W, dst + r, plane)
        elif C == 1:
            memcpy(dst + r, src, W * sizeof(float))
        elif C == 3:
            fs_deinterleave(src, W, 3, dst + r, plane)
        else:
            fs_deinterleave(src, W, C, dst + r, plane)
        for c in range(C):
            for j in range(r):
                src_col = colmap[j]
                dst[c * plane + j] = 0 if src_col < 0 else src[src_col * C + c]
            for j in range(W + r, Wp):
                src_col = colmap[j]
                dst[c * plane + j] = 0 if src_col < 0 else src[src_col * C + c]
            for j in range(Wp, row_len):
                dst[c * plane + j] = 0


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
