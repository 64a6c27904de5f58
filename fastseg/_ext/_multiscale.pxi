# The multiscale filter-bank kernel: included by _multiscale.pyx (baseline build) and
# _multiscale_avx2.pyx (built with AVX2); see _multiscale.pyx's docstring.
#
# One call computes one tile of the outer axis: every channel's Gaussian at every scale (separable
# passes into the caller's scratch), then, row by row, every requested feature of the requested
# pixels, written into their output rows.  A plan struct carries the geometry and the channel and
# scale at work; each step is a small ``noexcept nogil`` function over rows of X floats, whose inner
# loops the compiler vectorises (the hottest ones are C, in _multiscale.h).

from libc.math cimport sqrtf
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy

include "_simd.pxi"

cdef extern from "_multiscale.h":
    void fs_eig3_rows(const float* h, float* e, Py_ssize_t n) noexcept nogil
    void fs_fir_rows(const float* const* src, float* dst, const float* w, Py_ssize_t r, Py_ssize_t n) noexcept nogil
    void fs_write_rows(const float* feats, Py_ssize_t X, Py_ssize_t F, float* out) noexcept nogil
    void fs_write_rows_masked(const float* feats, Py_ssize_t X, Py_ssize_t F, const unsigned char* m,
                              float* out, float* tmp) noexcept nogil
    ctypedef struct fs_rows2d:
        const float* u
        const float* c
        const float* d
        const float* a0
        const float* a1
        const float* b0
        const float* b1
        const float* c0
        const float* c1
        float sa, sb, sc
        Py_ssize_t n
    void fs_features2d_row(const fs_rows2d* R, Py_ssize_t xa, Py_ssize_t xb, float* edge, float* e0,
                           float* e1) noexcept nogil


cdef struct _Plan:
    # the image: C channels of (Z, Y, X), float32; the features: S scales of each
    const float* images       # (C, Z, Y, X)
    const float* weights      # (S, R + 1) half kernels, centre first, zero past each radius
    const Py_ssize_t* radii   # (S,)
    Py_ssize_t C, S, R
    Py_ssize_t Z, Y, X
    bint three_d
    bint intensity, edges, texture
    Py_ssize_t nf             # columns per channel and scale
    const unsigned char* mask  # (Z, Y, X) requested pixels, or NULL: all
    const Py_ssize_t* row_start  # (Z * Y + 1,) first output row of each image row
    const unsigned char* need  # (Z, Y) rows whose Gaussian the features read
    const Py_ssize_t* span    # (Z * Y, 4) columns [a, b) of each row the features read, then the
                              # requested pixels' [a, b) (2-D; 3-D rows are filtered whole)
    float* out                # (n_rows, F)
    Py_ssize_t F
    # the tile: output rows along the outer axis (z in 3-D, y in 2-D) [t0, t1); the Gaussians held
    # cover it and two rows or planes more on each side: planes [zg0, zg0 + Zg) of rows
    # [yg0, yg0 + Yg)
    Py_ssize_t t0, t1, zg0, Zg, yg0, Yg
    float* gauss              # SCRATCH (C * S, Zg, Yg, X)
    # the channel and scale at work
    const float* img
    float* g
    const float* w
    Py_ssize_t r
    float* rows               # SCRATCH: 16 rows of X floats
    float* feats              # SCRATCH: F rows of X floats, one output row's features
    float* tmp                # SCRATCH: 8 rows of F floats
    float* line               # SCRATCH: X + 2 R floats
    float* plane              # SCRATCH: Y * X floats
    unsigned char* need_y     # SCRATCH: Y flags
    const float** src         # SCRATCH: 2 R + 1 row pointers
    const float** srcx        # SCRATCH: 2 R + 1 pointers into ``line``


