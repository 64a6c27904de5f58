"""Extension list and compiler directives; every other setting lives in pyproject.toml.

Set ``FASTSEG_CYTHON_DEBUG=1`` to build with bounds and initialisation checks on, and
``FASTSEG_NO_AVX2=1`` to build the ``*_avx2`` modules without AVX2 and FMA (like the others).
"""
import os
import platform
import sys
from pathlib import Path

import numpy as np
from Cython import Tempita
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("FASTSEG_CYTHON_DEBUG", "0") == "1"

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": False,
    "initializedcheck": DEBUG,
    "nonecheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}

# -fno-math-errno: no kernel reads errno, and without it sqrt cannot be vectorised.
# -ffp-contract=off: no multiply and add is fused unless the source says so, so a build with FMA
# instructions available gives the same bits as one without (only _linear.h writes FMAs).
compile_args = (["-O0", "-g"] if DEBUG else ["-O3", "-fno-math-errno"]) + ["-ffp-contract=off"]

# The one CPU-dispatch mechanism: an ``*_avx2`` module is its algorithm (an include of the baseline
# module's .pxi) built again with AVX2 and FMA enabled, instruction sets both x86-64 vendors' CPUs
# of the last decade have; fastseg._ext.for_this_cpu loads it on a CPU that runs them (x86-64 with GCC or
# Clang; elsewhere it is built like the others and never chosen).  No AVX-512 and no -march=native:
# the build runs on any x86-64, and each build on every CPU that has its instruction sets.
AVX2 = (platform.machine().lower() in ("x86_64", "amd64") and sys.platform != "win32"
        and os.environ.get("FASTSEG_NO_AVX2", "0") != "1")


def flags(stem: str) -> list:
    return compile_args + (["-mavx2", "-mfma"] if stem.endswith("_avx2") and AVX2 else [])


here = Path(__file__).parent


def expand_templates() -> None:
    """Expand every fastseg/_ext/*.tp Tempita template (X.pxi.tp -> X.pxi), as scikit-learn and SciPy
    generate their specialised kernels; a file is rewritten only when its text changes, so an unchanged
    template triggers no rebuild.  The outputs are build products (fastseg/_ext/.gitignore)."""
    for template in sorted((here / "fastseg" / "_ext").glob("*.tp")):
        text = Tempita.Template(template.read_text(), name=template.name).substitute()
        target = template.with_suffix("")
        if not target.exists() or target.read_text() != text:
            target.write_text(text)


expand_templates()

# One extension per algorithm: every fastseg/_ext/*.pyx is built.
extensions = [
    Extension(
        f"fastseg._ext.{pyx.stem}",
        [str(pyx.relative_to(here))],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=flags(pyx.stem),
    )
    for pyx in sorted((here / "fastseg" / "_ext").glob("*.pyx"))
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))
