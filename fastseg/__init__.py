"""fastseg: fast classical per-pixel segmentation of multichannel images.

Cython kernels for neighbourhood features, fused model scoring and connected
components, under a numpy / scikit-learn API.

The names below are imported on first use (PEP 562), so that ``import fastseg``
and the ``fastseg`` command stay fast: the command's predict path never needs
scikit-learn, whose import alone takes about a second.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._version import __version__

#: Public name -> the submodule that defines it.
_EXPORTS = {
    "MLPWeights": "scoring",
    "PixelModel": "model",
    "PixelSegmenter": "segmenter",
    "RegionSegmenter": "regions",
    "cross_validate_regions": "regions",
    "cross_validate": "model_selection",
    "tune_threshold": "model_selection",
    "load": "persistence",
    "save": "persistence",
    "brain_mask": "preprocessing",
    "dice": "metrics",
    "normalize_brain": "preprocessing",
    "segmentation_report": "metrics",
    "clean_mask": "components",
    "feature_offsets": "features",
    "fill_holes": "components",
    "keep_largest": "components",
    "label": "components",
    "linear_scores": "scoring",
    "mlp_scores": "scoring",
    "n_window_features": "features",
    "remove_small_components": "components",
    "window_features": "features",
    "multiscale_features": "features",
    "TrainableSegmenter": "trainable",
    "fit_segmenter": "trainable",
    "predict_segmenter": "trainable",
    "load_segmenter": "trainable",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fastseg' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # imported once
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what type checkers and IDEs see
    from .components import clean_mask, fill_holes, keep_largest, label, remove_small_components
    from .features import feature_offsets, multiscale_features, n_window_features, window_features
    from .metrics import dice, segmentation_report
    from .model import PixelModel
    from .model_selection import cross_validate, tune_threshold
    from .persistence import load, save
    from .preprocessing import brain_mask, normalize_brain
    from .scoring import MLPWeights, linear_scores, mlp_scores
    from .segmenter import PixelSegmenter
    from .trainable import TrainableSegmenter, fit_segmenter, load_segmenter, predict_segmenter
