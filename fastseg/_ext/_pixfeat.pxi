# The pixel-feature kernels: included by _pixfeat.pyx (baseline build) and _pixfeat_avx2.pyx
# (built with AVX2); see _pixfeat.pyx's docstring.
#
# In stages: each ``def`` checks its arguments and fills a plan (``_Plan``) once; ``_pixel_rows`` then
# walks the images (``_Image``: one image's geometry and integral-image rings) and their rows, and for
# the span of requested pixels of a row (``_Span``) runs one small function per feature family and the
# window copies.  Those steps are written once, in the Tempita template _pixfeat_kernels.pxi.tp, which
# setup.py expands into constant-size instances for MRI slices (k = 3, C = 4) and a general one.

from libc.math cimport fabs, sqrtf
from libc.stdint cimport uint64_t
from libc.string cimport memcpy, memmove, memset
from libc.stdlib cimport malloc, free

from ._mlp cimport forward_tile
from ._normalize cimport normalize_one
from ._padded cimport check_pad_maps


cdef struct _Plan:
    # what to describe: (N, H, W, C) images, (N, H, W) brain and requested-pixel masks
    const float* images
    const unsigned char* brain
    const unsigned char* rows
    const Py_ssize_t* row_start       # (N + 1,) first global row of each image
    const Py_ssize_t* mirror          # (N, W) mirror column of each column
    const Py_ssize_t* bbox            # (N, 4) brain rows [r0, r1], columns [c0, c1]
    Py_ssize_t H, W, C
    # the window family: k x k x C columns (k = 0: none), borders through the index maps
    Py_ssize_t k
    const Py_ssize_t* rowmap          # (H + 2 (k // 2),)
    const Py_ssize_t* colmap          # (W + 2 (k // 2),)
    # the context families, in the row layout's order
    const Py_ssize_t* mean_sizes
    Py_ssize_t n_means
    const Py_ssize_t* std_sizes
    Py_ssize_t n_stds
    bint asymmetry
    Py_ssize_t asymmetry_box
    Py_ssize_t gradient_size          # 0: no gradient family
    bint position
    const Py_ssize_t* brain_boxes
    Py_ssize_t n_boxes
    Py_ssize_t Fc                     # context columns of a row
    double* inv_area                  # 1 / s^2 of the mean, std and brain box sizes (owned by the def)
    double inv_asym, inv_grad
    Py_ssize_t rmax                   # the largest half box that reads I1, I2 or Id
    bint need1, need2                 # whether I1 / I2 are read
    Py_ssize_t offset                 # the output column of a row's first window column
    # scratch (the caller's): integral images, running sums, row buffers, the span's context rows
    double* I1
    double* I2
    double* Id
    double* Ib
    double* acc                       # 3 C
    double* T1                        # W C each
    double* T2
    double* T3
    double* T4
    float* tmp                        # W C
    float* ctx                        # W Fc


cdef struct _Image:
    # one image being described
    Py_ssize_t n
    const float* img                  # (H, W, C) its pixels
    const unsigned char* inside       # (H, W) its brain
    const unsigned char* want         # (H, W) its requested pixels
    const Py_ssize_t* mirror          # (W,)
    Py_ssize_t r0, c0, h, w           # the brain's bounding box
    Py_ssize_t stride, bstride        # values per integral row: of I1, I2, Id; of Ib
    Py_ssize_t R                      # rows per ring of I1, I2, Id
    Py_ssize_t done                   # integral rows made so far
    double inv_r, inv_c               # 1 / (h - 1), 1 / (w - 1) (or 1)


cdef struct _Span:
    # the requested pixels of one image row: columns xa .. xb (m of them)
    Py_ssize_t y, xa, xb, m
    float* cx                         # where the span's context rows go: the output rows or ctx
    Py_ssize_t cs                     # ... and their stride


cdef struct _Scorer:
    # what pixel_network_scores hands _pixel_rows to score rows as they are made (tile by tile)
    const float* weights
    const float* biases
    const Py_ssize_t* sizes
    Py_ssize_t n_layers
    int activation
    int output
    float* act0
    float* act1
    Py_ssize_t tile_rows
    float* scores                # (N, H, W) the output
    Py_ssize_t P                 # H W
    const unsigned char* want    # the current image's requested pixels
    float* dst                   # ... and its scores
    Py_ssize_t p                 # the next pixel to write
    Py_ssize_t row_base          # the global row held by the row buffer's first row
    Py_ssize_t head              # the buffer's first row not scored yet


