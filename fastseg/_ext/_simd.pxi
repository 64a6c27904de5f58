# Included by every kernel module that is built twice (its baseline build and its ``_avx2`` twin, see
# setup.py): the question fastseg._ext.for_this_cpu asks the baseline build before loading the twin.

cdef extern from "_simd.h":
    int fs_cpu_has_avx2() noexcept nogil
    int fs_cpu_has_avx2_fma() noexcept nogil


def cpu_has_avx2_fma():
    """Whether this CPU runs AVX2 and FMA instructions, which the ``_avx2`` build of this module
    needs (False where that cannot be asked)."""
    return fs_cpu_has_avx2_fma() != 0
