"""Pixel features (the default's feature families): fastseg's kernel beside the scipy code a user writes today.

Run:  pytest benchmarks/bench_pixel_features.py --benchmark-columns=median,iqr,rounds

One real, brain-normalised BraTS slice; the rows of its brain pixels (about 16,000). The baseline
(``fastseg._reference.pixel_features``) filters the whole image with ``scipy.ndimage``
(``uniform_filter``, ``correlate``) in float64 and then takes the brain pixels' rows: what a user
would write without fastseg. Each group holds both, measured in the same run, and checks they agree.
"""
from __future__ import annotations

import numpy as np
import pytest

from fastseg import _reference as ref
from fastseg import normalize_brain
from fastseg.features import pixel_features

NONE = dict(std_sizes=(), asymmetry=False, gradient_size=0, position=False)

#: group name -> (k, families)
FAMILIES = {
    "window-k3": (3, NONE),
    "std-7-15": (1, dict(NONE, std_sizes=(7, 15))),
    "asymmetry": (1, dict(NONE, asymmetry=True)),
    "gradient-5": (1, dict(NONE, gradient_size=5)),
    "position": (1, dict(NONE, position=True)),
    "default": (3, {}),  # all of the above: PixelSegmenter's features
}


@pytest.fixture(scope="module")
def brain_slice(brats):
    x, _, b, _, _ = brats
    return normalize_brain(x[:1], b[:1]), b[:1]


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("impl", ["fastseg", "scipy"])
def test_pixel_features(benchmark, brain_slice, family, impl):
    benchmark.group = f"pixel-features-{family}"
    x, b = brain_slice
    k, kwargs = FAMILIES[family]
    if impl == "fastseg":
        X = benchmark(pixel_features, x, b, k, **kwargs)
    else:
        X = benchmark(ref.pixel_features, x, b, k, **kwargs)
    np.testing.assert_allclose(X, pixel_features(x, b, k, **kwargs), rtol=1e-5, atol=1e-4)
    assert X.shape[0] == int(b.sum())
