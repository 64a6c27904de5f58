"""fastseg: fast classical per-pixel segmentation of multichannel images.

Cython kernels for neighbourhood features, fused model scoring and connected
components, under a numpy / scikit-learn API.
"""
from ._version import __version__
from .features import feature_offsets, n_window_features, window_features

__all__ = [
    "__version__",
    "feature_offsets",
    "n_window_features",
    "window_features",
]
