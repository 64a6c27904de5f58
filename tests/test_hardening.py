"""Hardening: threads, GIL release, leaks, memory layouts and the bad-input table.

The per-module test files already check most bad inputs; the table at the end of this
file adds only the (function, bad input) pairs none of them checks.  ``tests/README.md``
lists every pair and the test that covers it.
"""
from __future__ import annotations

import functools
import gc
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastseg
from fastseg import (
    PixelSegmenter,
    brain_mask,
    clean_mask,
    cross_validate,
    tune_threshold,
    dice,
    feature_offsets,
    fill_holes,
    keep_largest,
    label,
    linear_scores,
    load,
    mlp_scores,
    n_window_features,
    normalize_brain,
    remove_small_components,
    save,
    segmentation_report,
    window_features,
)
from fastseg._ext import _boxmeans, _components, _mlp, _normalize, _windows
from fastseg.features import _pixfeat  # the build fastseg uses on this CPU (baseline or AVX2)
from fastseg.scoring import _linear  # (likewise)
from fastseg._multiscale import _kernel as _multiscale_kernel  # (likewise)
from fastseg.datasets import load_case, load_slices
from fastseg.features import FeatureSpec, box_means, context_channels, pixel_features
from fastseg.model import PixelModel
from fastseg.regions import RegionSegmenter
from fastseg.scoring import OUTPUT_CODES, MLPWeights, Network, _network_row_scores

#: The 0.1 context API (box_means, context_channels, mirror_columns) warns that it goes in 0.4; its
#: tests stay until then.
pytestmark = pytest.mark.filterwarnings("ignore:fastseg.features.* is deprecated:FutureWarning")

N_THREADS = 8


