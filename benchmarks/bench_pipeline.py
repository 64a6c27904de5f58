"""End-to-end prediction on 256 real slices: PixelSegmenter.predict beside the same pipeline in numpy.

The baseline is what a user writes without fastseg, step for step the same:
per-slice brain normalisation, ``np.pad`` + ``sliding_window_view`` window
features of the brain pixels (the default's context features from scipy's
filters, ``fastseg._reference.pixel_features``), the fitted scikit-learn
pipeline's ``decision_function`` or ``predict_proba``, threshold, and scipy
post-processing (``label``, ``bincount`` size filters, ``binary_fill_holes``).  Both get the shipped brain
masks.  The slices are the 20 real BraTS slices of ``../shared/data/brats2d``
repeated to 256.

Run:  pytest benchmarks/bench_pipeline.py --benchmark-columns=median,iqr,rounds
"""
from __future__ import annotations

import pytest
from fastseg import PixelSegmenter
from fastseg._baselines import numpy_predict, numpy_predict_context


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


@pytest.fixture(scope="module")
def default_seg(data):
    x, y, b, _, _ = data
    return PixelSegmenter(random_state=0).fit(x[:17], y[:17], b[:17])


@pytest.mark.parametrize("impl", ["fastseg-1-thread", "fastseg-2-threads", "numpy"])
def test_predict_256_default(benchmark, data, default_seg, impl):
    """The default configuration (MLP over the k=3 window + context features): slices per second with 1
    and 2 threads, and the same pipeline in numpy + scipy + scikit-learn (one thread, 3 rounds)."""
    from threadpoolctl import threadpool_limits

    benchmark.group = "pipeline-predict-256-default"
    _, _, _, images, brain = data
    seg = default_seg.set_params(n_jobs=2 if impl == "fastseg-2-threads" else 1)
    if impl == "numpy":
        with threadpool_limits(1):
            masks = benchmark.pedantic(numpy_predict_context, args=(seg, images, brain), rounds=3, iterations=1)
    else:
        masks = benchmark(seg.predict, images, brain)
    assert masks.shape == brain.shape
    # the two pipelines agree (float32 rows vs float64 scipy filters: a pixel may flip at the threshold)
    reference = numpy_predict_context(seg, images[:20], brain[:20])
    assert (seg.predict(images[:20], brain[:20]) == reference).mean() > 0.999