cdef inline Py_ssize_t _clip(Py_ssize_t v, Py_ssize_t hi) noexcept nogil:
    return 0 if v < 0 else (hi if v > hi else v)


cdef inline double* _ring(const double* I, Py_ssize_t i, const _Image* im) noexcept nogil:
    """Row ``i`` of an integral image kept in a ring of ``im.R`` rows of ``im.stride`` values."""
    return <double*>I + (i % im.R) * im.stride


include "_pixfeat_kernels.pxi"


def scratch_size(Py_ssize_t H, Py_ssize_t W, Py_ssize_t C, Py_ssize_t n_columns):
    """Number of float64 values of scratch pixel_context needs for (H, W, C) images and
    ``n_columns`` context columns: room for four integral images (three of them used as rings
    of rows, whose pages beyond the rings are never touched), then row buffers."""
    return 4 * (H + 1) * (W + 1) * C + 3 * C + 5 * W * C + W * n_columns


def n_context_columns(Py_ssize_t C, Py_ssize_t k, Py_ssize_t n_means, Py_ssize_t n_stds,
                      bint asymmetry, bint gradient, bint position, Py_ssize_t n_boxes):
    """Number of columns the kernel writes for these families."""
    return (C * (k * k + n_means + n_stds + 2 * asymmetry + gradient)
            + (2 + n_boxes if position else 0))


