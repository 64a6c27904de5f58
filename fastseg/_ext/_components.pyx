"""Connected components of binary masks: labelling, size filtering and hole filling.

The kernels work on *runs*: maximal horizontal segments of foreground pixels
in one row.  One scan of the mask extracts the runs of every row (uniform
8-byte blocks are skipped a word at a time), and a union-find over run indices
joins the runs of neighbouring rows that touch.  Everything after that scan
costs time in proportion to the number of runs, not pixels, except the final
write of the output row by row (contiguous ``memset`` / fills).

Union-find conventions: ``parent[i] <= i`` always holds and the root of a set is
its smallest index.  Runs are numbered in raster order of their first pixel,
so a component's root is its run met first in raster order; numbering the
roots in index order ("flattening") therefore gives exactly the raster-order
labels of ``scipy.ndimage.label``.

Hole filling labels the *background* runs the same way: the gaps between the
kept foreground runs of each row.  Node 0 is a virtual "outside" node that
every background run touching the image border joins; a background run whose
root is not 0 lies in a hole.

Nothing here is specific to two dimensions except the row loop: ``merge_rows``
joins the runs of any two neighbouring rows (``slack`` 0 for face neighbours,
1 when diagonal contacts count), so 3-D labelling would call it for the
neighbouring rows of the previous plane as well.

Compiler directives are set once, in setup.py.
"""
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.stdlib cimport qsort
from libc.string cimport memcpy, memset


# --------------------------------------------------------------------------- union-find

