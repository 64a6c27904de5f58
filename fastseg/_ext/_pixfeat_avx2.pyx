"""The pixel-feature kernels of ``_pixfeat``, compiled with AVX2 and FMA enabled (x86-64 with GCC or
Clang; elsewhere the same code as ``_pixfeat``).  ``fastseg._ext.for_this_cpu`` loads this module when
the CPU runs both: the same results (no multiply-add fused, no reassociation), a few per cent faster
because the compiler vectorises the kernel's loops with wider registers.

Compiler directives are set once, in setup.py.
"""

include "_pixfeat.pxi"
