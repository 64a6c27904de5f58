"""The fused linear scoring kernels of ``_linear``, compiled with AVX2 and FMA (x86-64 with GCC or
Clang; elsewhere the same code as ``_linear``): the interleaved kernel, and the planar one with fused
multiply-adds.  ``fastseg._ext.for_this_cpu`` loads it on a CPU that runs both instruction sets.

Compiler directives are set once, in setup.py.
"""

include "_linear.pxi"
