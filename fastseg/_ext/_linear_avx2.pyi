# The same kernels as _linear, built with AVX2 and FMA (see _linear.pyx).
from ._linear import *
