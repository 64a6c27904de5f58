"""Extension list and compiler directives; every other setting lives in pyproject.toml.

Set ``FASTSEG_CYTHON_DEBUG=1`` to build with bounds and initialisation checks on.
"""
import os
from pathlib import Path

import numpy as np
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

# -fno-math-errno: no kernel reads errno, and without it sqrt cannot be vectorised
compile_args = ["-O0", "-g"] if DEBUG else ["-O3", "-fno-math-errno"]

# One extension per algorithm: every fastseg/_ext/*.pyx is built.
here = Path(__file__).parent
extensions = [
    Extension(
        f"fastseg._ext.{pyx.stem}",
        [str(pyx.relative_to(here))],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=compile_args,
    )
    for pyx in sorted((here / "fastseg" / "_ext").glob("*.pyx"))
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))
