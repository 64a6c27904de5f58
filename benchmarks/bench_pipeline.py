"""End-to-end prediction on 256 real slices: PixelSegmenter.predict beside the same pipeline in numpy.

The baseline is what a user writes without fastseg, step for step the same:
per-slice brain normalisation, ``np.pad`` + ``sliding_window_view`` window
features of the brain pixels, the fitted scikit-learn pipeline's
``decision_function``, threshold, and scipy post-processing (``label``,
``bincount`` size filters, ``binary_fill_holes``).  Both get the shipped brain
masks.  The slices are the 20 real BraTS slices of ``../shared/data/brats2d``
repeated to 256.

Run:  pytest benchmarks/bench_pipeline.py --benchmark-columns=median,iqr,rounds
"""
from __future__ import annotations

import pytest
from fastseg import PixelSegmenter
from fastseg._baselines import numpy_predict


@pytest.fixture(scope="module")
def data(brats):
    """The real slices and the 256-slice batch (``conftest.brats``, shared with bench_scaling.py)."""
    return brats


@pytest.mark.parametrize("impl", ["fastseg", "numpy"])
def test_predict_256_linear_k5(benchmark, data, linear_k5, impl):
    benchmark.group = "pipeline-predict-256-linear-k5"
    _, _, _, images, brain = data
    if impl == "fastseg":
        masks = benchmark(linear_k5.predict, images, brain)
    else:
        masks = benchmark.pedantic(numpy_predict, args=(linear_k5, images, brain), rounds=3, iterations=1)
    assert masks.shape == brain.shape
    # the two pipelines agree (float32 fused scores vs float64 features: a pixel may flip at the threshold)
    reference = numpy_predict(linear_k5, images[:20], brain[:20])
    assert (linear_k5.predict(images[:20], brain[:20]) == reference).mean() > 0.999


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_predict_256_default(benchmark, data, n_jobs):
    """The default configuration (MLP over the k=3 window + context features): slices per second, 1 and 2 threads."""
    benchmark.group = "pipeline-predict-256-default"
    x, y, b, images, brain = data
    seg = PixelSegmenter(random_state=0, n_jobs=n_jobs).fit(x[:17], y[:17], b[:17])
    masks = benchmark(seg.predict, images, brain)
    assert masks.shape == brain.shape
