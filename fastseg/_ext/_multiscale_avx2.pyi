# The same kernel as _multiscale, built with AVX2 and FMA (see _multiscale.pyx).
from ._multiscale import *