cdef int _check_context(
    const float[:, :, :, ::1] images, const unsigned char[:, :, ::1] brain, const unsigned char[:, :, ::1] rows,
    const Py_ssize_t[::1] row_start, const Py_ssize_t[:, ::1] mirror, const Py_ssize_t[:, ::1] bbox,
    const Py_ssize_t[::1] mean_sizes, const Py_ssize_t[::1] std_sizes, const Py_ssize_t[::1] brain_boxes,
    Py_ssize_t k, const Py_ssize_t[::1] rowmap, const Py_ssize_t[::1] colmap,
    bint asymmetry, Py_ssize_t asymmetry_box, Py_ssize_t gradient_size, Py_ssize_t n0, Py_ssize_t n1,
) except -1:
    """Raise ValueError unless the arguments every context kernel shares are consistent (checked
    before the GIL is released)."""
    cdef Py_ssize_t N = images.shape[0], H = images.shape[1], W = images.shape[2]
    cdef Py_ssize_t SM = mean_sizes.shape[0], SS = std_sizes.shape[0], SB = brain_boxes.shape[0]
    cdef Py_ssize_t n, x, j
    if brain.shape[0] != N or brain.shape[1] != H or brain.shape[2] != W:
        raise ValueError("brain must have the images' (N, H, W)")
    if rows.shape[0] != N or rows.shape[1] != H or rows.shape[2] != W:
        raise ValueError("rows must have the images' (N, H, W)")
    if row_start.shape[0] != N + 1 or mirror.shape[0] != N or mirror.shape[1] != W:
        raise ValueError("row_start must have N + 1 entries and mirror shape (N, W)")
    if bbox.shape[0] != N or bbox.shape[1] != 4:
        raise ValueError("bbox must have shape (N, 4)")
    if not (0 <= n0 <= n1 <= N):
        raise ValueError("need 0 <= n0 <= n1 <= N")
    for j in range(SM):
        if mean_sizes[j] < 1 or mean_sizes[j] % 2 == 0:
            raise ValueError("box sizes must be odd and >= 1")
    for j in range(SS):
        if std_sizes[j] < 1 or std_sizes[j] % 2 == 0:
            raise ValueError("box sizes must be odd and >= 1")
    for j in range(SB):
        if brain_boxes[j] < 1 or brain_boxes[j] % 2 == 0:
            raise ValueError("box sizes must be odd and >= 1")
    if k < 0 or (k and k % 2 == 0):
        raise ValueError("k must be 0 or odd")
    check_pad_maps(rowmap, colmap, H, W, k // 2)
    if gradient_size and (gradient_size < 3 or gradient_size % 2 == 0):
        raise ValueError("gradient_size must be 0 or odd and >= 3")
    if asymmetry and (asymmetry_box < 1 or asymmetry_box % 2 == 0):
        raise ValueError("asymmetry_box must be odd and >= 1")
    for n in range(n0, n1):
        if row_start[n + 1] < row_start[n]:
            raise ValueError("row_start must be non-decreasing")
        if not (0 <= bbox[n, 0] <= bbox[n, 1] < H and 0 <= bbox[n, 2] <= bbox[n, 3] < W):
            raise ValueError("bbox must lie in the image")
        for x in range(W):
            if mirror[n, x] < 0 or mirror[n, x] >= W:
                raise ValueError("mirror columns must lie in the image")
    return 0


cdef double* _inverse_areas(const Py_ssize_t[::1] mean_sizes, const Py_ssize_t[::1] std_sizes,
                            const Py_ssize_t[::1] brain_boxes) except NULL:
    """1 / s^2 of every box size (means, stds, brain boxes), in that order; the caller frees it."""
    cdef Py_ssize_t SM = mean_sizes.shape[0], SS = std_sizes.shape[0], SB = brain_boxes.shape[0], j
    cdef double* inv_area = <double*>malloc((SM + SS + SB + 1) * sizeof(double))
    if inv_area == NULL:
        raise MemoryError()
    for j in range(SM):
        inv_area[j] = 1.0 / <double>(mean_sizes[j] * mean_sizes[j])
    for j in range(SS):
        inv_area[SM + j] = 1.0 / <double>(std_sizes[j] * std_sizes[j])
    for j in range(SB):
        inv_area[SM + SS + j] = 1.0 / <double>(brain_boxes[j] * brain_boxes[j])
    return inv_area


cdef inline const Py_ssize_t* _first(const Py_ssize_t[::1] a) noexcept:
    """The first element's address, or NULL for an empty array (never read then)."""
    return &a[0] if a.shape[0] > 0 else NULL


cdef int _plan_init(
    _Plan* p,
    const float[:, :, :, ::1] images, const unsigned char[:, :, ::1] brain, const unsigned char[:, :, ::1] rows,
    const Py_ssize_t[::1] row_start, const Py_ssize_t[:, ::1] mirror, const Py_ssize_t[:, ::1] bbox,
    const Py_ssize_t[::1] mean_sizes, const Py_ssize_t[::1] std_sizes, const Py_ssize_t[::1] brain_boxes,
    Py_ssize_t k, const Py_ssize_t[::1] rowmap, const Py_ssize_t[::1] colmap,
    bint asymmetry, Py_ssize_t asymmetry_box, Py_ssize_t gradient_size, bint position,
    Py_ssize_t offset, double[::1] scratch,
) except -1:
    """Fill the plan from a def's arguments, checked by ``_check_context`` (N, H, W, C > 0); the caller
    frees ``p.inv_area``."""
    cdef Py_ssize_t H = images.shape[1], W = images.shape[2], C = images.shape[3], j
    cdef Py_ssize_t plane = (H + 1) * (W + 1) * C
    p.images = &images[0, 0, 0, 0] if C > 0 else NULL
    p.brain, p.rows = &brain[0, 0, 0], &rows[0, 0, 0]
    p.row_start, p.mirror, p.bbox = &row_start[0], &mirror[0, 0], &bbox[0, 0]
    p.H, p.W, p.C = H, W, C
    p.k, p.rowmap, p.colmap = k, &rowmap[0], &colmap[0]
    p.mean_sizes, p.n_means = _first(mean_sizes), mean_sizes.shape[0]
    p.std_sizes, p.n_stds = _first(std_sizes), std_sizes.shape[0]
    p.asymmetry, p.asymmetry_box, p.gradient_size, p.position = asymmetry, asymmetry_box, gradient_size, position
    p.brain_boxes, p.n_boxes = _first(brain_boxes), brain_boxes.shape[0]
    p.Fc = n_context_columns(C, k, p.n_means, p.n_stds, asymmetry, gradient_size > 0, position,
                             p.n_boxes) - k * k * C
    p.inv_asym = 1.0 / <double>(asymmetry_box * asymmetry_box) if asymmetry else 0.0
    p.inv_grad = 1.0 / <double>(gradient_size * (gradient_size // 2)) if gradient_size else 0.0
    p.rmax = gradient_size // 2
    for j in range(p.n_means):
        p.rmax = max(p.rmax, mean_sizes[j] // 2)
    for j in range(p.n_stds):
        p.rmax = max(p.rmax, std_sizes[j] // 2)
    if asymmetry:
        p.rmax = max(p.rmax, asymmetry_box // 2)
    p.need1 = p.n_means > 0 or p.n_stds > 0 or gradient_size > 0
    p.need2 = p.n_stds > 0
    p.offset = offset
    p.I1, p.I2, p.Id, p.Ib = &scratch[0], &scratch[plane], &scratch[2 * plane], &scratch[3 * plane]
    p.acc = &scratch[4 * plane]
    p.T1 = p.acc + 3 * C
    p.T2 = p.T1 + W * C
    p.T3 = p.T2 + W * C
    p.T4 = p.T3 + W * C
    p.tmp = <float*>(p.T4 + W * C)
    p.ctx = <float*>(p.T4 + 2 * W * C)
    p.inv_area = NULL
    p.inv_area = _inverse_areas(mean_sizes, std_sizes, brain_boxes)
    return 0


cdef void _image_begin(const _Plan* p, Py_ssize_t n, const float* src, _Image* im) noexcept nogil:
    """Set up image ``n`` (its pixels read from ``src`` if not NULL): its geometry, the first row of
    each integral-image ring, and the whole integral image of its brain if the position family needs it.

    The integral images of x, x * x and the asymmetry are made a row at a time, just before the first
    image row that reads it, into rings of R rows (row i in slot i % R): the rows the boxes of one
    image row read, and no more, stay in cache."""
    cdef Py_ssize_t x, y, count, HW = p.H * p.W
    im.n = n
    im.img = p.images + n * HW * p.C if src == NULL else src
    im.inside = p.brain + n * HW
    im.want = p.rows + n * HW
    im.mirror = p.mirror + n * p.W
    im.r0, im.c0 = p.bbox[4 * n], p.bbox[4 * n + 2]
    im.h, im.w = p.bbox[4 * n + 1] - im.r0 + 1, p.bbox[4 * n + 3] - im.c0 + 1
    im.stride, im.bstride = (im.w + 1) * p.C, im.w + 1
    im.R = min(2 * p.rmax + 2, im.h + 1)
    im.done = 0
    if p.need1 or p.asymmetry:
        for x in range(im.stride):
            p.I1[x] = 0.0
            if p.need2:
                p.I2[x] = 0.0
            if p.asymmetry:
                p.Id[x] = 0.0
    if p.position and p.n_boxes > 0:
        for x in range(im.w + 1):
            p.Ib[x] = 0.0
        for y in range(im.h):
            count = 0  # an integer: exact like the double it replaces, without its add latency
            p.Ib[(y + 1) * im.bstride] = 0.0
            for x in range(im.w):
                count += im.inside[(im.r0 + y) * p.W + im.c0 + x]
                p.Ib[(y + 1) * im.bstride + x + 1] = p.Ib[y * im.bstride + x + 1] + <double>count
    im.inv_r = 1.0 / (<double>(im.h - 1) if im.h > 1 else 1.0)
    im.inv_c = 1.0 / (<double>(im.w - 1) if im.w > 1 else 1.0)


cdef inline bint _find_span(const unsigned char* want, Py_ssize_t W, _Span* sp) noexcept nogil:
    """The span [xa, xb] of requested pixels in a row (``want``: its W mask bytes); False if none."""
    cdef uint64_t word
    cdef Py_ssize_t xa = 0, xb = W - 1
    while xa + 8 <= W:  # through the background 8 mask bytes at a time
        memcpy(&word, want + xa, 8)
        if word != 0:
            break
        xa += 8
    while xa < W and not want[xa]:
        xa += 1
    if xa == W:
        return False
    while not want[xb]:
        xb -= 1
    sp.xa, sp.xb, sp.m = xa, xb, xb - xa + 1
    return True


cdef inline bint _span_direct(const _Plan* p, const _Image* im, const _Span* sp, Py_ssize_t row,
                              Py_ssize_t end) noexcept nogil:
    """Whether the span's context rows go straight into the output rows: every pixel of the span is
    requested (brain rows mostly are one run) and has its row before ``end`` (and there are context
    columns to place)."""
    cdef const unsigned char* want = im.want + sp.y * p.W
    cdef Py_ssize_t x
    if p.Fc == 0 or row + sp.m > end:
        return False
    for x in range(sp.xa, sp.xb + 1):
        if not want[x]:
            return False
    return True


cdef void _position(const _Plan* p, const _Image* im, const _Span* sp, Py_ssize_t col) noexcept nogil:
    """The position family: the row in the brain's bounding box, |column in the box - 0.5|, then the
    brain's share of each s x s brain box (one channel: the same steps for every C)."""
    cdef Py_ssize_t i, j, s, r, y0, y1
    cdef double ypos = (sp.y - im.r0) * im.inv_r
    for i in range(sp.m):
        sp.cx[i * sp.cs + col] = <float>ypos
        sp.cx[i * sp.cs + col + 1] = <float>fabs((sp.xa + i - im.c0) * im.inv_c - 0.5)
    col += 2
    for j in range(p.n_boxes):
        s = p.brain_boxes[j]
        r = s // 2
        y0, y1 = _clip(sp.y - r - im.r0, im.h), _clip(sp.y + r + 1 - im.r0, im.h)
        _row_boxes_cany(p.Ib + y0 * im.bstride, p.Ib + y1 * im.bstride, 1, im.w, sp.xa - r - im.c0, s, sp.m,
                        p.T1)
        _put_cany(p.T1, sp.m, 1, p.inv_area[p.n_means + p.n_stds + j], False, p.tmp, sp.cx + col, sp.cs)
        col += 1


cdef void _score_rows(_Scorer* sc, float* rows, Py_ssize_t t) noexcept nogil:
    """Score ``t`` <= tile_rows rows through the network; write each output to the next requested pixel
    (rows are in raster order), and 0 to the pixels skipped on the way."""
    cdef Py_ssize_t j
    cdef float* result
    forward_tile(rows, t, sc.weights, sc.biases, sc.sizes, sc.n_layers, sc.activation, sc.output,
                 sc.act0, sc.act1)
    cdef uint64_t word
    result = sc.act0 if sc.n_layers % 2 == 1 else sc.act1
    for j in range(t):
        while sc.p + 8 <= sc.P:  # to the next requested pixel: through the background 8 mask bytes at a time
            memcpy(&word, sc.want + sc.p, 8)
            if word != 0:
                break
            memset(sc.dst + sc.p, 0, 8 * sizeof(float))
            sc.p += 8
        while not sc.want[sc.p]:
            sc.dst[sc.p] = 0.0
            sc.p += 1
        sc.dst[sc.p] = result[j]
        sc.p += 1


cdef void _score_ready(_Scorer* sc, float[:, ::1] out, Py_ssize_t row, Py_ssize_t W) noexcept nogil:
    """After an image row: score the full tiles of the rows not scored yet (from ``head`` on); when
    another image row (up to W rows) might not fit, move the rows left over to the buffer's start."""
    cdef Py_ssize_t filled = row - sc.row_base
    while filled - sc.head >= sc.tile_rows:
        _score_rows(sc, &out[sc.head, 0], sc.tile_rows)
        sc.head += sc.tile_rows
    if out.shape[0] - filled < W and sc.head > 0:
        if filled > sc.head:  # (all scored: nothing to move, and out[head] may be past the end)
            memmove(&out[0, 0], &out[sc.head, 0], (filled - sc.head) * out.shape[1] * sizeof(float))
        sc.row_base += sc.head
        sc.head = 0


cdef void _score_rest(_Scorer* sc, float[:, ::1] out, Py_ssize_t row) noexcept nogil:
    """At an image's end: score its last rows, then write 0 to the pixels after its last requested one."""
    cdef Py_ssize_t filled = row - sc.row_base, t
    while sc.head < filled:
        t = min(sc.tile_rows, filled - sc.head)
        _score_rows(sc, &out[sc.head, 0], t)
        sc.head += t
    while sc.p < sc.P:
        sc.dst[sc.p] = 0.0
        sc.p += 1


cdef void _pixel_rows(const _Plan* p, float[:, ::1] out, Py_ssize_t n0, Py_ssize_t n1, _Scorer* sc,
                      const float* src) noexcept nogil:
    """The rows of every requested pixel of images n0 .. n1 - 1 (global row ``row``, ``row_start``'s
    numbering, to ``out[row - row_base]``), image by image, through the instance of the steps for
    the plan's k and C.

    With ``src`` not NULL, the pixels of the (one) image are read from there instead of the plan's images.

    With a scorer ``sc`` (``out`` then a buffer of at least ``tile_rows + W - 1``
    rows, offset 0), rows are scored as they are made: after each image row,
    every full tile of rows not yet scored goes through the network, and when
    the buffer has no room left for another image row, the rows left over move
    to its start; so the rows never leave the cache.  An image's last rows are
    scored at its end.  The tiles are those of scoring
    all the image's rows at once, ``tile_rows`` at a time from its first row.
    """
    cdef Py_ssize_t n, row, HW = p.H * p.W
    cdef _Image im
    for n in range(n0, n1):
        if sc != NULL:  # this image's rows go to the start of out, its scores to its plane of scores
            sc.row_base, sc.head = p.row_start[n], 0
            sc.want, sc.dst, sc.p = p.rows + n * HW, sc.scores + n * HW, 0
        if p.row_start[n + 1] == p.row_start[n]:
            if sc != NULL:
                memset(sc.dst, 0, HW * sizeof(float))
            continue
        _image_begin(p, n, src, &im)
        if p.k == 3 and p.C == 4:  # the MRI default
            row = _image_rows_k3c4(p, &im, out, sc)
        elif p.C == 4:
            row = _image_rows_c4(p, &im, out, sc)
        else:
            row = _image_rows_any(p, &im, out, sc)
        if sc != NULL:
            _score_rest(sc, out, row)


def pixel_context(
    const float[:, :, :, ::1] images not None,       # IN  (N, H, W, C)
    const unsigned char[:, :, ::1] brain not None,   # IN  (N, H, W) 0/1
    const unsigned char[:, :, ::1] rows not None,    # IN  (N, H, W) 0/1: pixels to describe
    const Py_ssize_t[::1] row_start not None,        # IN  (N + 1,) first output row of each image
    const Py_ssize_t[:, ::1] mirror not None,        # IN  (N, W) mirror column of each column
    const Py_ssize_t[:, ::1] bbox not None,          # IN  (N, 4) brain rows [r0, r1], columns [c0, c1]
    const Py_ssize_t[::1] mean_sizes not None,       # IN  odd box sizes of the mean family
    const Py_ssize_t[::1] std_sizes not None,        # IN  odd box sizes of the std family
    const Py_ssize_t[::1] brain_boxes not None,      # IN  odd box sizes of the brain shares (position)
    Py_ssize_t k,                                    #     window size: 0 (none) or odd
    const Py_ssize_t[::1] rowmap not None,          # IN  (H + 2 (k // 2),) window rows, pad_index
    const Py_ssize_t[::1] colmap not None,          # IN  (W + 2 (k // 2),) window columns, pad_index
    bint asymmetry, Py_ssize_t asymmetry_box,        #     the asymmetry family, its (odd) box size
    Py_ssize_t gradient_size, bint position,         #     gradient box size (0: none); the position family
    float[:, ::1] out not None,                      # OUT (n_rows, >= offset + columns)
    Py_ssize_t offset,                               #     the column of a row's first window column
    double[::1] scratch not None,                    # SCRATCH >= scratch_size(H, W, C, columns)
    Py_ssize_t n0, Py_ssize_t n1,                    # images [n0, n1) only
):
    """Write the context columns of every requested pixel of images n0 .. n1 - 1 into ``out``.

    Box statistics count pixels outside the brain as 0, so the integral images
    only span the brain's bounding box (an empty brain: every statistic is 0).
    """
    cdef Py_ssize_t N = images.shape[0], H = images.shape[1], W = images.shape[2], C = images.shape[3]
    cdef Py_ssize_t SM = mean_sizes.shape[0], SS = std_sizes.shape[0], SB = brain_boxes.shape[0]
    cdef Py_ssize_t F = n_context_columns(C, k, SM, SS, asymmetry, gradient_size > 0, position, SB)
    cdef _Plan plan
    # preconditions, checked before the GIL is released
    _check_context(images, brain, rows, row_start, mirror, bbox, mean_sizes, std_sizes, brain_boxes, k,
                   rowmap, colmap, asymmetry, asymmetry_box, gradient_size, n0, n1)
    if offset < 0 or out.shape[1] < offset + F or row_start[0] < 0 or row_start[N] > out.shape[0]:
        raise ValueError(f"out must have the rows of row_start and at least {offset + F} columns")
    if scratch.shape[0] < scratch_size(H, W, C, F):
        raise ValueError(f"scratch must hold scratch_size(H, W, C, {F}) values")
    if N * H * W * C == 0 or n0 == n1:
        return
    _plan_init(&plan, images, brain, rows, row_start, mirror, bbox, mean_sizes, std_sizes, brain_boxes, k,
               rowmap, colmap, asymmetry, asymmetry_box, gradient_size, position, offset, scratch)
    try:
        with nogil:
            _pixel_rows(&plan, out, n0, n1, NULL, NULL)
    finally:
        free(plan.inv_area)


def pixel_network_scores(
    const float[:, :, :, ::1] images not None,       # IN  (N, H, W, C)
    const unsigned char[:, :, ::1] brain not None,   # IN  (N, H, W) 0/1
    const unsigned char[:, :, ::1] rows not None,    # IN  (N, H, W) 0/1: pixels to score
    const Py_ssize_t[::1] row_start not None,        # IN  (N + 1,) cumulative counts of ``rows``
    const Py_ssize_t[:, ::1] mirror not None,        # IN  (N, W) mirror column of each column
    const Py_ssize_t[:, ::1] bbox not None,          # IN  (N, 4) brain rows [r0, r1], columns [c0, c1]
    const Py_ssize_t[::1] mean_sizes not None,       # IN  odd box sizes of the mean family
    const Py_ssize_t[::1] std_sizes not None,        # IN  odd box sizes of the std family
    const Py_ssize_t[::1] brain_boxes not None,      # IN  odd box sizes of the brain shares (position)
    Py_ssize_t k,                                    #     window size: 0 (none) or odd
    const Py_ssize_t[::1] rowmap not None,          # IN  (H + 2 (k // 2),) window rows, pad_index
    const Py_ssize_t[::1] colmap not None,          # IN  (W + 2 (k // 2),) window columns, pad_index
    bint asymmetry, Py_ssize_t asymmetry_box,        #     the asymmetry family, its (odd) box size
    Py_ssize_t gradient_size, bint position,         #     gradient box size (0: none); the position family
    const float[::1] weights not None,               # IN  layers' (n_in, n_out) matrices, row-major, concatenated
    const float[::1] biases not None,                # IN  layers' biases, concatenated
    const Py_ssize_t[::1] sizes not None,            # IN  (n_layers + 1,) widths: the row width, hidden..., 1
    int activation,                                  #     hidden activation code (as ``_mlp``)
    int output,                                      #     the output unit's: 3 logistic, 0 identity
    float[:, :, ::1] scores not None,                # OUT (N, H, W) the output; 0 where ``rows`` is 0
    float[:, ::1] rowbuf not None,                   # SCRATCH (>= min(most rows of an image, tile_rows + W - 1), row width)
    double[::1] scratch not None,                    # SCRATCH >= scratch_size(H, W, C, row width)
    float[:, ::1] act not None,                      # SCRATCH (2, tile_rows * widest hidden layer)
    Py_ssize_t tile_rows,                            #     rows per pass through the network
    Py_ssize_t n0, Py_ssize_t n1,                    # images [n0, n1) only
    float[:, :, ::1] normalized=None,                # SCRATCH (H, W, C), or None: the images are normalised
    double min_std=0.0,                              #     ... with this least spread (as _normalize)
):
    """Score every requested pixel of images n0 .. n1 - 1 with an MLP over its feature rows
    (window and context, as :func:`pixel_context` writes them), one image at a time.  A linear
    model is the network without hidden layers (sizes (F, 1)): ``output`` 0 gives its decision
    values, 3 (logistic regression) its probabilities.

    An image's rows go into ``rowbuf`` image row by image row; as soon as it holds
    ``tile_rows`` rows they go through the network (``_mlp.forward_tile``, as
    :func:`fastseg._ext._mlp.mlp_rows` runs them) and each output to its pixel of
    ``scores``.  So the rows stay in the core's cache between the two steps (the
    rows of a whole 240 x 240 brain, 3.5 MB, would not), and the tiles are those
    of the image's rows ``tile_rows`` at a time from its first: the same numbers
    as those two kernels called in turn, without returning to Python between images.

    With ``normalized``, the images are the raw slices: each is first normalised
    over its brain (``_normalize.normalize_brain``'s numbers) into that one-slice
    buffer, where the row kernel finds it in cache (a normalised chunk of slices
    would be read back from memory).  Returns -1, or the first image holding a
    NaN or an infinite value (its scores and the following images' are then not
    written); without ``normalized``, -1.
    """
    cdef Py_ssize_t N = images.shape[0], H = images.shape[1], W = images.shape[2], C = images.shape[3]
    cdef Py_ssize_t SM = mean_sizes.shape[0], SS = std_sizes.shape[0], SB = brain_boxes.shape[0]
    cdef Py_ssize_t F = n_context_columns(C, k, SM, SS, asymmetry, gradient_size > 0, position, SB)
    cdef Py_ssize_t n_layers = sizes.shape[0] - 1, widest = 1, n_weights = 0, n_biases = 0
    cdef Py_ssize_t n, j, p, P = H * W, count, most = 0, bad = -1
    cdef const unsigned char* want
    cdef _Plan plan
    cdef _Scorer sc
    cdef double* stats = NULL
    # preconditions, checked before the GIL is released
    _check_context(images, brain, rows, row_start, mirror, bbox, mean_sizes, std_sizes, brain_boxes, k,
                   rowmap, colmap, asymmetry, asymmetry_box, gradient_size, n0, n1)
    if n_layers < 1 or sizes[0] != F or sizes[n_layers] != 1:
        raise ValueError(f"sizes must run from the row width {F} to 1")
    for j in range(n_layers):
        if sizes[j + 1] < 1 or sizes[j + 1] > 2147483647:
            raise ValueError("layer widths must be in 1 .. 2**31 - 1")
        n_weights += sizes[j] * sizes[j + 1]
        n_biases += sizes[j + 1]
        widest = max(widest, sizes[j + 1])
    if weights.shape[0] != n_weights or biases.shape[0] != n_biases:
        raise ValueError(f"weights/biases must hold {n_weights}/{n_biases} values for these sizes")
    if scores.shape[0] != N or scores.shape[1] != H or scores.shape[2] != W:
        raise ValueError(f"scores must have shape {(N, H, W)}")
    if not 0 <= output <= 3:
        raise ValueError(f"output must be an activation code 0-3, got {output}")
    if tile_rows < 1 or tile_rows > 2147483647 or act.shape[0] != 2 or act.shape[1] < tile_rows * widest:
        raise ValueError(f"need 1 <= tile_rows < 2**31 and act of shape (2, >= {tile_rows * widest})")
    if scratch.shape[0] < scratch_size(H, W, C, F):
        raise ValueError(f"scratch must hold scratch_size(H, W, C, {F}) values")
    for n in range(n0, n1):  # the scatter below relies on row_start counting rows exactly
        count = 0
        want = &rows[n, 0, 0]
        for p in range(P):
            count += want[p] != 0
        if count != row_start[n + 1] - row_start[n]:
            raise ValueError("row_start must count the requested pixels of each image")
        most = max(most, count)
    most = min(most, tile_rows + W - 1)  # rows are scored as soon as a tile is full (see _pixel_rows)
    if rowbuf.shape[1] != F or rowbuf.shape[0] < most:
        raise ValueError(f"rowbuf must have shape (>= {most}, {F})")
    if normalized is not None and (normalized.shape[0] != H or normalized.shape[1] != W or normalized.shape[2] != C):
        raise ValueError(f"normalized must have shape {(H, W, C)}")
    if normalized is not None and not min_std >= 0:
        raise ValueError(f"min_std must be >= 0, got {min_std}")
    if N * H * W == 0 or n0 == n1:
        return -1
    inv_area = _inverse_areas(mean_sizes, std_sizes, brain_boxes)
    inv_asym = 1.0 / <double>(asymmetry_box * asymmetry_box) if asymmetry else 0.0
    inv_grad = 1.0 / <double>(gradient_size * (gradient_size // 2)) if gradient_size else 0.0
    sc.weights, sc.biases, sc.sizes, sc.n_layers = &weights[0], &biases[0], &sizes[0], n_layers
    sc.activation, sc.output, sc.act0, sc.act1 = activation, output, &act[0, 0], &act[1, 0]
    sc.tile_rows, sc.scores, sc.P = tile_rows, &scores[0, 0, 0], P
    most = min(most, tile_rows + W - 1)  # rows are scored as soon as a tile is full (see _pixel_rows)
    if rowbuf.shape[1] != F or rowbuf.shape[0] < most:
        raise ValueError(f"rowbuf must have shape (>= {most}, {F})")
    if normalized is not None and (normalized.shape[0] != H or normalized.shape[1] != W or normalized.shape[2] != C):
        raise ValueError(f"normalized must have shape {(H, W, C)}")
    if normalized is not None and not min_std >= 0:
        raise ValueError(f"min_std must be >= 0, got {min_std}")
    if N * H * W == 0 or n0 == n1:
        return -1
    _plan_init(&plan, images, brain, rows, row_start, mirror, bbox, mean_sizes, std_sizes, brain_boxes, k,
               rowmap, colmap, asymmetry, asymmetry_box, gradient_size, position, 0, scratch)
    sc.weights, sc.biases, sc.sizes, sc.n_layers = &weights[0], &biases[0], &sizes[0], n_layers
    sc.activation, sc.output, sc.act0, sc.act1 = activation, output, &act[0, 0], &act[1, 0]
    sc.tile_rows, sc.scores, sc.P = tile_rows, &scores[0, 0, 0], P
    try:
        if normalized is None:
            with nogil:
                _pixel_rows(&plan, rowbuf, n0, n1, &sc, NULL)
            return -1
        stats = <double*>malloc(2 * C * sizeof(double))
        if stats == NULL:
            raise MemoryError()
        with nogil:
            for n in range(n0, n1):
                if not normalize_one(&images[n, 0, 0, 0], &brain[n, 0, 0], P, C, &normalized[0, 0, 0],
                                     stats, stats + C, min_std):
                    bad = n
                    break
                _pixel_rows(&plan, rowbuf, n, n + 1, &sc, &normalized[0, 0, 0])
        return bad
    finally:
        free(plan.inv_area)
        free(stats)


include "_simd.pxi"


def cpu_has_avx2():
    """Whether this CPU runs AVX2 instructions (False where that cannot be asked)."""
    return fs_cpu_has_avx2() != 0
