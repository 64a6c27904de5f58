"""Fused linear scoring: a k x k x C correlation of each image with the model's weights.

A linear model over window features scores pixel ``(y, x)`` as
``b + sum_{dy, dx, c} w[dy, dx, c] * padded[y + dy, x + dx, c]``: every tap
adds a weighted, contiguous run of the padded image to a block of outputs held
in vector registers, so the only memory traffic is reading padded rows.  Two
layouts feed that loop:

- **interleaved** (four channels, AVX2+FMA build, ``W >= 16``): the image padded as is
  (``_padded.pad_image``, a row copy).  An 8-float vector holds two pixels x
  four channels, so tap ``(dy, dx)`` is one FMA per vector with the weights
  ``w[dy, dx, 0:4]`` repeated twice; at the end of a block the four channel
  partial sums of each pixel are added with two horizontal adds.  No
  transposition is needed at all.
- **planar** (any C, any CPU): a band of rows is padded into channel planes
  (``_padded.pad_rows_planar``), and tap ``(dy, dx, c)`` multiplies one
  channel's row by a scalar weight.

The inner loops are C (``_linear.h``): the interleaved one with AVX2 and FMA
intrinsics, the planar one with GCC/Clang vector extensions (other compilers get
plain scalar loops).  The code (``_linear.pxi``) is built twice: this module for
the platform's baseline, which has only the planar kernel, and ``_linear_avx2``
with AVX2 and FMA (x86-64), which has both and whose planar loop accumulates with
fused multiply-adds; ``fastseg._ext.for_this_cpu`` picks the build the CPU runs,
so the extension stays portable (no ``-march=native``).

Both kernels report how many images produced a non-finite score: every input
value enters at least its own pixel's score (``0 * NaN`` and ``0 * inf`` are
NaN), so when every pixel is scored this detects NaN or infinite inputs without
a separate pass.

Compiler directives are set once, in setup.py.
"""
include "_linear.pxi"