cdef inline int32_t uf_find(int32_t* parent, int32_t i) noexcept nogil:
    """Root of ``i``, halving the path on the way (keeps ``parent[i] <= i``)."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


cdef inline void uf_union(int32_t* parent, int32_t a, int32_t b) noexcept nogil:
    """Join the sets of ``a`` and ``b``; the smaller root becomes the root."""
    a = uf_find(parent, a)
    b = uf_find(parent, b)
    if a < b:
        parent[b] = a
    elif b < a:
        parent[a] = b


cdef int32_t uf_flatten(int32_t* parent, Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    """Replace ``parent[start:stop]`` by consecutive labels 1, 2, ... of the roots, in index order.

    Valid because ``parent[i] < i`` for every non-root ``i``: its parent has
    already been given its final label when ``i`` is reached.  Returns the
    number of sets.
    """
    cdef Py_ssize_t i
    cdef int32_t n = 0
    for i in range(start, stop):
        if parent[i] == i:
            n += 1
            parent[i] = n
        else:
            parent[i] = parent[parent[i]]
    return n


# --------------------------------------------------------------------------- runs

cdef Py_ssize_t find_runs(
    const unsigned char* row,      # IN  (W,) non-zero = foreground
    Py_ssize_t W,
    int32_t* runs,                 # OUT (start, stop) pairs, appended at pair index ``n``
    Py_ssize_t n,
) noexcept nogil:
    """Append the foreground runs of one row; returns the new number of runs.

    Blocks of 8 equal bytes (all 0, or all 1 inside a run) are skipped a word
    at a time; both tests are independent of byte order.
    """
    cdef Py_ssize_t x = 0, start
    cdef uint64_t w
    cdef uint64_t ones = 0x0101010101010101ULL
    while True:
        while x + 8 <= W:
            memcpy(&w, row + x, 8)
            if w != 0:
                break
            x += 8
        while x < W and row[x] == 0:
            x += 1
        if x >= W:
            return n
        start = x
        while x + 8 <= W:
            memcpy(&w, row + x, 8)
            if w != ones:
                break
            x += 8
        while x < W and row[x] != 0:
            x += 1
        runs[2 * n] = <int32_t>start
        runs[2 * n + 1] = <int32_t>x
        n += 1


cdef void merge_rows(
    const int32_t* runs,           # IN  (start, stop) pairs of all runs so far
    int32_t* parent,               # IN/OUT union-find over run indices
    Py_ssize_t p0, Py_ssize_t p1,  # runs of the previous row: [p0, p1)
    Py_ssize_t c0, Py_ssize_t c1,  # runs of the current row: [c0, c1)
    int32_t slack,                 # 0: runs must share a column; 1: diagonal contact counts too
) noexcept nogil:
    """Join every pair of runs of two neighbouring rows that touch (two-pointer sweep)."""
    cdef Py_ssize_t i = p0, j = c0
    while i < p1 and j < c1:
        if runs[2 * i + 1] + slack <= runs[2 * j]:
            i += 1
        elif runs[2 * j + 1] + slack <= runs[2 * i]:
            j += 1
        else:
            uf_union(parent, <int32_t>i, <int32_t>j)
            # The run that ends first cannot touch any later run of the other row.
            if runs[2 * i + 1] < runs[2 * j + 1]:
                i += 1
            else:
                j += 1


cdef Py_ssize_t label_runs(
    const unsigned char* mask,     # IN  (H, W) one slice
    Py_ssize_t H, Py_ssize_t W,
    int32_t slack,                 # 0 for connectivity 1, 1 for connectivity 2
    bint join,                     # False: only extract the runs (no union-find)
    int32_t* runs,                 # OUT (max_runs, 2) foreground runs
    int32_t* parent,               # OUT (max_runs,) union-find (roots: parent[i] == i)
    int32_t* rowptr,               # OUT (H + 1,) runs of row y are [rowptr[y], rowptr[y + 1])
) noexcept nogil:
    """Extract the foreground runs of a slice and join the touching ones; returns the run count."""
    cdef Py_ssize_t y, i, n = 0, prev = 0
    for y in range(H):
        rowptr[y] = <int32_t>n
        n = find_runs(mask + y * W, W, runs, n)
        for i in range(rowptr[y], n):
            parent[i] = <int32_t>i
        if join and y > 0:
            merge_rows(runs, parent, prev, rowptr[y], rowptr[y], n, slack)
        prev = rowptr[y]
    rowptr[H] = <int32_t>n
    return n


cdef void count_sizes(
    const int32_t* runs,           # IN  (n_runs, 2)
    const int32_t* labels,         # IN  (n_runs,) flattened labels 1..n_labels
    Py_ssize_t n_runs, int32_t n_labels,
    int32_t* sizes,                # OUT (n_labels + 1,) pixel count per label (sizes[0] = 0)
) noexcept nogil:
    cdef Py_ssize_t i
    memset(sizes, 0, (n_labels + 1) * sizeof(int32_t))
    for i in range(n_runs):
        sizes[labels[i]] += runs[2 * i + 1] - runs[2 * i]


cdef void sizes_to_keep(
    int32_t* sizes,                # IN/OUT (n_labels + 1,) pixel counts -> keep flags (1/0), in place
    int32_t n_labels,
    Py_ssize_t min_size, double min_relative_size,
) noexcept nogil:
    """Keep a component of at least ``min_size`` pixels and ``min_relative_size`` times the largest."""
    cdef int32_t lab, largest = 0
    for lab in range(1, n_labels + 1):
        if sizes[lab] > largest:
            largest = sizes[lab]
    for lab in range(1, n_labels + 1):
        sizes[lab] = sizes[lab] >= min_size and sizes[lab] >= min_relative_size * largest


# --------------------------------------------------------------------------- output writers

cdef void write_labels(
    const int32_t* runs, const int32_t* labels, const int32_t* rowptr,
    Py_ssize_t H, Py_ssize_t W,
    int32_t* out,                  # OUT (H, W) label image
) noexcept nogil:
    cdef Py_ssize_t y, i, x, s, e
    cdef int32_t* row
    cdef int32_t lab
    for y in range(H):
        row = out + y * W
        x = 0
        for i in range(rowptr[y], rowptr[y + 1]):
            s = runs[2 * i]
            e = runs[2 * i + 1]
            memset(row + x, 0, (s - x) * sizeof(int32_t))
            lab = labels[i]
            for x in range(s, e):
                row[x] = lab
            x = e
        memset(row + x, 0, (W - x) * sizeof(int32_t))


cdef void write_kept(
    const int32_t* runs, const int32_t* labels, const int32_t* keep, const int32_t* rowptr,
    Py_ssize_t H, Py_ssize_t W,
    unsigned char* out,            # OUT (H, W) 1 on kept runs, 0 elsewhere
) noexcept nogil:
    """Write the runs whose label is kept (``keep`` NULL: every run)."""
    cdef Py_ssize_t y, i, x, s, e
    cdef unsigned char* row
    for y in range(H):
        row = out + y * W
        x = 0
        for i in range(rowptr[y], rowptr[y + 1]):
            if keep != NULL and not keep[labels[i]]:
                continue
            s = runs[2 * i]
            e = runs[2 * i + 1]
            memset(row + x, 0, s - x)
            memset(row + s, 1, e - s)
            x = e
        memset(row + x, 0, W - x)


cdef void fill_and_write(
    const int32_t* runs, const int32_t* labels, const int32_t* keep, const int32_t* rowptr,
    Py_ssize_t H, Py_ssize_t W,
    int32_t bg_slack,              # 0: background 4-connected, 1: 8-connected
    int32_t* bg_runs,              # SCRATCH (max_bg_runs + 1, 2)
    int32_t* bg_parent,            # SCRATCH (max_bg_runs + 1,)
    int32_t* bg_rowptr,            # SCRATCH (H + 1,)
    unsigned char* out,            # OUT (H, W) kept foreground plus holes
) noexcept nogil:
    """Write the kept runs (``keep`` NULL: all) with every hole of their complement filled.

    The background runs of a row are the gaps between its kept runs; they are
    joined across rows like the foreground, and those touching the border join
    virtual node 0.  Gaps whose root is not 0 are holes and are written as 1.
    """
    cdef Py_ssize_t y, i, x, s, n = 1, first, prev = 0
    cdef unsigned char* row
    cdef unsigned char v
    bg_runs[0] = -1
    bg_runs[1] = -1
    bg_parent[0] = 0
    for y in range(H):
        first = n
        bg_rowptr[y] = <int32_t>n
        x = 0
        for i in range(rowptr[y], rowptr[y + 1]):
            if keep != NULL and not keep[labels[i]]:
                continue
            if runs[2 * i] > x:
                bg_runs[2 * n] = <int32_t>x
                bg_runs[2 * n + 1] = runs[2 * i]
                n += 1
            x = runs[2 * i + 1]
        if x < W:
            bg_runs[2 * n] = <int32_t>x
            bg_runs[2 * n + 1] = <int32_t>W
            n += 1
        for i in range(first, n):
            if y == 0 or y == H - 1 or bg_runs[2 * i] == 0 or bg_runs[2 * i + 1] == W:
                bg_parent[i] = 0
            else:
                bg_parent[i] = <int32_t>i
        if y > 0:
            merge_rows(bg_runs, bg_parent, prev, first, first, n, bg_slack)
        prev = first
    bg_rowptr[H] = <int32_t>n
    for y in range(H):
        row = out + y * W
        x = 0
        for i in range(bg_rowptr[y], bg_rowptr[y + 1]):
            s = bg_runs[2 * i]
            memset(row + x, 1, s - x)
            x = bg_runs[2 * i + 1]
            v = uf_find(bg_parent, <int32_t>i) != 0
            memset(row + s, v, x - s)
        memset(row + x, 1, W - x)


# --------------------------------------------------------------------------- scratch layout

cdef Py_ssize_t max_fg_runs(Py_ssize_t H, Py_ssize_t W) noexcept nogil:
    return H * ((W + 1) // 2)


cdef Py_ssize_t max_bg_runs(Py_ssize_t H, Py_ssize_t W) noexcept nogil:
    return H * (W // 2 + 1) + 1   # + virtual node 0


cdef Py_ssize_t scratch_len(Py_ssize_t H, Py_ssize_t W) noexcept nogil:
    return 4 * max_fg_runs(H, W) + 3 * max_bg_runs(H, W) + 2 * H + 3


def scratch_size(Py_ssize_t height, Py_ssize_t width):
    """Number of int32 scratch elements the kernels need for one slice of this size.

    Layout: foreground runs (2 R), parent / labels (R), row pointers (H + 1),
    sizes or keep flags (R + 1), background runs (2 B), background parents (B),
    background row pointers (H + 1), with R and B the largest possible numbers
    of foreground and background runs.
    """
    return scratch_len(height, width)


cdef int check_args(
    Py_ssize_t N, Py_ssize_t H, Py_ssize_t W, Py_ssize_t oN, Py_ssize_t oH, Py_ssize_t oW,
    Py_ssize_t n_scratch, int connectivity,
) except -1:
    """The O(1) facts memory safety depends on."""
    if (oN, oH, oW) != (N, H, W):
        raise ValueError(f"out must have shape {(N, H, W)}, got {(oN, oH, oW)}")
    if connectivity != 1 and connectivity != 2:
        raise ValueError(f"connectivity must be 1 or 2, got {connectivity}")
    if H >= (1 << 30) or W >= (1 << 30) or max_bg_runs(H, W) >= (1 << 31) - 1:
        raise ValueError(f"slices of {H}x{W} pixels are too large for int32 run indices")
    if n_scratch < scratch_len(H, W):
        raise ValueError(f"scratch must hold {scratch_len(H, W)} int32, got {n_scratch}")
    return 0


# --------------------------------------------------------------------------- kernels

def label_batch(
    const unsigned char[:, :, ::1] masks not None,   # IN      (N, H, W) non-zero = foreground
    int connectivity,
    int32_t[:, :, ::1] labels not None,              # OUT     (N, H, W) labels 0..n per slice
    Py_ssize_t[::1] counts not None,                 # OUT     (N,) number of components per slice
    int32_t[::1] scratch not None,                   # SCRATCH (>= scratch_size(H, W),)
):
    """Label the components of every slice, numbered 1..n in raster order of their first pixel."""
    cdef Py_ssize_t N = masks.shape[0], H = masks.shape[1], W = masks.shape[2], n, n_runs
    check_args(N, H, W, labels.shape[0], labels.shape[1], labels.shape[2], scratch.shape[0],
               connectivity)
    if counts.shape[0] != N:
        raise ValueError(f"counts must have shape {(N,)}, got {(counts.shape[0],)}")
    if N * H * W == 0:
        return
    cdef Py_ssize_t R = max_fg_runs(H, W)
    cdef int32_t* runs = &scratch[0]
    cdef int32_t* parent = runs + 2 * R
    cdef int32_t* rowptr = parent + R
    with nogil:
        for n in range(N):
            n_runs = label_runs(&masks[n, 0, 0], H, W, connectivity - 1, True, runs, parent, rowptr)
            counts[n] = uf_flatten(parent, 0, n_runs)
            write_labels(runs, parent, rowptr, H, W, &labels[n, 0, 0])


def clean_batch(
    const unsigned char[:, :, ::1] masks not None,   # IN      (N, H, W) non-zero = foreground
    Py_ssize_t min_size,
    double min_relative_size,
    int connectivity,
    bint fill,
    int hole_connectivity,
    unsigned char[:, :, ::1] out not None,           # OUT     (N, H, W) 0/1
    int32_t[::1] scratch not None,                   # SCRATCH (>= scratch_size(H, W),)
):
    """Remove the components (``connectivity``) of fewer than ``min_size`` pixels or than
    ``min_relative_size`` times the slice's largest component, then, if ``fill``, fill the
    holes (background regions, ``hole_connectivity``, not touching the border).

    ``min_size <= 1`` with ``min_relative_size <= 0`` keeps every component (no
    foreground union-find is done); ``fill=False`` only filters.
    """
    cdef Py_ssize_t N = masks.shape[0], H = masks.shape[1], W = masks.shape[2], n, n_runs
    cdef int32_t n_labels
    check_args(N, H, W, out.shape[0], out.shape[1], out.shape[2], scratch.shape[0], connectivity)
    if not 0.0 <= min_relative_size <= 1.0:
        raise ValueError(f"min_relative_size must be in [0, 1], got {min_relative_size}")
    if hole_connectivity != 1 and hole_connectivity != 2:
        raise ValueError(f"hole_connectivity must be 1 or 2, got {hole_connectivity}")
    if N * H * W == 0:
        return
    cdef bint filter_sizes = min_size > 1 or min_relative_size > 0.0
    cdef Py_ssize_t R = max_fg_runs(H, W), B = max_bg_runs(H, W)
    cdef int32_t* runs = &scratch[0]
    cdef int32_t* parent = runs + 2 * R
    cdef int32_t* rowptr = parent + R
    cdef int32_t* sizes = rowptr + H + 1
    cdef int32_t* bg_runs = sizes + R + 1
    cdef int32_t* bg_parent = bg_runs + 2 * B
    cdef int32_t* bg_rowptr = bg_parent + B
    cdef int32_t* keep = NULL
    with nogil:
        for n in range(N):
            n_runs = label_runs(&masks[n, 0, 0], H, W, connectivity - 1, filter_sizes,
                                runs, parent, rowptr)
            keep = NULL
            if filter_sizes:
                n_labels = uf_flatten(parent, 0, n_runs)
                count_sizes(runs, parent, n_runs, n_labels, sizes)
                sizes_to_keep(sizes, n_labels, min_size, min_relative_size)
                keep = sizes
            if fill:
                fill_and_write(runs, parent, keep, rowptr, H, W, hole_connectivity - 1,
                               bg_runs, bg_parent, bg_rowptr, &out[n, 0, 0])
            else:
                write_kept(runs, parent, keep, rowptr, H, W, &out[n, 0, 0])


cdef int compare_keys(const void* a, const void* b) noexcept nogil:
    cdef int64_t ka = (<const int64_t*>a)[0], kb = (<const int64_t*>b)[0]
    return (ka > kb) - (ka < kb)


def keep_largest_batch(
    const unsigned char[:, :, ::1] masks not None,   # IN      (N, H, W) non-zero = foreground
    Py_ssize_t n_keep,
    int connectivity,
    unsigned char[:, :, ::1] out not None,           # OUT     (N, H, W) 0/1
    int32_t[::1] scratch not None,                   # SCRATCH (>= scratch_size(H, W),)
    int64_t[::1] keys not None,                      # SCRATCH (>= max number of components + 1,)
):
    """Keep the ``n_keep`` largest components of each slice (ties: lower label first)."""
    cdef Py_ssize_t N = masks.shape[0], H = masks.shape[1], W = masks.shape[2], n, n_runs, i
    cdef int32_t n_labels, lab
    cdef int64_t low32 = 0xFFFFFFFF
    check_args(N, H, W, out.shape[0], out.shape[1], out.shape[2], scratch.shape[0], connectivity)
    if n_keep < 0:
        raise ValueError(f"n must be >= 0, got {n_keep}")
    cdef Py_ssize_t R = max_fg_runs(H, W)
    if keys.shape[0] < R + 1:
        raise ValueError(f"keys must hold {R + 1} int64, got {keys.shape[0]}")
    if N * H * W == 0:
        return
    cdef int32_t* runs = &scratch[0]
    cdef int32_t* parent = runs + 2 * R
    cdef int32_t* rowptr = parent + R
    cdef int32_t* sizes = rowptr + H + 1
    with nogil:
        for n in range(N):
            n_runs = label_runs(&masks[n, 0, 0], H, W, connectivity - 1, True, runs, parent, rowptr)
            n_labels = uf_flatten(parent, 0, n_runs)
            count_sizes(runs, parent, n_runs, n_labels, sizes)
            if n_keep < n_labels:
                # Ascending keys: larger size first, then lower label.
                for lab in range(1, n_labels + 1):
                    keys[lab - 1] = -(<int64_t>sizes[lab]) * (<int64_t>1 << 32) + lab
                qsort(&keys[0], n_labels, sizeof(int64_t), compare_keys)
                memset(sizes, 0, (n_labels + 1) * sizeof(int32_t))
                for i in range(n_keep):
                    sizes[<int32_t>(keys[i] & low32)] = 1
            else:
                for lab in range(1, n_labels + 1):
                    sizes[lab] = 1
            write_kept(runs, parent, sizes, rowptr, H, W, &out[n, 0, 0])


# --------------------------------------------------------------------------- 3-D: a whole volume

def volume_scratch_size(Py_ssize_t depth, Py_ssize_t height, Py_ssize_t width):
    """Number of int32 scratch elements :func:`clean_volume` needs for a (depth, height, width) volume.

    Layout: foreground runs (2 R), parent / labels (R), row pointers (D H + 1), sizes or keep flags
    (R + 1), with R = D H ceil(W / 2) the largest possible number of runs.
    """
    return 4 * max_fg_runs(depth * height, width) + depth * height + 2


def clean_volume(
    const unsigned char[:, :, ::1] mask not None,   # IN      (D, H, W) non-zero = foreground
    double min_relative_size,                       #         keep components >= this fraction of the largest
    unsigned char[:, :, ::1] out not None,          # OUT     (D, H, W) 1 on kept voxels, 0 elsewhere
    int32_t[::1] scratch not None,                  # SCRATCH volume_scratch_size(D, H, W) elements
):
    """Remove the 26-connected 3-D components smaller than ``min_relative_size`` times the largest.

    The volume is D H rows of W voxels: each row's runs are joined with the touching runs (one column
    of diagonal slack) of the rows above it in the same slice and the three around it in the slice
    before (y - 1, y, y + 1), which is 26-connectivity; then the component sizes are counted and the
    runs of the kept components written.  Returns the number of components.
    """
    cdef Py_ssize_t D = mask.shape[0], H = mask.shape[1], W = mask.shape[2]
    cdef Py_ssize_t R = D * H, z, y, r, q, i, n = 0, dy
    cdef Py_ssize_t runs_max = max_fg_runs(R, W)
    cdef int32_t n_labels
    cdef int32_t* runs
    cdef int32_t* parent
    cdef int32_t* rowptr
    cdef int32_t* sizes
    if not 0.0 <= min_relative_size <= 1.0:
        raise ValueError(f"min_relative_size must be a number in [0, 1], got {min_relative_size}")
    if out.shape[0] != D or out.shape[1] != H or out.shape[2] != W:
        raise ValueError(f"out must have shape {(D, H, W)}, got {tuple(out.shape)[:3]}")
    if D * H * W > 2147483647:
        raise ValueError(f"mask has {D * H * W} voxels; at most 2**31 - 1 fit the int32 component sizes")
    if scratch.shape[0] < 4 * runs_max + R + 2:
        raise ValueError(f"scratch must hold at least {4 * runs_max + R + 2} int32 elements, "
                         f"got {scratch.shape[0]}")
    if D * H * W == 0:
        return 0
    runs = &scratch[0]
    parent = runs + 2 * runs_max
    rowptr = parent + runs_max
    sizes = rowptr + R + 1
    with nogil:
        for z in range(D):
            for y in range(H):
                r = z * H + y
                rowptr[r] = <int32_t>n
                n = find_runs(&mask[z, y, 0], W, runs, n)
                for i in range(rowptr[r], n):
                    parent[i] = <int32_t>i
                if y > 0:  # the row above, in this slice
                    merge_rows(runs, parent, rowptr[r - 1], rowptr[r], rowptr[r], n, 1)
                if z > 0:  # rows y - 1, y and y + 1 of the slice before (all complete)
                    for dy in range(-1, 2):
                        if 0 <= y + dy < H:
                            q = r - H + dy
                            merge_rows(runs, parent, rowptr[q], rowptr[q + 1], rowptr[r], n, 1)
        rowptr[R] = <int32_t>n
        n_labels = uf_flatten(parent, 0, n)
        count_sizes(runs, parent, n, n_labels, sizes)
        sizes_to_keep(sizes, n_labels, 0, min_relative_size)
        write_kept(runs, parent, sizes, rowptr, R, W, &out[0, 0, 0])
    return n_labels
