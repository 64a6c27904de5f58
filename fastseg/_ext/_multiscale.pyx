"""Multiscale filter banks: per scale, a Gaussian shared by intensity, Sobel edges and Hessian texture.

One call (``tile_features``) computes a tile of the outer axis (z in 3-D, y in 2-D) for every
channel and scale, so the caller's threads run over tiles, each with its own scratch for the
tile's Gaussians (and two rows or planes around it).  The Gaussian is separable: passes along z
(3-D), y and x, in scipy.ndimage's order and with its kernel (truncated at 4 sigma, border
'nearest'), each pass rounded to float32; every pass adds whole rows (the pass along a row runs
over a padded copy), blocks of outputs kept in registers (``_multiscale.h``), so every inner loop is
contiguous and vectorised.  Only the image rows the requested pixels' features read are filtered,
and in 2-D only the columns they read (a mask restricts the work to its rows, columns and their
neighbours).  The features are then made row by row from the Gaussians and written pixel by pixel
(each output line once):

- intensity: the Gaussian itself;
- edges: the Sobel magnitude, sqrt(sum over axes of the squared response / ndim), the difference
  ``f[i + 1] - f[i - 1]`` along one axis and the smoothing ``(1, 2, 1) / 4`` along the others,
  border reflected (skimage.filters.sobel);
- texture: the eigenvalues, decreasing, of the Hessian built by numpy.gradient of numpy.gradient
  (central differences, one-sided at the ends), in float32 in closed form for 2x2 and in float64 by
  the trigonometric closed form for 3x3 (skimage.feature.hessian_matrix_eigvals's values).

The code lives in ``_multiscale.pxi``; ``_multiscale_avx2`` is the same code built with AVX2 and FMA
(no multiply and add fused, so the same bits), which ``fastseg._ext.for_this_cpu`` loads where the
CPU runs them.

Compiler directives are set once, in setup.py.
"""

include "_multiscale.pxi"
