# The same kernels as _pixfeat, built with AVX2 (see _pixfeat.pyx).
from ._pixfeat import *