cdef inline Py_ssize_t _clamp(Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """Index ``i`` with the border repeated (scipy.ndimage's 'nearest'; for one step past the border
    also its 'reflect', which is all the Sobel filter reads)."""
    if i < 0:
        return 0
    if i >= n:
        return n - 1
    return i


cdef inline float _grad_pick(Py_ssize_t i, Py_ssize_t n, Py_ssize_t* lo, Py_ssize_t* hi) noexcept nogil:
    """numpy.gradient's stencil at ``i`` of an axis of ``n``: ``(f[hi] - f[lo]) * scale`` (central
    difference inside, one-sided at the ends; zero on an axis of one)."""
    if n == 1:
        lo[0] = 0
        hi[0] = 0
        return 0.0
    if i == 0:
        lo[0] = 0
        hi[0] = 1
        return 1.0
    if i == n - 1:
        lo[0] = n - 2
        hi[0] = n - 1
        return 1.0
    lo[0] = i - 1
    hi[0] = i + 1
    return 0.5


# ------------------------------------------------------------------------------ row arithmetic

cdef inline void _diff(const float* a, const float* b, float scale, float* out, Py_ssize_t n) noexcept nogil:
    """out = (b - a) * scale."""
    cdef Py_ssize_t i
    for i in range(n):
        out[i] = (b[i] - a[i]) * scale


cdef inline void _smooth(const float* a, const float* b, const float* c, float* out, Py_ssize_t n) noexcept nogil:
    """out = (a + 2 b + c) / 4, the Sobel smoothing across rows."""
    cdef Py_ssize_t i
    for i in range(n):
        out[i] = (a[i] + 2.0 * b[i] + c[i]) * 0.25


cdef inline void _grad_x(const float* f, float* out, Py_ssize_t n) noexcept nogil:
    """numpy.gradient of a row."""
    cdef Py_ssize_t i
    if n == 1:
        out[0] = 0.0
        return
    out[0] = f[1] - f[0]
    for i in range(1, n - 1):
        out[i] = (f[i + 1] - f[i - 1]) * 0.5
    out[n - 1] = f[n - 1] - f[n - 2]


cdef inline void _sobel_dx(const float* f, float* out, Py_ssize_t n) noexcept nogil:
    """The Sobel difference along a row, border reflected: f[x + 1] - f[x - 1]."""
    cdef Py_ssize_t i
    if n == 1:
        out[0] = 0.0
        return
    out[0] = f[1] - f[0]
    for i in range(1, n - 1):
        out[i] = f[i + 1] - f[i - 1]
    out[n - 1] = f[n - 1] - f[n - 2]


cdef inline void _sobel_sx(const float* f, float* out, Py_ssize_t n) noexcept nogil:
    """The Sobel smoothing along a row, border reflected: (f[x - 1] + 2 f[x] + f[x + 1]) / 4."""
    cdef Py_ssize_t i
    if n == 1:
        out[0] = f[0]
        return
    out[0] = (f[0] + 2.0 * f[0] + f[1]) * 0.25
    for i in range(1, n - 1):
        out[i] = (f[i - 1] + 2.0 * f[i] + f[i + 1]) * 0.25
    out[n - 1] = (f[n - 2] + 2.0 * f[n - 1] + f[n - 1]) * 0.25


# ------------------------------------------------------------------------------ the Gaussian

cdef inline void _fir_rows(const float* const* src, float* dst, const float* w, Py_ssize_t r,
                           Py_ssize_t n) noexcept nogil:
    """dst = the Gaussian across the 2 r + 1 rows ``src`` (``fs_fir_rows``, _multiscale.h)."""
    fs_fir_rows(src, dst, w, r, n)


cdef void _need_y(_Plan* p, Py_ssize_t z) noexcept nogil:
    """need_y[y]: whether the y-pass of plane z reads row y (a needed row lies within r of it)."""
    cdef Py_ssize_t y, last = -(1 << 40), Y = p.Y, r = p.r
    cdef const unsigned char* need = p.need + z * Y
    for y in range(Y):
        p.need_y[y] = 0
    for y in range(Y):
        if need[y]:
            last = y
        if y - last <= r:
            p.need_y[y] = 1
    last = 1 << 40
    for y in range(Y - 1, -1, -1):
        if need[y]:
            last = y
        if last - y <= r:
            p.need_y[y] = 1


cdef inline float* _gptr(_Plan* p, Py_ssize_t z, Py_ssize_t y) noexcept nogil:
    """Row (z, y) of the Gaussian held (an image row inside the tile's reach)."""
    return p.g + ((z - p.zg0) * p.Yg + (y - p.yg0)) * p.X


cdef void _gaussian3(_Plan* p) noexcept nogil:
    """3-D: the Gaussian of the held planes, passes along z (from the image), y and x (in place), in
    scipy.ndimage.gaussian_filter's order, each rounded to float32, at the rows the features read."""
    cdef Py_ssize_t z, y, k, X = p.X, Y = p.Y, Z = p.Z, r = p.r
    cdef const float** src = p.src
    for z in range(p.zg0, p.zg0 + p.Zg):
        _need_y(p, z)
        # along z, for the rows the y-pass reads
        for y in range(Y):
            if p.need_y[y]:
                for k in range(2 * r + 1):
                    src[k] = p.img + (_clamp(z - r + k, Z) * Y + y) * X
                _fir_rows(src, p.plane + y * X, p.w, r, X)
        # along y, from that copy, for the needed rows; then along x
        for y in range(Y):
            if p.need[z * Y + y]:
                for k in range(2 * r + 1):
                    src[k] = p.plane + _clamp(y - r + k, Y) * X
                _fir_rows(src, _gptr(p, z, y), p.w, r, X)
                _pass_x(p, _gptr(p, z, y), 0, X)


cdef void _gaussian2(_Plan* p) noexcept nogil:
    """2-D: the Gaussian of the held rows, passes along y (from the image) and x (in place), at the
    columns the features read (and, along y, the r columns around them the x-pass reads)."""
    cdef Py_ssize_t y, k, X = p.X, Y = p.Y, r = p.r, a, b, ya, yb
    cdef const float** src = p.src
    for y in range(p.yg0, p.yg0 + p.Yg):
        if p.need[y]:
            a = p.span[4 * y]
            b = p.span[4 * y + 1]
            ya = max(a - r, 0)
            yb = min(b + r, X)
            for k in range(2 * r + 1):
                src[k] = p.img + _clamp(y - r + k, Y) * X + ya
            _fir_rows(src, _gptr(p, 0, y) + ya, p.w, r, yb - ya)
            _pass_x(p, _gptr(p, 0, y), a, b)


cdef void _pass_x(_Plan* p, float* row, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """The Gaussian along one row, in place, at columns [a, b), from a copy of columns
    [a - r, b + r) with the border repeated (the y-pass made those columns)."""
    cdef Py_ssize_t i, X = p.X, r = p.r, j0 = max(a - r, 0), j1 = min(b + r, X)
    cdef float* line = p.line
    if b <= a:
        return
    # line[i] = row[clamp(a - r + i)]: the border pixels repeated, the inside copied whole
    for i in range(j0 - (a - r)):
        line[i] = row[0]
    memcpy(line + (j0 - (a - r)), row + j0, (j1 - j0) * sizeof(float))
    for i in range(j1 - (a - r), b - a + 2 * r):
        line[i] = row[X - 1]
    for i in range(2 * r + 1):
        p.srcx[i] = line + i
    _fir_rows(p.srcx, row + a, p.w, r, b - a)


# ------------------------------------------------------------------------------ the features

cdef inline const float* _grow(_Plan* p, Py_ssize_t z, Py_ssize_t y) noexcept nogil:
    return _gptr(p, z, y)


cdef void _grad_y_row(_Plan* p, Py_ssize_t z, Py_ssize_t y, float* out) noexcept nogil:
    """numpy.gradient of g along y, at row (z, y)."""
    cdef Py_ssize_t lo, hi
    cdef float s = _grad_pick(y, p.Y, &lo, &hi)
    _diff(_grow(p, z, lo), _grow(p, z, hi), s, out, p.X)


cdef void _grad_z_row(_Plan* p, Py_ssize_t z, Py_ssize_t y, float* out) noexcept nogil:
    """numpy.gradient of g along z, at row (z, y)."""
    cdef Py_ssize_t lo, hi
    cdef float s = _grad_pick(z, p.Z, &lo, &hi)
    _diff(_grow(p, lo, y), _grow(p, hi, y), s, out, p.X)


cdef void _edges_row(_Plan* p, Py_ssize_t z, Py_ssize_t y, float* out) noexcept nogil:
    """The Sobel magnitude of g at row (z, y): sqrt(sum of the squared axis responses / ndim)."""
    cdef Py_ssize_t i, j, X = p.X, Y = p.Y, Z = p.Z
    cdef float* t0 = p.rows
    cdef float* t1 = p.rows + X
    cdef float* t2 = p.rows + 2 * X
    cdef float* sz = p.rows + 3 * X       # 3 rows: g smoothed along z at y - 1, y, y + 1
    cdef float* dz = p.rows + 6 * X       # 3 rows: g differenced along z at y - 1, y, y + 1
    cdef float* acc = p.rows + 9 * X
    cdef Py_ssize_t ys[3]
    cdef float ndim_sqrt
    ys[0] = _clamp(y - 1, Y)
    ys[1] = y
    ys[2] = _clamp(y + 1, Y)
    if p.three_d:
        for j in range(3):
            _smooth(_grow(p, _clamp(z - 1, Z), ys[j]), _grow(p, z, ys[j]), _grow(p, _clamp(z + 1, Z), ys[j]),
                    sz + j * X, X)
            _diff(_grow(p, _clamp(z - 1, Z), ys[j]), _grow(p, _clamp(z + 1, Z), ys[j]), 1.0, dz + j * X, X)
        # along z: difference along z, smoothed along y and x
        _smooth(dz, dz + X, dz + 2 * X, t0, X)
        _sobel_sx(t0, t1, X)
        for i in range(X):
            acc[i] = t1[i] * t1[i]
        ndim_sqrt = sqrtf(3.0)
    else:
        for j in range(3):
            memcpy(sz + j * X, _grow(p, z, ys[j]), X * sizeof(float))
        for i in range(X):
            acc[i] = 0.0
        ndim_sqrt = sqrtf(2.0)
    # along y: (smoothed along z,) differenced along y, smoothed along x
    _diff(sz, sz + 2 * X, 1.0, t0, X)
    _sobel_sx(t0, t1, X)
    for i in range(X):
        acc[i] = acc[i] + t1[i] * t1[i]
    # along x: (smoothed along z,) smoothed along y, differenced along x
    _smooth(sz, sz + X, sz + 2 * X, t0, X)
    _sobel_dx(t0, t2, X)
    for i in range(X):
        out[i] = sqrtf(acc[i] + t2[i] * t2[i]) / ndim_sqrt


cdef void _hessian_row(_Plan* p, Py_ssize_t z, Py_ssize_t y, float* h) noexcept nogil:
    """The Hessian of g at row (z, y) as numpy.gradient of numpy.gradient builds it, upper triangle
    in row-major order (2-D: yy, yx, xx; 3-D: zz, zy, zx, yy, yx, xx), one row of X each in ``h``."""
    cdef Py_ssize_t X = p.X, lo, hi, zlo, zhi
    cdef float s, sz
    cdef float* a = p.rows
    cdef float* b = p.rows + X
    cdef float* c = p.rows + 2 * X
    cdef float* d = p.rows + 3 * X
    cdef float* hyy
    cdef Py_ssize_t k = 0
    if p.three_d:
        # zz: gradient along z of the z-gradient
        sz = _grad_pick(z, p.Z, &zlo, &zhi)
        _grad_z_row(p, zlo, y, a)
        _grad_z_row(p, zhi, y, b)
        _diff(a, b, sz, h, X)
        # zy: gradient along y of the z-gradient
        s = _grad_pick(y, p.Y, &lo, &hi)
        _grad_z_row(p, z, lo, a)
        _grad_z_row(p, z, hi, b)
        _diff(a, b, s, h + X, X)
        # zx: gradient along x of the z-gradient
        _grad_z_row(p, z, y, a)
        _grad_x(a, h + 2 * X, X)
        k = 3
    s = _grad_pick(y, p.Y, &lo, &hi)
    _grad_y_row(p, z, lo, a)
    _grad_y_row(p, z, hi, b)
    _diff(a, b, s, h + k * X, X)
    _grad_y_row(p, z, y, c)
    _grad_x(c, h + (k + 1) * X, X)
    _grad_x(_grow(p, z, y), d, X)
    _grad_x(d, h + (k + 2) * X, X)


cdef void _eig2(const float* h, float* e, Py_ssize_t X) noexcept nogil:
    """Eigenvalues of the 2x2 Hessians, decreasing (two rows of X in ``e``), float32 as
    skimage.feature.hessian_matrix_eigvals computes them."""
    cdef Py_ssize_t i
    cdef float m, d, hs
    cdef const float* a = h
    cdef const float* b = h + X
    cdef const float* c = h + 2 * X
    for i in range(X):
        m = (a[i] + c[i]) / 2.0
        d = (a[i] - c[i]) / 2.0
        hs = sqrtf(b[i] * b[i] + d * d)
        e[i] = m + hs
        e[X + i] = m - hs


cdef void _write_row(_Plan* p, Py_ssize_t z, Py_ssize_t y) noexcept nogil:
    """Copy the F feature rows of (z, y) into the output rows of its requested pixels (one pixel's
    F values contiguous: each output line is written once)."""
    cdef Py_ssize_t X = p.X, F = p.F
    cdef float* o = p.out + p.row_start[z * p.Y + y] * F
    if p.mask == NULL:
        fs_write_rows(p.feats, X, F, o)
    else:
        fs_write_rows_masked(p.feats, X, F, p.mask + (z * p.Y + y) * X, o, p.tmp)


cdef void _scale_row(_Plan* p, Py_ssize_t z, Py_ssize_t y, float* feats) noexcept nogil:
    """The features of row (z, y) at the channel and scale at work: nf rows of X in ``feats``."""
    cdef Py_ssize_t X = p.X, nf = 0
    cdef float* h = p.rows + 10 * X           # up to 6 rows: the Hessian
    if p.intensity:
        memcpy(feats, _grow(p, z, y), X * sizeof(float))
        nf += 1
    if not p.three_d and X >= 2 and (p.edges or p.texture):
        _features2d(p, y, p.span[4 * y + 2], p.span[4 * y + 3], feats + nf * X if p.edges else p.rows,
                    feats + (nf + p.edges) * X if p.texture else p.rows + X,
                    feats + (nf + p.edges + 1) * X if p.texture else p.rows + 2 * X)
        return
    if p.edges:
        _edges_row(p, z, y, feats + nf * X)
        nf += 1
    if p.texture:
        _hessian_row(p, z, y, h)
        if p.three_d:
            fs_eig3_rows(h, feats + nf * X, X)
        else:
            _eig2(h, feats + nf * X, X)


cdef void _features2d(_Plan* p, Py_ssize_t y, Py_ssize_t xa, Py_ssize_t xb, float* edge, float* e0,
                      float* e1) noexcept nogil:
    """2-D, X >= 2: the Sobel magnitude and Hessian eigenvalues of row y at columns [xa, xb) in one
    pass (``fs_features2d_row``)."""
    cdef fs_rows2d R
    cdef Py_ssize_t lo, hi, l0, l1, h0, h1, Y = p.Y
    cdef float s = _grad_pick(y, Y, &lo, &hi)
    R.u = _grow(p, 0, _clamp(y - 1, Y))
    R.c = _grow(p, 0, y)
    R.d = _grow(p, 0, _clamp(y + 1, Y))
    R.sa = _grad_pick(lo, Y, &l0, &l1)
    R.a0 = _grow(p, 0, l0)
    R.a1 = _grow(p, 0, l1)
    R.sb = _grad_pick(hi, Y, &h0, &h1)
    R.b0 = _grow(p, 0, h0)
    R.b1 = _grow(p, 0, h1)
    R.sc = s
    R.c0 = _grow(p, 0, lo)
    R.c1 = _grow(p, 0, hi)
    R.n = p.X
    fs_features2d_row(&R, xa, xb, edge, e0, e1)


cdef void _select(_Plan* p, Py_ssize_t c, Py_ssize_t s) noexcept nogil:
    p.img = p.images + c * p.Z * p.Y * p.X
    p.g = p.gauss + (c * p.S + s) * p.Zg * p.Yg * p.X
    p.w = p.weights + s * (p.R + 1)
    p.r = p.radii[s]


cdef void _tile(_Plan* p) noexcept nogil:
    """The tile's features: every channel's Gaussians at every scale, then row by row every
    feature of the requested pixels."""
    cdef Py_ssize_t c, s, z, y, z0, z1, y0, y1, Y = p.Y, X = p.X
    for c in range(p.C):
        for s in range(p.S):
            _select(p, c, s)
            if p.three_d:
                _gaussian3(p)
            else:
                _gaussian2(p)
    if p.three_d:
        z0, z1, y0, y1 = p.t0, p.t1, 0, Y
    else:
        z0, z1, y0, y1 = 0, 1, p.t0, p.t1
    for z in range(z0, z1):
        for y in range(y0, y1):
            if p.row_start[z * Y + y + 1] == p.row_start[z * Y + y]:
                continue
            for c in range(p.C):
                for s in range(p.S):
                    _select(p, c, s)
                    _scale_row(p, z, y, p.feats + (c * p.S + s) * p.nf * X)
            _write_row(p, z, y)


def tile_features(
    const float[:, :, :, ::1] images not None,  # IN      (C, Z, Y, X) the channels, float32
    const float[:, ::1] weights not None,       # IN      (S, R + 1) half Gaussian kernels, centre first
    const Py_ssize_t[::1] radii not None,       # IN      (S,) their radii (<= R)
    bint three_d, bint intensity, bint edges, bint texture,
    const unsigned char[:, :, ::1] mask,        # IN      (Z, Y, X) requested pixels, or None: all
    const Py_ssize_t[::1] row_start not None,   # IN      (Z * Y + 1,) first output row of each image row
    const unsigned char[:, ::1] need not None,  # IN      (Z, Y) image rows whose Gaussian the features read
    const Py_ssize_t[:, ::1] span not None,     # IN      (Z * Y, 4) per row: columns [a, b) the features
                                                #         read, columns [a, b) of the requested pixels
    float[:, ::1] out not None,                 # OUT     (n_rows, F) rows of the tile's requested pixels
    Py_ssize_t t0, Py_ssize_t t1,               #         the tile: outer rows [t0, t1) (z in 3-D, y in 2-D)
    float[::1] gauss not None,                  # SCRATCH >= C * S * (t1 - t0 + 4) * (Y * X in 3-D, X in 2-D)
):
    """Write every feature of the requested pixels of one tile (channels, scales, then intensity,
    edges and Hessian eigenvalues, those requested) into their output rows."""
    cdef _Plan p
    cdef Py_ssize_t C = images.shape[0], Z = images.shape[1], Y = images.shape[2], X = images.shape[3]
    cdef Py_ssize_t S = weights.shape[0], R = weights.shape[1] - 1, s
    cdef Py_ssize_t nf = intensity + edges + texture * (3 if three_d else 2)
    cdef Py_ssize_t outer = Z if three_d else Y
    if radii.shape[0] != S or R < 0:
        raise ValueError(f"radii must have {S} entries")
    for s in range(S):
        if radii[s] < 0 or radii[s] > R:
            raise ValueError(f"radii must lie in [0, {R}]")
    if need.shape[0] != Z or need.shape[1] != Y:
        raise ValueError(f"need must have shape {(Z, Y)}")
    if row_start.shape[0] != Z * Y + 1:
        raise ValueError(f"row_start must have {Z * Y + 1} entries")
    if span.shape[0] != Z * Y or span.shape[1] != 4:
        raise ValueError(f"span must have shape {(Z * Y, 4)}")
    for s in range(Z * Y):
        if not (0 <= span[s, 0] <= span[s, 1] <= X and 0 <= span[s, 2] <= span[s, 3] <= X):
            raise ValueError(f"span must hold column ranges within [0, {X}]")
    if mask is not None and (mask.shape[0] != Z or mask.shape[1] != Y or mask.shape[2] != X):
        raise ValueError(f"mask must have shape {(Z, Y, X)}")
    if (not three_d and Z != 1) or out.shape[1] != C * S * nf or not 0 <= t0 <= t1 <= outer:
        raise ValueError("inconsistent plan")
    if row_start[0] != 0 or row_start[Z * Y] > out.shape[0]:
        raise ValueError(f"out must have at least {row_start[Z * Y]} rows")
    if C * Z * Y * X == 0 or nf == 0 or t0 == t1 or out.shape[0] == 0:
        return
    p.images = &images[0, 0, 0, 0]
    p.weights = &weights[0, 0]
    p.radii = &radii[0]
    p.C = C
    p.S = S
    p.R = R
    p.Z = Z
    p.Y = Y
    p.X = X
    p.three_d = three_d
    p.intensity = intensity
    p.edges = edges
    p.texture = texture
    p.nf = nf
    p.mask = NULL
    if mask is not None:
        p.mask = &mask[0, 0, 0]
    p.row_start = &row_start[0]
    p.need = &need[0, 0]
    p.span = &span[0, 0]
    p.out = &out[0, 0]
    p.F = out.shape[1]
    p.t0 = t0
    p.t1 = t1
    if three_d:
        p.zg0 = max(t0 - 2, 0)
        p.Zg = min(t1 + 2, Z) - p.zg0
        p.yg0 = 0
        p.Yg = Y
    else:
        p.zg0 = 0
        p.Zg = 1
        p.yg0 = max(t0 - 2, 0)
        p.Yg = min(t1 + 2, Y) - p.yg0
    if gauss.shape[0] < C * S * p.Zg * p.Yg * X:
        raise ValueError(f"gauss must hold at least {C * S * p.Zg * p.Yg * X} floats")
    p.gauss = &gauss[0]
    p.rows = <float*>malloc(16 * X * sizeof(float))
    p.feats = <float*>malloc(p.F * X * sizeof(float))
    p.tmp = <float*>malloc(8 * p.F * sizeof(float))
    p.line = <float*>malloc((X + 2 * R) * sizeof(float))
    p.plane = <float*>malloc(Y * X * sizeof(float))
    p.need_y = <unsigned char*>malloc(Y)
    p.src = <const float**>malloc((2 * R + 1) * sizeof(float*))
    p.srcx = <const float**>malloc((2 * R + 1) * sizeof(float*))
    try:
        if (p.rows == NULL or p.feats == NULL or p.tmp == NULL or p.line == NULL or p.plane == NULL or p.need_y == NULL
                or p.src == NULL or p.srcx == NULL):
            raise MemoryError()
        with nogil:
            _tile(&p)
    finally:
        free(p.rows)
        free(p.feats)
        free(p.tmp)
        free(p.line)
        free(p.plane)
        free(p.need_y)
        free(<void*>p.src)
        free(<void*>p.srcx)
