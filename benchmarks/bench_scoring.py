"""Fused scoring: fastseg's linear / MLP kernels beside what a user runs today.

Run:  pytest benchmarks/bench_scoring.py --benchmark-columns=median,iqr,rounds --benchmark-sort=name
Each group holds fastseg and its baselines on the same input, measured in the same run:

- ``scoring-linear-k{3,5,7}``: numpy features (``np.pad`` + ``sliding_window_view``
  reshaped to ``(H*W, k*k*C)``) + ``LinearSVC.decision_function``; OpenCV
  ``cv2.filter2D`` per channel, summed, plus the intercept; ``fastseg.linear_scores``.
- ``scoring-mlp-k5``: numpy features + ``MLPClassifier((32,)).predict_proba``;
  ``fastseg.mlp_scores``.
- ``scoring-batch256-*``: ``fastseg`` over 256 slices with ``n_jobs=1`` and ``2``.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.svm import LinearSVC

import fastseg
from fastseg._baselines import numpy_window_features

cv2 = pytest.importorskip("cv2")


def cv2_linear_scores(image: np.ndarray, kernels: np.ndarray, intercept: float) -> np.ndarray:
    """The OpenCV baseline: one ``filter2D`` (a correlation) per channel, summed, plus the intercept."""
    total = cv2.filter2D(image[..., 0], -1, kernels[0], borderType=cv2.BORDER_REFLECT_101)
    for c in range(1, image.shape[2]):
        total += cv2.filter2D(image[..., c], -1, kernels[c], borderType=cv2.BORDER_REFLECT_101)
    return total + intercept


def _training_sample(image: np.ndarray, k: int, n: int = 3000):
    """A few thousand window rows of the slice with a synthetic, learnable label."""
    X = numpy_window_features(image, k)
    rows = np.random.default_rng(0).choice(len(X), n, replace=False)
    X = np.ascontiguousarray(X[rows])
    centre = (k * k // 2) * image.shape[2]
    y = X[:, centre + 3] + 0.5 * X[:, centre] > 0.3
    return X, y


@pytest.fixture(scope="module")
def linear_models(slice_240):
    models = {}
    for k in (3, 5, 7):
        X, y = _training_sample(slice_240, k)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            models[k] = LinearSVC().fit(X, y)
    return models


@pytest.fixture(scope="module")
def mlp_model(slice_240):
    X, y = _training_sample(slice_240, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MLPClassifier((32,), activation="relu", max_iter=30, random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def batch_256():
    """256 (240, 240, 4) float32 slices."""
    return np.random.default_rng(7).standard_normal((256, 240, 240, 4), dtype=np.float32)


@pytest.mark.parametrize("k", [3, 5, 7])
@pytest.mark.parametrize("impl", ["fastseg", "numpy+sklearn", "cv2-filter2d"])
def test_linear(benchmark, slice_240, linear_models, k, impl):
    benchmark.group = f"scoring-linear-k{k}"
    svc = linear_models[k]
    if impl == "fastseg":
        scores = benchmark(fastseg.linear_scores, slice_240, svc, k)
    elif impl == "numpy+sklearn":
        scores = benchmark(lambda: svc.decision_function(numpy_window_features(slice_240, k)).reshape(240, 240))
    else:
        kernels = np.ascontiguousarray(svc.coef_.reshape(k, k, 4).transpose(2, 0, 1), dtype=np.float32)
        intercept = float(svc.intercept_[0])
        scores = benchmark(cv2_linear_scores, slice_240, kernels, intercept)
    expected = svc.decision_function(fastseg.window_features(slice_240, k)).reshape(240, 240)
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("impl", ["fastseg", "numpy+sklearn"])
def test_mlp(benchmark, slice_240, mlp_model, impl):
    benchmark.group = "scoring-mlp-k5"
    if impl == "fastseg":
        proba = benchmark(fastseg.mlp_scores, slice_240, mlp_model, 5)
    else:
        proba = benchmark(lambda: mlp_model.predict_proba(numpy_window_features(slice_240, 5))[:, 1].reshape(240, 240))
    expected = mlp_model.predict_proba(fastseg.window_features(slice_240, 5))[:, 1].reshape(240, 240)
    np.testing.assert_allclose(proba, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_batch_linear(benchmark, batch_256, linear_models, n_jobs):
    benchmark.group = "scoring-batch256-linear-k5"
    scores = benchmark.pedantic(fastseg.linear_scores, (batch_256, linear_models[5], 5),
                                {"n_jobs": n_jobs}, rounds=7, warmup_rounds=1)
    assert scores.shape == batch_256.shape[:3]


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_batch_mlp(benchmark, batch_256, mlp_model, n_jobs):
    benchmark.group = "scoring-batch256-mlp-k5"
    proba = benchmark.pedantic(fastseg.mlp_scores, (batch_256, mlp_model, 5), {"n_jobs": n_jobs},
                               rounds=3, warmup_rounds=0)
    assert proba.shape == batch_256.shape[:3]
