"""Per-pixel context features, written only for the requested pixels.

For each image the kernel builds the integral images it needs (float64, scratch
owned by the caller): of the image (local means), of its square (local standard
deviations), of its left-right asymmetry (mean asymmetry) and of the brain mask
(position).  The first three are made a row at a time, just before the first
image row whose boxes reach it, into rings of 2 r + 2 rows (r the largest half
box that reads them): three whole float64 integral images of a brain would not
fit in a core's cache beside the slice, the rows one image row reads do.  Every
box statistic is then four reads per channel, so the cost per requested pixel is
independent of the box sizes, and nothing of the size of (pixels x features)
exists except the output rows.  The reads are made row by
row: for the span of requested pixels in a row, each box family is one
contiguous loop over the span (which the compiler vectorises), into a small
row buffer from which each requested pixel's row is copied.

Row layout (columns, in order; C channels):

    window       k k C                the k x k window of every channel, (dy, dx, c) with c
                                      fastest (k = 1: the pixel itself; k = 0: none),
                                      borders by the ``rowmap`` / ``colmap`` of
                                      ``fastseg.features.pad_index`` (-1: zero)
    means        C per mean size      s x s box mean, zero outside the image
    stds         C per std size       s x s box standard deviation, zero outside
    asymmetry    C, then C            x - x[mirror column] at brain pixels (0 elsewhere);
                                      its box mean
    gradient     C                    box-gradient magnitude at size s: the difference
                                      of the s x r boxes right and left of the pixel
                                      (below and above), / (s r), r = s // 2, zero outside
    position     2 + len(boxes)       row in the brain's bounding box (0 top, 1
                                      bottom); |column in the box - 0.5|; the
                                      brain's share of each s x s box

The code lives in ``_pixfeat.pxi``: each ``def`` checks its arguments and fills a
plan struct once, then small ``noexcept nogil`` steps do the work, one per feature
family, one for the integral rows, one for the window copies.  The steps are
written once, in the Tempita template ``_pixfeat_kernels.pxi.tp``, which setup.py
expands with the sizes of MRI slices as literals (k = 3, C = 4; C = 4 with any k)
and once for any k and C: the same arithmetic in the same order, so the same bits.
It is built twice: this module for the baseline of the platform, and
``_pixfeat_avx2`` with AVX2 and FMA (x86-64), which ``fastseg._ext.for_this_cpu``
loads where the CPU runs them.  No multiply and add is fused (-ffp-contract=off)
and nothing is built with reassociating flags, so both give the same bits.

Compiler directives are set once, in setup.py.
"""

include "_pixfeat.pxi"
