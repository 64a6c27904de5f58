"""The multiscale filter-bank kernel of ``_multiscale``, compiled with AVX2 and FMA enabled (x86-64 with
GCC or Clang; elsewhere the same code as ``_multiscale``).  ``fastseg._ext.for_this_cpu`` loads this
module when the CPU runs both: the same results (no multiply-add fused, no reassociation), faster
because the compiler vectorises the row loops with wider registers.

Compiler directives are set once, in setup.py.
"""

include "_multiscale.pxi"