def synthetic(rng, n=4, size=32, channels=4):
    """Images with a constant background outside a square brain and a brighter 'tumour' (as in test_segmenter)."""
    x = rng.standard_normal((n, size, size, channels)).astype(np.float32)
    y = np.zeros((n, size, size), bool)
    y[:, size // 4:size * 5 // 8, size // 3:size * 3 // 4] = True
    x[y] += 1.5
    brain = np.zeros((n, size, size), bool)
    brain[:, 2:-2, 2:-2] = True
    x[~brain] = -0.4
    return x, y, brain


def random_masks(rng, shape, density=0.45):
    return rng.random(shape) < density


def linear_model(k, C, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(k * k * C), 0.25


def mlp_model(k, C, seed=2, hidden=5):
    rng = np.random.default_rng(seed)
    return MLPWeights(
        [rng.standard_normal((k * k * C, hidden)) * 0.3, rng.standard_normal((hidden, 1))],
        [rng.standard_normal(hidden), rng.standard_normal(1)],
        "tanh",
    )


@functools.lru_cache(maxsize=None)
def fitted(classifier="linear-svm"):
    """A small segmenter fitted on synthetic slices (cached: fitting is the slow part)."""
    x, y, brain = synthetic(np.random.default_rng(0))
    seg = PixelSegmenter(k=3, classifier=classifier, max_pixels=600, min_size=5, random_state=0)
    return seg.fit(x, y, brain)


def same(a, b) -> bool:
    """Exact equality of nested results (arrays, tuples, dicts, scalars; NaN equals NaN)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[key], b[key]) for key in a)
    if isinstance(a, (tuple, list)):
        return isinstance(b, (tuple, list)) and len(a) == len(b) and all(map(same, a, b))
    if hasattr(a, "to_dict"):
        return same(a.to_dict(), b.to_dict())
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    return a == b


# ----------------------------------------------------------------------------- a. threads

def _thread_cases():
    """name -> (function of one input item, list of input items); every item is distinct."""
    rng = np.random.default_rng(7)
    x, _, brain = synthetic(rng, n=N_THREADS, size=40)
    planar = rng.standard_normal((N_THREADS, 2, 33, 41, 3)).astype(np.float32)  # C=3: the planar linear kernel
    masks = random_masks(rng, (N_THREADS, 3, 48, 56))
    lin4, lin3, mlp4 = linear_model(5, 4), linear_model(3, 3), mlp_model(3, 4)
    seg, seg_mlp = fitted(), fitted("mlp")
    items = list(range(N_THREADS))
    return {
        "window_features": (lambda i: window_features(x[i:i + 2], 3, mask=brain[i:i + 2]), items),
        "window_features_dense": (lambda i: window_features(x[i], 5, mode="edge"), items),
        "linear_scores": (lambda i: linear_scores(x[i:i + 2], lin4, 5, mask=brain[i:i + 2]), items),
        "linear_scores_planar": (lambda i: linear_scores(planar[i], lin3, 3), items),
        "mlp_scores": (lambda i: mlp_scores(x[i:i + 2], mlp4, 3, mask=brain[i:i + 2], fill_value=-1.0), items),
        "clean_mask": (lambda i: clean_mask(masks[i], 6, min_relative_size=0.1), items),
        "label": (lambda i: label(masks[i], 2), items),
        "fill_holes": (lambda i: fill_holes(masks[i]), items),
        "remove_small_components": (lambda i: remove_small_components(masks[i], 4, 1), items),
        "keep_largest": (lambda i: keep_largest(masks[i], 2), items),
        "box_means": (lambda i: box_means(x[i:i + 2], (3, 7, 15)), items),
        "context_channels": (lambda i: context_channels(x[i:i + 2], brain[i:i + 2]), items),
        "pixel_features": (lambda i: pixel_features(x[i:i + 2], brain[i:i + 2], 3), items),
        "normalize_brain": (lambda i: normalize_brain(x[i:i + 2], brain[i:i + 2]), items),
        "brain_mask": (lambda i: brain_mask(x[i:i + 2]), items),
        "segmenter.predict": (lambda i: seg.predict(x[i:i + 2], brain[i:i + 2]), items),
        "segmenter.decision_function": (lambda i: seg.decision_function(x[i:i + 2]), items),
        "segmenter_mlp.predict_proba": (lambda i: seg_mlp.predict_proba(x[i:i + 2], brain[i:i + 2]), items),
    }


THREAD_CASES = _thread_cases()


@pytest.mark.parametrize("name", sorted(THREAD_CASES))
def test_threads_give_the_serial_results(name):
    func, items = THREAD_CASES[name]
    serial = [func(i) for i in items]
    barrier = threading.Barrier(N_THREADS)

    def worker(t):
        barrier.wait()  # all threads start together
        order = items[t:] + items[:t]  # each thread walks the items from a different start
        return [(i, func(i)) for _ in range(3) for i in order]

    with ThreadPoolExecutor(N_THREADS) as pool:
        results = list(pool.map(worker, range(N_THREADS)))
    for t, pairs in enumerate(results):
        for i, got in pairs:
            assert same(got, serial[i]), f"thread {t}, item {i}: differs from the serial result"


# --------------------------------------------------------------------------- a. GIL release
#
# With a switch interval far longer than the test, a thread holding the GIL keeps it until it
# blocks or releases it itself.  The probe thread waits for the kernel to start, then needs the
# GIL to record the state: it gets it *during* the kernel only if the kernel released it (the
# calling thread cannot mark "finished" without the GIL).  No timing is measured; a kernel that
# holds the GIL can never pass, and the control test shows that the probe does catch one.

def _gil_probe(run):
    """Call ``run(wrap)``, where ``wrap(real, *args)`` calls the kernel ``real``; return what the probe saw."""
    state = {"phase": "before"}
    started = threading.Event()
    seen = []

    def probe():
        started.wait()
        seen.append(state["phase"])  # needs the GIL

    def wrap(real, *args, **kwargs):
        state["phase"] = "running"
        started.set()
        try:
            return real(*args, **kwargs)
        finally:
            state["phase"] = "finished"

    thread = threading.Thread(target=probe)
    old = sys.getswitchinterval()
    sys.setswitchinterval(30.0)
    try:
        thread.start()
        run(wrap)
    finally:
        started.set()
        thread.join()
        sys.setswitchinterval(old)
    return seen[0]


def _big_inputs():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 240, 240, 4)).astype(np.float32)
    brain = np.ones((6, 240, 240), bool)
    masks = random_masks(rng, (24, 240, 240), 0.5)
    return x, brain, masks


GIL_CASES = {
    # name: (module, kernel attribute(s), public call)
    "window_features": (_windows, ("gather_dense",), lambda x, b, m: window_features(x[:3], 3)),
    "window_features_masked": (_windows, ("gather_masked",), lambda x, b, m: window_features(x[:3], 3, mask=b[:3])),
    "linear_scores": (_linear, ("linear_scores_interleaved", "linear_scores_planar"),
                      lambda x, b, m: linear_scores(x, linear_model(7, 4), 7)),
    "linear_scores_planar": (_linear, ("linear_scores_interleaved", "linear_scores_planar"),
                             lambda x, b, m: linear_scores(x[..., :3], linear_model(7, 3), 7)),
    "mlp_scores": (_mlp, ("mlp_scores",), lambda x, b, m: mlp_scores(x[:2], mlp_model(5, 4, hidden=16), 5)),
    "label": (_components, ("label_batch",), lambda x, b, m: label(m, 2)),
    "clean_mask": (_components, ("clean_batch",), lambda x, b, m: clean_mask(m, 20)),
    "fill_holes": (_components, ("clean_batch",), lambda x, b, m: fill_holes(m)),
    "keep_largest": (_components, ("keep_largest_batch",), lambda x, b, m: keep_largest(m, 3)),
    "box_means": (_boxmeans, ("box_means",), lambda x, b, m: box_means(x, (7, 15, 31))),
    "normalize_brain": (_normalize, ("normalize_brain",), lambda x, b, m: normalize_brain(x, b)),
    "pixel_features": (_pixfeat, ("pixel_context",), lambda x, b, m: pixel_features(x, b, 3)),
    "pixel_network_scores": (_pixfeat, ("pixel_network_scores",), lambda x, b, m: _fit_small().decision_function(x, b)),
    "multiscale_features": (_multiscale_kernel, ("tile_features",),
                            lambda x, b, m: fastseg.multiscale_features(x[0], channel_axis=-1, workers=1)),
    "mlp_row_scores": (_mlp, ("mlp_rows",), lambda x, b, m: _network_row_scores(
        x.reshape(-1, 4), Network.mlp(*mlp_model(1, 4, hidden=16)[:2], "relu"), OUTPUT_CODES["proba"])),
}


@pytest.fixture(scope="module")
def big_inputs():
    return _big_inputs()


@pytest.mark.parametrize("name", sorted(GIL_CASES))
def test_kernels_release_the_gil(name, big_inputs, monkeypatch):
    module, attrs, call = GIL_CASES[name]
    originals = {attr: getattr(module, attr) for attr in attrs}

    def run(wrap):
        for attr, real in originals.items():
            monkeypatch.setattr(module, attr, functools.partial(wrap, real))
        try:
            call(*big_inputs)
        finally:
            monkeypatch.undo()

    seen = []
    for _ in range(3):  # a release can only be missed (never invented) if the OS is slow to wake the probe
        seen.append(_gil_probe(run))
        if seen[-1] == "running":
            break
    assert seen[-1] == "running", f"no other thread ran while the {name} kernel ran (probe saw {seen})"


def test_gil_probe_catches_a_call_that_holds_the_gil():
    def hold():
        total = 0
        for i in range(300_000):  # pure Python: never releases the GIL
            total += i
        return total

    assert _gil_probe(lambda wrap: wrap(hold)) == "finished"


# ------------------------------------------------------------------------------- b. no leaks

def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _leak_cases():
    rng = np.random.default_rng(11)
    x, _, brain = synthetic(rng, n=1, size=16)
    x1, b1 = x[0], brain[0]
    m = random_masks(rng, (16, 16))
    lin, mlp = linear_model(3, 4), mlp_model(3, 4)
    return {
        "window_features": lambda: window_features(x1, 3),
        "window_features_masked": lambda: window_features(x1, 3, mask=b1),
        "linear_scores": lambda: linear_scores(x1, lin, 3),
        "linear_scores_masked_planar": lambda: linear_scores(x1[..., :3], linear_model(3, 3), 3, mask=b1),
        "mlp_scores": lambda: mlp_scores(x1, mlp, 3, mask=b1),
        "clean_mask": lambda: clean_mask(m, 5, min_relative_size=0.1),
        "label": lambda: label(m),
        "fill_holes": lambda: fill_holes(m),
        "remove_small_components": lambda: remove_small_components(m, 3),
        "keep_largest": lambda: keep_largest(m),
        "box_means": lambda: box_means(x1, (3, 7)),
        "context_channels": lambda: context_channels(x1, b1),
        "pixel_features": lambda: pixel_features(x1, b1, 3, mean_sizes=(5,)),
        "mlp_row_scores": lambda: _network_row_scores(x1.reshape(-1, 4), Network.mlp(*mlp_model(1, 4)[:2], "relu"), OUTPUT_CODES["proba"]),
        "normalize_brain": lambda: normalize_brain(x1, b1),
        "brain_mask": lambda: brain_mask(x1),
    }


LEAK_CASES = _leak_cases()


@pytest.mark.parametrize("name", sorted(LEAK_CASES))
def test_no_leak_over_10000_calls(name):
    func = LEAK_CASES[name]
    for _ in range(200):
        func()
    gc.collect()
    before = _rss_bytes()
    for _ in range(10_000):
        func()
    gc.collect()
    grown = _rss_bytes() - before
    assert grown < 5 * 2**20, f"{name}: resident memory grew by {grown / 2**20:.1f} MB over 10,000 calls"


# ------------------------------------------------ c. inputs unchanged, every memory layout

def _layout(arr: np.ndarray, layout: str) -> np.ndarray:
    """The same values as ``arr`` in another memory layout (the result asserts its own flags)."""
    if layout == "C":
        out = np.ascontiguousarray(arr)
        assert out.flags.c_contiguous
    elif layout == "fortran":
        out = np.asfortranarray(arr)
        assert out.flags.f_contiguous and (sum(n > 1 for n in arr.shape) < 2 or not out.flags.c_contiguous)
    elif layout == "strided":
        big = np.zeros(tuple(2 * s for s in arr.shape), arr.dtype)
        out = big[tuple(slice(None, None, 2) for _ in arr.shape)]
        out[...] = arr
        assert not out.flags.c_contiguous and not out.flags.f_contiguous or arr.size <= 1
    elif layout == "negative":
        out = np.flip(np.flip(arr).copy())
        assert any(s < 0 for s in out.strides)
    elif layout == "readonly":
        out = arr.copy()
        out.setflags(write=False)
        assert not out.flags.writeable
    else:
        raise AssertionError(layout)
    np.testing.assert_array_equal(out, arr)
    return out


def _layout_cases():
    """name -> (function of a dict of arrays, the dict of arrays)."""
    rng = np.random.default_rng(5)
    x, y, brain = synthetic(rng, n=4, size=24)
    masks = random_masks(rng, (3, 20, 18))
    coef, b = linear_model(3, 4)
    mlp = mlp_model(3, 4)
    images = {"images": x, "mask": brain}
    seg = fitted()
    small = dict(k=3, max_pixels=300, min_size=3, random_state=0)
    # BraTS 2018 labels: oedema, and inside it core (1) and enhancing tumour (4)
    labels = np.where(y, np.where(x[..., 1] > 0, np.where(x[..., 2] > 0.5, 4, 1), 2), 0).astype(np.uint8)
    regions = RegionSegmenter(PixelSegmenter(**small)).fit(x, labels, brain)
    return {
        "window_features": (lambda a: window_features(a["images"], 3, mask=a["mask"]), images),
        "linear_scores": (lambda a: linear_scores(a["images"], (a["coef"], b), 3, mask=a["mask"]),
                          {**images, "coef": coef}),
        "mlp_scores": (lambda a: mlp_scores(a["images"], MLPWeights([a["w0"], a["w1"]], [a["b0"], a["b1"]], "tanh"),
                                            3, mask=a["mask"]),
                       {**images, "w0": np.asarray(mlp.coefs[0]), "w1": np.asarray(mlp.coefs[1]),
                        "b0": np.asarray(mlp.intercepts[0]), "b1": np.asarray(mlp.intercepts[1])}),
        "label": (lambda a: label(a["masks"], 2), {"masks": masks}),
        "fill_holes": (lambda a: fill_holes(a["masks"]), {"masks": masks}),
        "remove_small_components": (lambda a: remove_small_components(a["masks"], 3), {"masks": masks}),
        "keep_largest": (lambda a: keep_largest(a["masks"], 2), {"masks": masks}),
        "clean_mask": (lambda a: clean_mask(a["masks"], 4, min_relative_size=0.1), {"masks": masks}),
        "brain_mask": (lambda a: brain_mask(a["images"]), {"images": x}),
        "normalize_brain": (lambda a: normalize_brain(a["images"], a["brain"]), {"images": x, "brain": brain}),
        "box_means": (lambda a: box_means(a["images"], (3, 7)), {"images": x}),
        "context_channels": (lambda a: context_channels(a["images"], a["brain"]), {"images": x, "brain": brain}),
        "pixel_features": (lambda a: pixel_features(a["images"], a["brain"], 3, mask=a["mask"]),
                           {"images": x, "brain": brain, "mask": y}),
        "dice": (lambda a: dice(a["y_true"], a["y_pred"]), {"y_true": y, "y_pred": brain & (x[..., 0] > 0.5)}),
        "segmentation_report": (lambda a: segmentation_report(a["y_true"], a["y_pred"], a["groups"]),
                                {"y_true": y, "y_pred": brain & (x[..., 0] > 0.5), "groups": np.array([3, 3, 8, 9])}),
        "PixelSegmenter.fit": (lambda a: PixelSegmenter(**small).fit(a["images"], a["masks"], a["brain"])
                               .decision_function(x, brain), {"images": x, "masks": y, "brain": brain}),
        "PixelSegmenter.predict": (lambda a: seg.predict(a["images"], a["brain"]), {"images": x, "brain": brain}),
        "PixelSegmenter.decision_function": (lambda a: seg.decision_function(a["images"]), {"images": x}),
        "PixelSegmenter.score": (lambda a: seg.score(a["images"], a["masks"], a["brain"]),
                                 {"images": x, "masks": y, "brain": brain}),
        "PixelModel.predict-within": (lambda a: seg.model_.predict(a["images"], a["brain"], within=a["within"]),
                                      {"images": x, "brain": brain, "within": y}),
        "RegionSegmenter.fit": (lambda a: RegionSegmenter(PixelSegmenter(**small)).fit(a["images"], a["labels"], a["brain"])
                                .predict(x, brain), {"images": x, "labels": labels, "brain": brain}),
        "RegionSegmenter.predict": (lambda a: regions.predict(a["images"], a["brain"]), {"images": x, "brain": brain}),
        "cross_validate": (lambda a: {key: v for key, v in cross_validate(PixelSegmenter(**small), a["images"], a["masks"],
                                                                          a["groups"], cv=2, brain=a["brain"]).items()
                                      if key != "report"},
                           {"images": x, "masks": y, "groups": np.array([0, 0, 1, 1]), "brain": brain}),
    }


LAYOUT_CASES = _layout_cases()
LAYOUTS = ["fortran", "strided", "negative", "readonly"]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", sorted(LAYOUT_CASES))
def test_any_layout_accepted_and_inputs_never_modified(name, layout):
    func, arrays = LAYOUT_CASES[name]
    expected = func({key: _layout(arr, "C") for key, arr in arrays.items()})
    args = {key: _layout(arr, layout) for key, arr in arrays.items()}
    before = {key: arr.copy() for key, arr in args.items()}
    got = func(args)
    assert same(got, expected), f"{name} gives a different result for {layout} inputs"
    for key, arr in args.items():
        assert np.array_equal(arr, before[key]), f"{name} modified its input {key!r}"
        if layout == "readonly":
            assert not arr.flags.writeable


# --------------------------------------------------------------------- d. the bad-input table
#
# Only the pairs that no other test file checks (tests/README.md has the whole table).  Each row:
# id, a call, the exception type, and a regex that names the offending parameter.

_rng = np.random.default_rng(21)
X, Y, BRAIN = synthetic(_rng, n=2, size=16)
X_NAN = X.copy()
X_NAN[1, 3, 4, 2] = np.nan
X_INF = X.copy()
X_INF[0, 5, 5, 0] = -np.inf
M_NAN = Y.astype(np.float32)
M_NAN[0, 1, 1] = np.nan
HUGE = 10**9 + 1
LIN = linear_model(3, 4)
MLP = mlp_model(3, 4)
GROUPS = ["a", "b"]


_SPEC = FeatureSpec(4)  # 28 feature columns
_NET = Network.linear(np.zeros(_SPEC.n_features), 0.0)


def _fit_small(**params):
    return PixelSegmenter(k=1, max_pixels=200, min_size=0, random_state=0, **params).fit(X, Y, BRAIN)


BAD = [
    # multiscale filter banks and trainable segmentation (the full table: test_multiscale.py, test_trainable.py)
    ("multiscale_features-sigma-zero", lambda: fastseg.multiscale_features(X[0, ..., 0], sigma_min=0), ValueError,
     r"sigma_min must be a number in \(0, 100000.0\], got 0.0"),
    ("TrainableSegmenter-unlabelled", lambda: fastseg.TrainableSegmenter().fit(X[0, ..., 0], np.zeros((16, 16), int)),
     ValueError, r"labels must mark at least one pixel"),
    ("fit_segmenter-labels-float", lambda: fastseg.fit_segmenter(np.ones((16, 16)), np.ones((16, 16, 3)), None),
     TypeError, r"labels must have an integer dtype"),
    ("predict_segmenter-clf-None", lambda: fastseg.predict_segmenter(np.ones((16, 16, 3)), None), TypeError,
     r"clf must be a scikit-learn classifier"),
    ("load_segmenter-path-None", lambda: fastseg.load_segmenter(None), TypeError, r"path"),
    # window_features
    ("window_features-huge-k", lambda: window_features(X, HUGE), ValueError, r"k=1000000001 is too large"),
    ("window_features-huge-k-edge", lambda: window_features(X, HUGE, mode="edge"), ValueError, r"k=1000000001 is too large"),
    ("window_features-mask-zero-size", lambda: window_features(X, 3, mask=np.zeros((2, 0, 16), bool)),
     ValueError, r"mask must have shape \(2, 16, 16\)"),
    ("window_features-mask-object", lambda: window_features(X, 3, mask=Y.astype(object)), TypeError, "mask must be a boolean"),
    ("window_features-mask-nan", lambda: window_features(X, 3, mask=M_NAN), ValueError, "mask with a floating dtype may hold only 0 and 1, got value nan"),
    ("window_features-mask-None-row", lambda: window_features(X, 3, mask=[None] * 2), TypeError, "mask must be a boolean or integer mask"),
    ("window_features-ragged", lambda: window_features([[1.0, 2.0], [3.0]], 3), TypeError, "images must be array-like"),
    # feature_offsets / n_window_features
    ("feature_offsets-k-None", lambda: feature_offsets(None, 4), TypeError, "k must be an odd integer"),
    ("feature_offsets-k-even", lambda: feature_offsets(2, 4), ValueError, "k must be an odd integer >= 1, got 2"),
    ("feature_offsets-channels-zero", lambda: feature_offsets(3, 0), ValueError, "n_channels must be a positive integer, got 0"),
    ("feature_offsets-channels-None", lambda: feature_offsets(3, None), TypeError, "n_channels must be a positive integer, got NoneType"),
    ("feature_offsets-channels-float", lambda: feature_offsets(3, 1.5), TypeError, "n_channels must be a positive integer, got float"),
    ("feature_offsets-huge-k", lambda: feature_offsets(HUGE, 4), ValueError, r"k=1000000001 is too large: k \* k \* n_channels"),
    ("n_window_features-huge-k", lambda: n_window_features(HUGE, 4), ValueError, r"k=1000000001 is too large"),
    ("n_window_features-k-None", lambda: n_window_features(None, 4), TypeError, "k must be an odd integer"),
    ("n_window_features-k-even", lambda: n_window_features(4, 4), ValueError, "k must be an odd integer >= 1, got 4"),
    ("n_window_features-channels-zero", lambda: n_window_features(3, 0), ValueError, "n_channels must be a positive integer, got 0"),
    ("n_window_features-channels-None", lambda: n_window_features(3, None), (TypeError, ValueError), "n_channels"),
    # linear_scores
    ("linear_scores-huge-k", lambda: linear_scores(X, LIN, HUGE), ValueError, r"k=1000000001 is too large"),
    ("linear_scores-k-None", lambda: linear_scores(X, LIN, None), TypeError, "k must be an odd integer"),
    ("linear_scores-images-None", lambda: linear_scores(None, LIN, 3), TypeError, "images must be an array, got None"),
    ("linear_scores-complex", lambda: linear_scores(X.astype(np.complex64), LIN, 3), TypeError, "images must have a real .* dtype, got dtype complex64"),
    ("linear_scores-object", lambda: linear_scores(X.astype(object), LIN, 3), TypeError, "images must have a real .* dtype, got dtype object"),
    ("linear_scores-bool", lambda: linear_scores(X > 0, LIN, 3), TypeError, "images must have a real .* dtype, got dtype bool"),
    ("linear_scores-zero-size", lambda: linear_scores(X[:, :, :0], LIN, 3), ValueError, "images must not have zero-size axes"),
    ("linear_scores-inf", lambda: linear_scores(X_INF, LIN, 3), ValueError, "images must contain only finite values"),
    ("linear_scores-model-None", lambda: linear_scores(X, None, 3), TypeError, "model must be a fitted linear classifier"),
    ("linear_scores-coef-None", lambda: linear_scores(X, (None, 0.0), 3), TypeError, "model coef must be an array, got None"),
    ("linear_scores-coef-complex", lambda: linear_scores(X, (LIN[0] + 0j, 0.0), 3), TypeError, "model coef must have a real dtype"),
    ("linear_scores-mask-zero-size", lambda: linear_scores(X, LIN, 3, mask=np.zeros((2, 16, 0), bool)), ValueError, r"mask must have shape \(2, 16, 16\)"),
    ("linear_scores-mask-nan", lambda: linear_scores(X, LIN, 3, mask=M_NAN), ValueError, "mask with a floating dtype may hold only 0 and 1"),
    # mlp_scores
    ("mlp_scores-huge-k", lambda: mlp_scores(X, MLP, HUGE), ValueError, r"k=1000000001 is too large"),
    ("mlp_scores-k-None", lambda: mlp_scores(X, MLP, None), TypeError, "k must be an odd integer"),
    ("mlp_scores-images-None", lambda: mlp_scores(None, MLP, 3), TypeError, "images must be an array, got None"),
    ("mlp_scores-complex", lambda: mlp_scores(X.astype(complex), MLP, 3), TypeError, "images must have a real .* dtype, got dtype complex128"),
    ("mlp_scores-object", lambda: mlp_scores(X.astype(object), MLP, 3), TypeError, "images must have a real .* dtype, got dtype object"),
    ("mlp_scores-bool", lambda: mlp_scores(X > 0, MLP, 3), TypeError, "images must have a real .* dtype, got dtype bool"),
    ("mlp_scores-ndim-2", lambda: mlp_scores(X[0, 0], MLP, 3), ValueError, r"images must have shape \(H, W, C\) or \(N, H, W, C\), got ndim=2"),
    ("mlp_scores-ndim-5", lambda: mlp_scores(X[None], MLP, 3), ValueError, "images must have shape .* got ndim=5"),
    ("mlp_scores-zero-size", lambda: mlp_scores(X[:0], MLP, 3), ValueError, "images must not have zero-size axes"),
    ("mlp_scores-nan", lambda: mlp_scores(X_NAN, MLP, 3), ValueError, "images must contain only finite values, got 1 NaN"),
    ("mlp_scores-inf", lambda: mlp_scores(X_INF, MLP, 3), ValueError, "images must contain only finite values, got 1 NaN"),
    ("mlp_scores-channels", lambda: mlp_scores(X[..., :3], MLP, 3), ValueError, r"model takes 36 input features.*C=3"),
    ("mlp_scores-model-None", lambda: mlp_scores(X, None, 3), TypeError, "model must be a fitted MLPClassifier"),
    ("mlp_scores-fill-None", lambda: mlp_scores(X, MLP, 3, fill_value=None), TypeError, "fill_value must be a real number"),
    ("mlp_scores-mode", lambda: mlp_scores(X, MLP, 3, mode="wrap"), ValueError, "mode must be one of"),
    ("mlp_scores-n_jobs-0", lambda: mlp_scores(X, MLP, 3, n_jobs=0), ValueError, "n_jobs must be None or a non-zero integer"),
    ("mlp_scores-mask-nan", lambda: mlp_scores(X, MLP, 3, mask=M_NAN), ValueError, "mask with a floating dtype may hold only 0 and 1"),
    ("mlp_scores-mask-complex", lambda: mlp_scores(X, MLP, 3, mask=Y + 0j), TypeError, "mask must be a boolean or integer mask"),
    ("MLPWeights-coefs-None", lambda: mlp_scores(X, MLPWeights(None, None, "relu"), 3), TypeError, "coefs"),
    # the component functions
    ("label-complex", lambda: label(Y + 0j), TypeError, "masks must be a boolean or integer mask, got dtype complex128"),
    ("label-nan", lambda: label(M_NAN), ValueError, "masks with a floating dtype may hold only 0 and 1, got value nan"),
    ("label-inf", lambda: label(np.where(Y, np.inf, 0.0)), ValueError, "masks with a floating dtype may hold only 0 and 1, got value inf"),
    ("fill_holes-nan", lambda: fill_holes(M_NAN), ValueError, "masks with a floating dtype may hold only 0 and 1"),
    ("fill_holes-complex", lambda: fill_holes(Y + 0j), TypeError, "masks must be a boolean or integer mask"),
    ("remove_small_components-min_size-None", lambda: remove_small_components(Y, None), TypeError, "min_size must be an integer >= 0"),
    ("remove_small_components-nan", lambda: remove_small_components(M_NAN, 3), ValueError, "masks with a floating dtype may hold only 0 and 1"),
    ("keep_largest-n-None", lambda: keep_largest(Y, None), TypeError, "n must be an integer >= 0"),
    ("keep_largest-nan", lambda: keep_largest(M_NAN), ValueError, "masks with a floating dtype may hold only 0 and 1"),
    ("clean_mask-connectivity-None", lambda: clean_mask(Y, connectivity=None), TypeError, "connectivity must be 1 or 2, got NoneType"),
    ("clean_mask-nan", lambda: clean_mask(M_NAN), ValueError, "masks with a floating dtype may hold only 0 and 1"),
    ("clean_mask-complex", lambda: clean_mask(Y + 0j), TypeError, "masks must be a boolean or integer mask"),
    ("clean_mask-min_relative_size-None", lambda: clean_mask(Y, min_relative_size=None), TypeError, "min_relative_size must be a number in"),
    # brain_mask
    ("brain_mask-None", lambda: brain_mask(None), TypeError, "images must be an array, got None"),
    ("brain_mask-complex", lambda: brain_mask(X + 0j), TypeError, "images must have a real .* dtype, got dtype complex"),
    ("brain_mask-object", lambda: brain_mask(X.astype(object)), TypeError, "images must have a real .* dtype, got dtype object"),
    ("brain_mask-bool", lambda: brain_mask(X > 0), TypeError, "images must have a real .* dtype, got dtype bool"),
    ("brain_mask-ndim", lambda: brain_mask(X[0, 0]), ValueError, "images must have shape .* got ndim=2"),
    ("brain_mask-zero-size", lambda: brain_mask(X[:0]), ValueError, "images must not have zero-size axes"),
    ("brain_mask-nan", lambda: brain_mask(X_NAN), ValueError, "images must contain only finite values"),
    ("brain_mask-inf", lambda: brain_mask(X_INF), ValueError, "images must contain only finite values"),
    # normalize_brain
    ("normalize_brain-None", lambda: normalize_brain(None, BRAIN), TypeError, "images must be an array, got None"),
    ("normalize_brain-brain-None", lambda: normalize_brain(X, None), TypeError, "brain must be an array, got None"),
    ("normalize_brain-complex", lambda: normalize_brain(X + 0j, BRAIN), TypeError, "images must have a real .* dtype"),
    ("normalize_brain-bool", lambda: normalize_brain(X > 0, BRAIN), TypeError, "images must have a real .* dtype, got dtype bool"),
    ("normalize_brain-ndim", lambda: normalize_brain(X[0, 0], BRAIN[0, 0]), ValueError, "images must have shape .* got ndim=2"),
    ("normalize_brain-zero-size", lambda: normalize_brain(X[:0], BRAIN[:0]), ValueError, "images must not have zero-size axes"),
    ("normalize_brain-inf", lambda: normalize_brain(X_INF, BRAIN), ValueError, "images must contain only finite values"),
    ("normalize_brain-brain-complex", lambda: normalize_brain(X, BRAIN + 0j), TypeError, "brain must be a boolean or integer mask"),
    ("normalize_brain-brain-nan", lambda: normalize_brain(X, M_NAN), ValueError, "brain with a floating dtype may hold only 0 and 1"),
    # box_means / context_channels
    ("box_means-None", lambda: box_means(None), TypeError, "images must be an array, got None"),
    ("box_means-complex", lambda: box_means(X + 0j), TypeError, "images must have a real .* dtype"),
    ("box_means-bool", lambda: box_means(X > 0), TypeError, "images must have a real .* dtype, got dtype bool"),
    ("box_means-ndim", lambda: box_means(X[0, 0]), ValueError, "images must have shape .* got ndim=2"),
    ("box_means-zero-size", lambda: box_means(X[:0]), ValueError, "images must not have zero-size axes"),
    ("box_means-nan", lambda: box_means(X_NAN), ValueError, "images must contain only finite values"),
    ("box_means-sizes-float", lambda: box_means(X, (3.0,)), TypeError, "sizes must be an odd integer >= 1, got float"),
    ("box_means-sizes-negative", lambda: box_means(X, (-1,)), ValueError, "sizes must be an odd integer >= 1, got -1"),
    ("box_means-sizes-None", lambda: box_means(X, None), TypeError, "sizes"),
    ("context_channels-None", lambda: context_channels(None, BRAIN), TypeError, "images must be an array, got None"),
    ("context_channels-brain-None", lambda: context_channels(X, None), TypeError, "brain must be an array, got None"),
    ("context_channels-asymmetry-None", lambda: context_channels(X, BRAIN, asymmetry=None), TypeError, "asymmetry must be True or False, got NoneType"),
    ("clean_mask-fill_holes-str", lambda: clean_mask(Y, fill_holes="yes"), TypeError, "fill_holes must be True or False, got str"),
    ("context_channels-complex", lambda: context_channels(X + 0j, BRAIN), TypeError, "images must have a real .* dtype"),
    ("context_channels-ndim", lambda: context_channels(X[0, 0], BRAIN[0, 0]), ValueError, "images must have shape .* got ndim=2"),
    ("context_channels-zero-size", lambda: context_channels(X[:0], BRAIN[:0]), ValueError, "images must not have zero-size axes"),
    ("context_channels-nan", lambda: context_channels(X_NAN, BRAIN), ValueError, "images must contain only finite values"),
    ("context_channels-brain-nan", lambda: context_channels(X, M_NAN), ValueError, "brain with a floating dtype may hold only 0 and 1"),
    ("context_channels-asymmetry_box-even", lambda: context_channels(X, BRAIN, asymmetry_box=4), ValueError, "asymmetry_box must be an odd integer >= 1, got 4"),
    # dice / segmentation_report
    ("dice-y_true-None", lambda: dice(None, Y), TypeError, "y_true must be an array, got None"),
    ("dice-y_pred-None", lambda: dice(Y, None), TypeError, "y_pred must be an array, got None"),
    ("dice-complex", lambda: dice(Y + 0j, Y), TypeError, "y_true must be a boolean or integer mask, got dtype complex128"),
    ("dice-nan", lambda: dice(M_NAN, Y), ValueError, "y_true with a floating dtype may hold only 0 and 1, got value nan"),
    ("dice-zero-size", lambda: dice(Y[:0], Y[:0]), ValueError, "y_true must not have zero-size axes"),
    ("dice-shape", lambda: dice(Y, Y[0]), ValueError, r"y_pred must have shape \(2, 16, 16\), got shape \(16, 16\)"),
    ("dice-ndim", lambda: dice(Y[0, 0], Y[0, 0]), ValueError, "y_true must have 2 or 3 dimensions"),
    ("segmentation_report-None", lambda: segmentation_report(None, Y), TypeError, "y_true must be an array, got None"),
    ("segmentation_report-complex", lambda: segmentation_report(Y, Y + 0j), TypeError, "y_pred must be a boolean or integer mask"),
    ("segmentation_report-nan", lambda: segmentation_report(Y, M_NAN), ValueError, "y_pred with a floating dtype may hold only 0 and 1"),
    ("segmentation_report-zero-size", lambda: segmentation_report(Y[:0], Y[:0]), ValueError, "y_true must not have zero-size axes"),
    ("segmentation_report-groups-2d", lambda: segmentation_report(Y, Y, np.zeros((2, 2))), ValueError, r"groups must have one entry per slice, shape \(2,\), got shape \(2, 2\)"),
    ("segmentation_report-groups-None-entries", lambda: segmentation_report(Y, Y, [None, None]), (TypeError, ValueError), "groups"),
    # cross_validate
    ("RegionSegmenter-convention", lambda: fastseg.RegionSegmenter(convention="brats2015").fit(X, Y.astype(np.uint8)),
     ValueError, r"convention must be one of \['brats2018', 'brats2023', 'msd'\], got 'brats2015'"),
    ("RegionSegmenter-labels-unknown", lambda: fastseg.RegionSegmenter().fit(X, Y.astype(np.uint8) * 3), ValueError,
     r"labels: labels \{3\} are not in the brats2018 convention \(its labels: 0, 1, 2, 4\)"),
    ("cross_validate_regions-segmenter", lambda: fastseg.cross_validate_regions(PixelSegmenter(), [X], [Y], ["a"]),
     TypeError, r"segmenter must be a RegionSegmenter, got PixelSegmenter"),
    ("cross_validate_regions-cv-huge", lambda: fastseg.cross_validate_regions(fastseg.RegionSegmenter(), [X, X],
     [Y.astype(np.uint8)] * 2, ["a", "b"], cv=HUGE), ValueError, "cv must be an integer from 2 to the number of patients"),
    ("cross_validate-cv-huge", lambda: cross_validate(PixelSegmenter(), X, Y, GROUPS, cv=HUGE), ValueError, "cv must be an integer from 2 to the number of patients"),
    ("cross_validate-cv-1", lambda: cross_validate(PixelSegmenter(), X, Y, GROUPS, cv=1), ValueError, "cv must be an integer from 2"),
    ("cross_validate-cv-None", lambda: cross_validate(PixelSegmenter(), X, Y, GROUPS, cv=None), TypeError, "cv must be an integer"),
    ("cross_validate-cv-float", lambda: cross_validate(PixelSegmenter(), X, Y, GROUPS, cv=2.0), TypeError, "cv must be an integer"),
    ("cross_validate-groups-short", lambda: cross_validate(PixelSegmenter(), X, Y, ["a"], cv=2), ValueError, r"groups must have one entry per slice, shape \(2,\), got shape \(1,\)"),
    ("cross_validate-groups-None", lambda: cross_validate(PixelSegmenter(), X, Y, None, cv=2), (TypeError, ValueError), "groups must"),
    ("cross_validate-images-None", lambda: cross_validate(PixelSegmenter(), None, Y, GROUPS, cv=2), TypeError, "images must be an array, got None"),
    ("cross_validate-images-complex", lambda: cross_validate(PixelSegmenter(), X + 0j, Y, GROUPS, cv=2), TypeError, "images must have a real"),
    ("cross_validate-images-nan", lambda: cross_validate(PixelSegmenter(), X_NAN, Y, GROUPS, cv=2), ValueError, "images must contain only finite values"),
    ("cross_validate-masks-None", lambda: cross_validate(PixelSegmenter(), X, None, GROUPS, cv=2), TypeError, "masks must be an array, got None"),
    ("cross_validate-masks-shape", lambda: cross_validate(PixelSegmenter(), X, Y[:1], GROUPS, cv=2), ValueError, r"masks must have shape \(2, 16, 16\)"),
    ("cross_validate-brain-shape", lambda: cross_validate(PixelSegmenter(), X, Y, GROUPS, cv=2, brain=BRAIN[0]), ValueError, r"brain must have shape \(2, 16, 16\)"),
    # tune_threshold (the same checks as cross_validate, plus its own)
    ("tune_threshold-cv-huge", lambda: tune_threshold(PixelSegmenter(), X, Y, GROUPS, cv=HUGE), ValueError, "cv must be an integer from 2 to the number of patients"),
    ("tune_threshold-cv-None", lambda: tune_threshold(PixelSegmenter(), X, Y, GROUPS, cv=None), TypeError, "cv must be an integer"),
    ("tune_threshold-images-nan", lambda: tune_threshold(PixelSegmenter(), X_NAN, Y, GROUPS, cv=2), ValueError, "images must contain only finite values"),
    ("tune_threshold-masks-shape", lambda: tune_threshold(PixelSegmenter(), X, Y[:1], GROUPS, cv=2), ValueError, r"masks must have shape \(2, 16, 16\)"),
    ("tune_threshold-segmenter-None", lambda: tune_threshold(None, X, Y, GROUPS, cv=2), TypeError, "segmenter must be an estimator with fit, score_maps, get_params, got NoneType"),
    ("tune_threshold-thresholds-inf", lambda: tune_threshold(PixelSegmenter(), X, Y, GROUPS, cv=2, thresholds=[np.inf]), ValueError, "thresholds must be a non-empty sequence of finite numbers"),
    ("tune_threshold-thresholds-text", lambda: tune_threshold(PixelSegmenter(), X, Y, GROUPS, cv=2, thresholds=["high"]), TypeError, r"thresholds must be a sequence of numbers, got \['high'\]"),
    ("cross_validate-segmenter-None", lambda: cross_validate(None, X, Y, GROUPS, cv=2), TypeError, "segmenter"),
    # PixelSegmenter
    ("PixelSegmenter-huge-k", lambda: PixelSegmenter(k=HUGE).fit(X, Y), ValueError, r"k=1000000001 is too large"),
    ("PixelSegmenter.fit-images-None", lambda: PixelSegmenter().fit(None, Y), TypeError, "images must be an array, got None"),
    ("PixelSegmenter.fit-masks-None", lambda: PixelSegmenter().fit(X, None), TypeError, "masks must be an array, got None"),
    ("PixelSegmenter.fit-complex", lambda: PixelSegmenter().fit(X + 0j, Y), TypeError, "images must have a real .* dtype"),
    ("PixelSegmenter.fit-object", lambda: PixelSegmenter().fit(X.astype(object), Y), TypeError, "images must have a real .* dtype, got dtype object"),
    ("PixelSegmenter.fit-bool", lambda: PixelSegmenter().fit(X > 0, Y), TypeError, "images must have a real .* dtype, got dtype bool"),
    ("PixelSegmenter.fit-zero-size", lambda: PixelSegmenter().fit(X[:0], Y[:0]), ValueError, "images must not have zero-size axes"),
    ("PixelSegmenter.fit-ndim", lambda: PixelSegmenter().fit(X[0, 0], Y[0, 0]), ValueError, "images must have shape .* got ndim=2"),
    ("PixelSegmenter.fit-inf", lambda: PixelSegmenter().fit(X_INF, Y), ValueError, "images must contain only finite values"),
    ("PixelSegmenter.fit-masks-complex", lambda: PixelSegmenter().fit(X, Y + 0j), TypeError, "masks must be a boolean or integer mask"),
    ("PixelSegmenter.fit-masks-nan", lambda: PixelSegmenter().fit(X, M_NAN), ValueError, "masks with a floating dtype may hold only 0 and 1"),
    ("PixelSegmenter.fit-brain-complex", lambda: PixelSegmenter().fit(X, Y, BRAIN + 0j), TypeError, "brain must be a boolean or integer mask"),
    ("PixelSegmenter-C-negative", lambda: PixelSegmenter(C=-1.0).fit(X, Y), ValueError, "C must be a positive number, got -1.0"),
    ("PixelSegmenter-max_pixels-0", lambda: PixelSegmenter(max_pixels=0).fit(X, Y), ValueError, "max_pixels must be an integer >= 2, got 0"),
    ("PixelSegmenter-min_size-negative", lambda: PixelSegmenter(min_size=-1).fit(X, Y), ValueError, "min_size must be >= 0, got -1"),
    ("PixelSegmenter-connectivity-3", lambda: PixelSegmenter(connectivity=3).fit(X, Y), ValueError, "connectivity must be 1 .* got 3"),
    ("PixelSegmenter-mode", lambda: PixelSegmenter(mode="wrap").fit(X, Y), ValueError, "mode must be one of"),
    ("PixelSegmenter-n_jobs-0", lambda: PixelSegmenter(n_jobs=0).fit(X, Y), ValueError, "n_jobs must be None or a non-zero integer, got 0"),
    ("PixelSegmenter-mean_sizes-even", lambda: PixelSegmenter(mean_sizes=(4,)).fit(X, Y), ValueError, "mean_sizes must be an odd integer >= 1, got 4"),
    ("PixelSegmenter-normalize-Brain", lambda: PixelSegmenter(normalize="Brain").fit(X, Y), ValueError, r"normalize must be one of \('brain', 'none'\), got 'Brain'"),
    ("PixelSegmenter-verbose-negative", lambda: PixelSegmenter(verbose=-1).fit(X, Y), ValueError, "verbose must be an integer >= 0, got -1"),
    ("PixelSegmenter-hidden_layer_sizes-zero", lambda: PixelSegmenter(hidden_layer_sizes=(0,)).fit(X, Y), ValueError, "hidden_layer_sizes must be a positive integer, got 0"),
    # the fitted model
    ("PixelModel-features-None", lambda: PixelModel(None, _NET, 0.5, "proba"), TypeError, "features must be a FeatureSpec, got NoneType"),
    ("PixelModel-threshold-nan", lambda: PixelModel(_SPEC, _NET, np.nan, "proba"), ValueError, "threshold must be a finite number, got nan"),
    ("PixelModel-score_kind", lambda: PixelModel(_SPEC, _NET, 0.5, "probability"), ValueError, "score_kind must be one of"),
    ("PixelModel-network-width", lambda: PixelModel(_SPEC, Network.linear(np.zeros(3), 0.0), 0.5, "proba"), ValueError, "network must take the 28 feature columns"),
    ("PixelModel-normalize", lambda: PixelModel(_SPEC, _NET, 0.5, "proba", normalize="Brain"), ValueError, "normalize must be one of"),
    ("PixelModel.predict-None", lambda: _fit_small().model_.predict(None), TypeError, "images must be an array, got None"),
    ("PixelModel.predict-channels", lambda: _fit_small().model_.predict(X[..., :3]), ValueError, "images have 3 channels but the model was fitted on 4"),
    ("PixelSegmenter-tumour_fraction-0", lambda: PixelSegmenter(tumour_fraction=0).fit(X, Y), ValueError, r"tumour_fraction must be a number in \(0, 1\)"),
    ("PixelSegmenter.predict-None", lambda: _fit_small().predict(None), TypeError, "images must be an array, got None"),
    ("PixelSegmenter.predict-complex", lambda: _fit_small().predict(X + 0j), TypeError, "images must have a real .* dtype"),
    ("PixelSegmenter.predict-zero-size", lambda: _fit_small().predict(X[:0]), ValueError, "images must not have zero-size axes"),
    ("PixelSegmenter.predict-nan", lambda: _fit_small().predict(X_NAN), ValueError, "images must contain only finite values"),
    ("PixelSegmenter.decision_function-inf", lambda: _fit_small().decision_function(X_INF), ValueError, "images must contain only finite values"),
    ("PixelSegmenter.predict-k-too-large", lambda: PixelSegmenter(k=5, max_pixels=200, random_state=0).fit(X, Y, BRAIN).predict(X[:, :1, :1]),
     ValueError, r"k=5 is too large for mode='reflect' on 1x1 images"),
    ("PixelSegmenter.score-masks-None", lambda: _fit_small().score(X, None), TypeError, "y_true must be an array, got None"),
    # save / load / datasets
    ("save-directory-missing", lambda: save(_fit_small(), os.path.join(os.sep, "nonexistent-fastseg-dir", "m.npz")), FileNotFoundError, "folder '.*nonexistent-fastseg-dir' does not exist"),
    ("save-path-None", lambda: save(_fit_small(), None), TypeError, "path"),
    ("load-path-None", lambda: load(None), TypeError, "path"),
    ("load-directory", lambda: load(os.path.dirname(__file__)), FileNotFoundError, "no model file at"),
    ("load_slices-missing", lambda: load_slices(os.path.join(os.sep, "nonexistent-fastseg-dir")), FileNotFoundError, "no data at"),
    ("load_slices-bad-split", lambda: load_slices(os.path.dirname(__file__), split="nope"), FileNotFoundError, "has no nope_x.npy"),
    ("load_slices-path-None", lambda: load_slices(None), TypeError, "path"),
    ("load_case-missing", lambda: load_case(os.path.join(os.sep, "nonexistent-fastseg-dir")), FileNotFoundError, "no BraTS case directory at"),
    ("load_case-no-volumes", lambda: load_case(os.path.dirname(__file__)), FileNotFoundError, "holds no case fastseg can read"),
    ("load_case-path-None", lambda: load_case(None), TypeError, "case_dir"),
]


@pytest.mark.parametrize("name,call,exc,match", BAD, ids=[r.values[0] if hasattr(r, "values") else r[0] for r in BAD])
def test_bad_input_table(name, call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_the_bad_input_table_covers_every_public_callable():
    """Every callable of ``fastseg.__all__`` (and the extra public functions) has rows here or in README's list."""
    names = {(r.values[0] if hasattr(r, "values") else r[0]).split("-")[0].split(".")[0] for r in BAD}
    public = {n for n in fastseg.__all__ if callable(getattr(fastseg, n))} | {"box_means", "context_channels", "load_slices", "load_case"}
    # save's segmenter argument, MLPWeights' content and feature_offsets are covered in the test files named in tests/README.md
    assert public - names <= {"MLPWeights"}, sorted(public - names)
