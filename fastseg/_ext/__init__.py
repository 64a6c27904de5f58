"""The compiled kernels.

A module whose loops gain from wider vectors is built twice from one source (setup.py): ``name``
for the platform's baseline and ``name_avx2`` with AVX2 and FMA (x86-64).  That is the one way
fastseg adapts to the CPU: :func:`for_this_cpu` loads the build the CPU runs, once, at import.
"""
import os
from importlib import import_module
from types import ModuleType


def for_this_cpu(name: str) -> ModuleType:
    """The kernel module ``name`` (e.g. ``"_linear"``) built for this CPU: its ``_avx2`` twin when the
    CPU runs AVX2 and FMA, else the baseline build.  The environment variable
    ``FASTSEG_DISABLE_AVX2=1`` (set before importing fastseg) keeps the baseline builds."""
    baseline = import_module(f"{__name__}.{name}")
    if os.environ.get("FASTSEG_DISABLE_AVX2", "0") == "1" or not baseline.cpu_has_avx2_fma():
        return baseline
    try:
        return import_module(f"{__name__}.{name}_avx2")
    except ImportError:  # an install without the twin: the baseline build does the same work
        return baseline
