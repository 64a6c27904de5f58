"""fastseg: fast classical per-pixel segmentation of multichannel images.

Cython kernels for neighbourhood features, fused model scoring and connected
components, under a numpy / scikit-learn API.
"""
from ._version import __version__
from .components import clean_mask, fill_holes, keep_largest, label, remove_small_components
from .features import feature_offsets, n_window_features, window_features
from .metrics import dice, segmentation_report
from .model_selection import cross_validate
from .persistence import load, save
from .preprocessing import brain_mask, normalize_brain
from .scoring import MLPWeights, linear_scores, mlp_scores
from .segmenter import PixelSegmenter

__all__ = [
    "__version__",
    "MLPWeights",
    "PixelSegmenter",
    "cross_validate",
    "load",
    "save",
    "brain_mask",
    "dice",
    "normalize_brain",
    "segmentation_report",
    "clean_mask",
    "feature_offsets",
    "fill_holes",
    "keep_largest",
    "label",
    "linear_scores",
    "mlp_scores",
    "n_window_features",
    "remove_small_components",
    "window_features",
]
