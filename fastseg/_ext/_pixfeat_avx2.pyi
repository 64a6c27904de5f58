# The same kernels as _pixfeat, built with AVX2 and FMA (see _pixfeat.pyx).
from ._pixfeat import *
