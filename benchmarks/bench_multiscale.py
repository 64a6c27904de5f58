"""Multiscale filter banks: fastseg's ``multiscale_features`` beside scikit-image's
``multiscale_basic_features`` (the call it replaces), same arguments, same run.

Groups (default parameters: sigma 0.5 to 16, six scales, intensity, edges and texture):

- ``multiscale-240x240x4``: one MRI slice, 4 channels (96 features);
- ``multiscale-1024x1024x3``: a large RGB-sized image (72 features);
- ``multiscale-3d-155x240x240``: one channel of a BraTS volume (30 features): the FLAIR of the
  first case under ``../shared/data/brats_volumes`` (nibabel), else deterministic noise;
- ``multiscale-240x240x4-brain``: the same slice's brain pixels only (fastseg's ``mask``; scikit-
  image computes every pixel and the brain rows are taken from it);
- ``multiscale-240x240x4-real-brain``: sample slices (``fastseg.datasets.load_sample``) with their
  real brain masks, fastseg only; ``extra_info`` adds ``masked_share`` and ``masked_over_dense``,
  the masked call's median time over the dense call's, measured in the same run.

``impl``: ``skimage-1`` / ``skimage-all`` (``workers=1`` / every core), ``fastseg-1`` / ``fastseg-2``
(one / two threads).  ``extra_info`` holds ``peak_mb``, the peak of numpy allocations during one
call (tracemalloc, output included), and ``output_mb``.  The 3-D runs and the 1024x1024x3
scikit-image runs take seconds to minutes per call: a few rounds (one for 3-D scikit-image), and
skipped under ``--benchmark-disable`` (CI's smoke run).

Run:  pytest benchmarks/bench_multiscale.py --benchmark-only --benchmark-columns=median,iqr,rounds
"""
from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from fastseg.features import multiscale_features

VOLUMES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "brats_volumes"
IMPLS = ["skimage-1", "skimage-all", "fastseg-1", "fastseg-2"]


def _skimage():
    return pytest.importorskip("skimage.feature").multiscale_basic_features


def _call(impl: str, image, channel_axis, mask=None):
    """The call an ``impl`` makes (skimage computes every pixel; the masked rows are taken from it)."""
    if impl.startswith("skimage"):
        func = _skimage()
        workers = 1 if impl == "skimage-1" else None
        if mask is None:
            return lambda: func(image, channel_axis=channel_axis, workers=workers)
        return lambda: func(image, channel_axis=channel_axis, workers=workers)[mask]
    workers = int(impl.split("-")[1])
    return lambda: multiscale_features(image, channel_axis=channel_axis, workers=workers, mask=mask)


def _peak_mb(func) -> float:
    """Peak MB of numpy (and Python) allocations during one call of ``func``."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = func()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    del result
    return peak / 2**20


def _run(benchmark, group: str, impl: str, func, *, slow: bool = False, rounds: int = 3):
    benchmark.group = group
    benchmark.extra_info["impl"] = impl
    if slow and benchmark.disabled:
        pytest.skip("seconds to minutes per call: timed runs only (skipped under --benchmark-disable)")
    result = benchmark.pedantic(func, rounds=rounds, iterations=1, warmup_rounds=0) if slow else benchmark(func)
    if not benchmark.disabled:
        benchmark.extra_info["output_mb"] = result.nbytes / 2**20
        benchmark.extra_info["peak_mb"] = _peak_mb(func)
    return result


@pytest.fixture(scope="module")
def slice_rgb():
    return np.random.default_rng(3).random((1024, 1024, 3), dtype=np.float32)


@pytest.fixture(scope="module")
def volume():
    """(155, 240, 240) float32: a real FLAIR volume when available, else noise."""
    cases = sorted(VOLUMES.glob("*/*_flair.nii.gz")) if VOLUMES.is_dir() else []
    if cases:
        nibabel = pytest.importorskip("nibabel")
        data = np.asarray(nibabel.load(str(cases[0])).dataobj, dtype=np.float32)  # (240, 240, 155)
        return np.ascontiguousarray(np.transpose(data, (2, 1, 0)))
    return np.random.default_rng(4).random((155, 240, 240), dtype=np.float32)


def _check_against_skimage(X, image, mask=None):
    """fastseg's rows within the documented tolerance (16 eps max|channel|) of scikit-image's."""
    want = _skimage()(image, channel_axis=-1)
    want = want if mask is None else want[mask]
    atol = 16 * np.finfo(np.float32).eps * np.repeat(np.abs(image).reshape(-1, image.shape[-1]).max(0),
                                                     X.shape[-1] // image.shape[-1])
    assert np.all(np.abs(X - want) <= atol)


@pytest.mark.parametrize("impl", IMPLS)
def test_slice_240(benchmark, slice_240, impl):
    X = _run(benchmark, "multiscale-240x240x4", impl, _call(impl, slice_240, -1))
    assert X.shape == (240, 240, 96)
    if impl.startswith("fastseg"):
        _check_against_skimage(X, slice_240)


@pytest.mark.parametrize("impl", IMPLS)
def test_slice_240_brain(benchmark, slice_240, impl):
    yy, xx = np.mgrid[:240, :240]
    brain = ((yy - 120) / 95.0) ** 2 + ((xx - 120) / 80.0) ** 2 < 1  # an ellipse: 42 % of the slice
    benchmark.extra_info["masked_share"] = float(brain.mean())
    X = _run(benchmark, "multiscale-240x240x4-brain", impl, _call(impl, slice_240, -1, brain))
    assert X.shape == (int(brain.sum()), 96)
    if impl.startswith("fastseg"):
        _check_against_skimage(X, slice_240, brain)


#: Slices of ``fastseg.datasets.load_sample()`` whose real brain masks the masked runs take.
REAL_BRAIN_SLICES = [0, 9, 18]


@pytest.mark.parametrize("index", REAL_BRAIN_SLICES)
@pytest.mark.parametrize("impl", ["fastseg-1", "fastseg-2"])
def test_slice_240_real_brain(benchmark, impl, index):
    """A sample slice's real brain pixels; ``extra_info`` records the masked share and the masked
    call's time over the dense call's (medians of alternating calls in this process), the figure
    that should track the share."""
    from fastseg.datasets import load_sample

    sample = load_sample()
    image, brain = sample.images[index], sample.brain[index]
    benchmark.extra_info["masked_share"] = float(brain.mean())
    masked = _call(impl, image, -1, brain)
    X = _run(benchmark, "multiscale-240x240x4-real-brain", impl, masked)
    assert X.shape == (int(brain.sum()), 96)
    if not benchmark.disabled:
        dense = _call(impl, image, -1)
        times = {masked: [], dense: []}
        for _ in range(15):
            for func in times:
                start = time.perf_counter()
                func()
                times[func].append(time.perf_counter() - start)
        ratio = float(np.median(times[masked]) / np.median(times[dense]))
        benchmark.extra_info["masked_over_dense"] = ratio


@pytest.mark.parametrize("impl", IMPLS)
def test_slice_1024(benchmark, slice_rgb, impl):
    X = _run(benchmark, "multiscale-1024x1024x3", impl, _call(impl, slice_rgb, -1),
             slow=impl.startswith("skimage"))
    assert X.shape == (1024, 1024, 72)


@pytest.mark.parametrize("impl", IMPLS)
def test_volume(benchmark, volume, impl):
    X = _run(benchmark, "multiscale-3d-155x240x240", impl, _call(impl, volume, None),
             slow=True, rounds=1 if impl.startswith("skimage") else 3)
    assert X.shape == (155, 240, 240, 30)
