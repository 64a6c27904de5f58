"""Neighbourhood features: fastseg's gather kernel beside the numpy code a user writes today.

Run:  pytest benchmarks/bench_features.py --benchmark-columns=median,iqr,rounds
Each group holds fastseg and its baseline, measured in the same run.
"""
from __future__ import annotations

import pytest

import fastseg
from fastseg._baselines import numpy_window_features


@pytest.mark.parametrize("k", [3, 5, 7])
@pytest.mark.parametrize("impl", ["fastseg", "numpy"])
def test_dense(benchmark, slice_240, k, impl):
    benchmark.group = f"features-dense-k{k}"
    if impl == "fastseg":
        X = benchmark(fastseg.window_features, slice_240, k)
    else:
        X = benchmark(numpy_window_features, slice_240, k)
    assert X.shape == (240 * 240, k * k * 4)


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("impl", ["fastseg", "numpy"])
def test_masked(benchmark, slice_240, mask_240_40pct, k, impl):
    benchmark.group = f"features-masked40-k{k}"
    mask = mask_240_40pct
    if impl == "fastseg":
        X = benchmark(fastseg.window_features, slice_240, k, mask=mask)
    else:
        X = benchmark(lambda: numpy_window_features(slice_240, k)[mask.ravel()])
    assert X.shape == (int(mask.sum()), k * k * 4)
