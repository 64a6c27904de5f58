"""Tests of fastseg.scoring: fused linear and MLP scores against the references and scikit-learn."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression, RidgeClassifier, SGDClassifier
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits

from fastseg import _reference, linear_scores, mlp_scores, window_features
from fastseg._ext import _linear, _mlp, for_this_cpu
from fastseg.features import pad_index

MODES = ("reflect", "constant", "edge")
LIN_TOL = dict(rtol=1e-4, atol=1e-4)
MLP_TOL = dict(rtol=1e-4, atol=1e-6)


def _linear_builds():
    """Both builds of the linear kernels this CPU runs: the baseline one, and the AVX2+FMA one if it can."""
    builds = [_linear]
    if _linear.cpu_has_avx2_fma():
        from fastseg._ext import _linear_avx2

        builds.append(_linear_avx2)
    return builds


LINEAR_BUILDS = pytest.mark.parametrize("lin", _linear_builds(), ids=lambda m: m.__name__.rsplit(".", 1)[-1])


# --------------------------------------------------------------------------- helpers

def fits(k, mode, H, W):
    r = k // 2
    return not (mode == "reflect" and r >= min(H, W)) and r <= max(H, W)


def random_images(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


def random_mlp(rng, n_in, hidden, activation="relu"):
    """An MLPClassifier with random weights (fitted for one step so that it is a real fitted model)."""
    mlp = MLPClassifier(hidden, activation=activation, max_iter=1, random_state=0)
    X = rng.standard_normal((8, n_in)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(X, np.arange(8) % 2)
    mlp.coefs_ = [rng.standard_normal(w.shape) / np.sqrt(w.shape[0]) for w in mlp.coefs_]
    mlp.intercepts_ = [rng.standard_normal(b.shape) * 0.3 for b in mlp.intercepts_]
    return mlp


def ref_mlp(images, mlp, k, **kw):
    return _reference.mlp_scores(images, mlp.coefs_, mlp.intercepts_, mlp.activation, k, **kw)


# --------------------------------------------------------------------------- real data, fitted models

@pytest.fixture(scope="module")
def real(brats_train, brats_test):
    """Brain-pixel samples of the real slices and the test images (a few test slices keep it fast)."""
    rng = np.random.default_rng(0)
    brain = brats_train["brain"]
    pick = np.zeros(brain.shape, dtype=bool)
    flat = np.flatnonzero(brain)
    pick.flat[rng.choice(flat, 3000, replace=False)] = True
    return {"x": brats_train["x"], "pick": pick, "y": brats_train["y"][pick],
            "test": brats_test["x"], "test_brain": brats_test["brain"]}


def assert_scores_close(got, expected):
    """LIN_TOL, with atol growing for badly scaled models (float32 accumulation error ~ 1e-6 of the range)."""
    atol = max(LIN_TOL["atol"], 1e-6 * float(np.abs(expected).max()))
    np.testing.assert_allclose(got, expected, rtol=LIN_TOL["rtol"], atol=atol)


def _fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


LINEAR_MODELS = {
    "svc": lambda: LinearSVC(),
    "sgd": lambda: SGDClassifier(random_state=0),
    "logreg": lambda: LogisticRegression(max_iter=300),
    "ridge": lambda: RidgeClassifier(),
    "scaled-svc": lambda: make_pipeline(StandardScaler(), LinearSVC()),
    "scaled-logreg": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)),
    "nomean-svc": lambda: make_pipeline(StandardScaler(with_mean=False), LinearSVC()),
    "nostd-svc": lambda: make_pipeline(StandardScaler(with_std=False), LinearSVC()),
    "two-scalers": lambda: make_pipeline(StandardScaler(), "passthrough", StandardScaler(with_mean=False),
                                         LinearSVC()),
}


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("name", sorted(LINEAR_MODELS))
def test_linear_matches_sklearn_on_real_data(real, name, k):
    X = window_features(real["x"], k, mask=real["pick"])
    model = _fit(LINEAR_MODELS[name](), X, real["y"])
    images = real["test"]
    got = linear_scores(images, model, k)
    expected = model.decision_function(window_features(images, k)).reshape(got.shape)
    assert_scores_close(got, expected)
    # Same on the brain only, with the background filled.
    masked = linear_scores(images, model, k, mask=real["test_brain"], fill_value=-99)
    assert_scores_close(masked[real["test_brain"]], expected[real["test_brain"]])
    assert np.all(masked[~real["test_brain"]] == -99)


MLP_MODELS = {
    "relu32": lambda: MLPClassifier((32,), max_iter=60, random_state=0),
    "tanh-2layers": lambda: MLPClassifier((16, 8), activation="tanh", max_iter=60, random_state=0),
    "logistic": lambda: MLPClassifier((12,), activation="logistic", max_iter=60, random_state=0),
    "identity": lambda: MLPClassifier((6,), activation="identity", max_iter=60, random_state=0),
    "scaled-relu": lambda: make_pipeline(StandardScaler(), MLPClassifier((32, 16), max_iter=60, random_state=0)),
    "nostd-relu": lambda: make_pipeline(StandardScaler(with_std=False), MLPClassifier((8,), max_iter=60,
                                                                                     random_state=0)),
}


@pytest.mark.parametrize("name", sorted(MLP_MODELS))
def test_mlp_matches_sklearn_on_real_data(real, name):
    k = 3 if "2layers" in name else 5
    X = window_features(real["x"], k, mask=real["pick"])
    model = _fit(MLP_MODELS[name](), X, real["y"])
    images = real["test"]
    got = mlp_scores(images, model, k)
    expected = model.predict_proba(window_features(images, k))[:, 1].reshape(got.shape)
    np.testing.assert_allclose(got, expected, **MLP_TOL)
    masked = mlp_scores(images, model, k, mask=real["test_brain"], fill_value=np.nan)
    np.testing.assert_allclose(masked[real["test_brain"]], expected[real["test_brain"]], **MLP_TOL)
    assert np.isnan(masked[~real["test_brain"]]).all()


def test_real_single_image_and_threads(real):
    k = 5
    X = window_features(real["x"], k, mask=real["pick"])
    svc = _fit(LinearSVC(), X, real["y"])
    mlp = _fit(MLPClassifier((32,), max_iter=30, random_state=0), X, real["y"])
    images = real["test"]
    for func, model in ((linear_scores, svc), (mlp_scores, mlp)):
        batch = func(images, model, k)
        assert batch.shape == images.shape[:3] and batch.dtype == np.float32
        single = func(images[1], model, k)
        assert single.shape == images.shape[1:3]
        np.testing.assert_array_equal(single, batch[1])
        np.testing.assert_array_equal(func(images, model, k, n_jobs=2), batch)
        np.testing.assert_array_equal(func(images, model, k, n_jobs=-1), batch)


# --------------------------------------------------------------------------- random data vs the references

@pytest.mark.parametrize("k", [1, 3, 5, 7])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("C", [1, 3, 4])
def test_linear_matches_reference_grid(k, mode, C):
    rng = np.random.default_rng(k * 100 + C)
    # 70 columns: a full 64-pixel register block plus a tail block.
    images = random_images(rng, (2, 9, 70, C))
    coef = rng.standard_normal(k * k * C)
    got = linear_scores(images, (coef, 0.25), k, mode=mode)
    np.testing.assert_allclose(got, _reference.linear_scores(images, coef, 0.25, k, mode=mode), **LIN_TOL)
    X = window_features(images, k, mode=mode)
    np.testing.assert_allclose(got.ravel(), X.astype(np.float64) @ coef + 0.25, **LIN_TOL)


@pytest.mark.parametrize("k", [1, 3, 5, 7])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("C", [1, 3, 4])
def test_mlp_matches_reference_grid(k, mode, C):
    rng = np.random.default_rng(k * 100 + C + 7)
    images = random_images(rng, (2, 9, 23, C))
    mlp = random_mlp(rng, k * k * C, (5, 3), activation=("relu", "tanh", "logistic")[k % 3])
    got = mlp_scores(images, mlp, k, mode=mode)
    np.testing.assert_allclose(got, ref_mlp(images, mlp, k, mode=mode), **MLP_TOL)
    X = window_features(images, k, mode=mode)
    np.testing.assert_allclose(got.ravel(), mlp.predict_proba(X)[:, 1], **MLP_TOL)


@pytest.mark.parametrize(
    "shape", [(1, 1, 1), (1, 1, 17), (1, 17, 1), (3, 2, 3), (1, 5, 64), (1, 4, 65), (1, 3, 300), (1, 300, 2)]
)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k", [1, 3, 5])
def test_odd_shapes(shape, mode, k):
    N, H, W = shape
    if not fits(k, mode, H, W):
        with pytest.raises(ValueError, match="k=.* too large"):
            linear_scores(np.zeros((N, H, W, 2), np.float32), (np.zeros(k * k * 2), 0.0), k, mode=mode)
        return
    rng = np.random.default_rng(sum(shape) + k)
    images = random_images(rng, (N, H, W, 2))
    coef = rng.standard_normal(k * k * 2)
    np.testing.assert_allclose(linear_scores(images, (coef, -1.0), k, mode=mode),
                               _reference.linear_scores(images, coef, -1.0, k, mode=mode), **LIN_TOL)
    mlp = random_mlp(rng, k * k * 2, (4,))
    np.testing.assert_allclose(mlp_scores(images, mlp, k, mode=mode), ref_mlp(images, mlp, k, mode=mode),
                               **MLP_TOL)


@pytest.mark.parametrize("density", [0.0, 0.02, 0.5, 1.0])
@pytest.mark.parametrize("mode", MODES)
def test_masks(density, mode):
    rng = np.random.default_rng(int(density * 100))
    k, C = 5, 3
    images = random_images(rng, (3, 11, 150, C))
    mask = rng.random(images.shape[:3]) < density
    coef = rng.standard_normal(k * k * C)
    for fill in (0.0, -3.5, np.nan):
        got = linear_scores(images, (coef, 0.5), k, mode=mode, mask=mask, fill_value=fill)
        ref = _reference.linear_scores(images, coef, 0.5, k, mode=mode, mask=mask, fill_value=fill)
        np.testing.assert_allclose(got, ref, equal_nan=True, **LIN_TOL)
    mlp = random_mlp(rng, k * k * C, (6,), activation="tanh")
    got = mlp_scores(images, mlp, k, mode=mode, mask=mask, fill_value=-1)
    np.testing.assert_allclose(got, ref_mlp(images, mlp, k, mode=mode, mask=mask, fill_value=-1), **MLP_TOL)
    # Integer masks (non-zero = selected) give the same result.
    got_int = mlp_scores(images, mlp, k, mode=mode, mask=mask.astype(np.int16) * 7, fill_value=-1)
    np.testing.assert_array_equal(got_int, got)


def test_single_image_mask():
    rng = np.random.default_rng(3)
    image = random_images(rng, (10, 12, 4))
    mask = rng.random((10, 12)) < 0.4
    coef = rng.standard_normal(9 * 4)
    got = linear_scores(image, (coef, 0.0), 3, mask=mask, fill_value=7.0)
    assert got.shape == (10, 12)
    ref = _reference.linear_scores(image[None], coef, 0.0, 3, mask=mask[None], fill_value=7.0)[0]
    np.testing.assert_allclose(got, ref, **LIN_TOL)


@pytest.mark.parametrize("layout", ["fortran", "strided", "readonly", "float64", "int16", "list"])
def test_memory_layouts_and_dtypes(layout):
    rng = np.random.default_rng(11)
    base = rng.standard_normal((2, 12, 20, 3)) * 10
    if layout == "fortran":
        images = np.asfortranarray(base.astype(np.float32))
        assert images.flags.f_contiguous and not images.flags.c_contiguous
    elif layout == "strided":
        images = np.repeat(base.astype(np.float32), 2, axis=2)[:, :, ::2]
        assert not images.flags.c_contiguous
    elif layout == "readonly":
        images = base.astype(np.float32)
        images.setflags(write=False)
        assert not images.flags.writeable
    elif layout == "float64":
        images = base
    elif layout == "int16":
        images = base.astype(np.int16)
    else:
        images = base.astype(np.float32).tolist()
    expected_input = np.array(images, dtype=np.float32)
    before = np.array(images, copy=True)
    coef = rng.standard_normal(27)
    mlp = random_mlp(rng, 27, (4,))
    mask = np.zeros((2, 12, 20), dtype=bool)
    mask[:, 3:9, 5:15] = True
    if layout == "fortran":
        mask = np.asfortranarray(mask)
    got = linear_scores(images, (coef, 1.0), 3, mask=mask)
    np.testing.assert_allclose(got, _reference.linear_scores(expected_input, coef, 1.0, 3, mask=mask), **LIN_TOL)
    got = mlp_scores(images, mlp, 3, mask=mask)
    np.testing.assert_allclose(got, ref_mlp(expected_input, mlp, 3, mask=mask), **MLP_TOL)
    np.testing.assert_array_equal(np.array(images), before)


def test_inputs_unchanged():
    rng = np.random.default_rng(5)
    images = random_images(rng, (2, 8, 9, 4))
    mask = rng.random((2, 8, 9)) < 0.5
    coef = rng.standard_normal(9 * 4)
    intercept = np.array([0.5])
    mlp = make_pipeline(StandardScaler(), random_mlp(rng, 36, (3,)))
    mlp.steps[0] = ("standardscaler", StandardScaler().fit(window_features(images, 3)))
    copies = [a.copy() for a in (images, mask, coef, intercept)]
    weights = [w.copy() for w in mlp[-1].coefs_] + [mlp[0].mean_.copy(), mlp[0].scale_.copy()]
    linear_scores(images, (coef, intercept), 3, mask=mask, n_jobs=2)
    mlp_scores(images, mlp, 3, mask=mask, n_jobs=2)
    for a, c in zip((images, mask, coef, intercept), copies):
        np.testing.assert_array_equal(a, c)
    for a, c in zip(list(mlp[-1].coefs_) + [mlp[0].mean_, mlp[0].scale_], weights):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("func", ["linear", "mlp"])
def test_threads_identical(func):
    rng = np.random.default_rng(8)
    images = random_images(rng, (7, 16, 33, 4))
    mask = rng.random(images.shape[:3]) < 0.6
    if func == "linear":
        model, score = (rng.standard_normal(100), 0.1), linear_scores
    else:
        model, score = random_mlp(rng, 100, (32,)), mlp_scores
    serial = score(images, model, 5, mask=mask)
    for n_jobs in (2, 3, -1, 16):
        np.testing.assert_array_equal(score(images, model, 5, mask=mask, n_jobs=n_jobs), serial)
    with threadpool_limits(limits=1):
        np.testing.assert_array_equal(score(images, model, 5, mask=mask, n_jobs=-1), serial)


@pytest.mark.parametrize("func", ["linear", "mlp"])
@pytest.mark.parametrize("single", [False, True])
def test_out_receives_the_scores(func, single):
    rng = np.random.default_rng(9)
    images = random_images(rng, (3, 9, 11, 4))
    mask = rng.random(images.shape[:3]) < 0.5
    if single:
        images, mask = images[1], mask[1]
    if func == "linear":
        model, score = (rng.standard_normal(36), 0.1), linear_scores
    else:
        model, score = random_mlp(rng, 36, (8,)), mlp_scores
    expected = score(images, model, 3, mask=mask, fill_value=-2.0)
    out = np.full(expected.shape, np.nan, dtype=np.float32)
    result = score(images, model, 3, mask=mask, fill_value=-2.0, out=out)
    assert result is out
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("func", ["linear", "mlp"])
def test_bad_out_rejected(func):
    rng = np.random.default_rng(10)
    images = random_images(rng, (2, 6, 7, 4))
    model, score = ((rng.standard_normal(36), 0.1), linear_scores) if func == "linear" else \
        (random_mlp(rng, 36, (4,)), mlp_scores)
    with pytest.raises(ValueError, match=r"out must have shape \(2, 6, 7\), got shape \(2, 6, 6\)"):
        score(images, model, 3, out=np.empty((2, 6, 6), np.float32))
    with pytest.raises(TypeError, match="out must have dtype float32, got dtype float64"):
        score(images, model, 3, out=np.empty((2, 6, 7)))
    with pytest.raises(ValueError, match="out must be C-contiguous"):
        score(images, model, 3, out=np.empty((2, 7, 6), np.float32).transpose(0, 2, 1))
    images = np.ascontiguousarray(images)
    with pytest.raises(ValueError, match="out must not share memory with the input arrays"):
        score(images, model, 3, out=images.reshape(-1)[:2 * 6 * 7].reshape(2, 6, 7))
    with pytest.raises(TypeError, match="out must be a numpy.ndarray, got list"):
        score(images, model, 3, out=[0.0])


def test_pair_forms():
    rng = np.random.default_rng(2)
    images = random_images(rng, (1, 6, 7, 2))
    coef = rng.standard_normal(18)
    expected = linear_scores(images, (coef, 0.5), 3)
    np.testing.assert_array_equal(linear_scores(images, [coef[None, :], np.array([0.5])], 3), expected)
    np.testing.assert_array_equal(linear_scores(images, (coef.tolist(), np.float32(0.5)), 3), expected)


def test_scaler_folding_matches_pipeline_random():
    rng = np.random.default_rng(4)
    images = (random_images(rng, (2, 10, 12, 4)) * 3 + 5).astype(np.float32)
    X = window_features(images, 3)
    y = X[:, 16] > 5
    for scaler in (StandardScaler(), StandardScaler(with_mean=False), StandardScaler(with_std=False)):
        pipe = _fit(make_pipeline(scaler, LogisticRegression(max_iter=500)), X, y)
        np.testing.assert_allclose(linear_scores(images, pipe, 3).ravel(), pipe.decision_function(X), **LIN_TOL)
        pipe = _fit(make_pipeline(scaler, MLPClassifier((5,), max_iter=50, random_state=0)), X, y)
        np.testing.assert_allclose(mlp_scores(images, pipe, 3).ravel(), pipe.predict_proba(X)[:, 1], **MLP_TOL)


# --------------------------------------------------------------------------- hypothesis

@st.composite
def small_case(draw):
    H = draw(st.integers(1, 7))
    W = draw(st.integers(1, 9))
    C = draw(st.integers(1, 4))
    k = draw(st.sampled_from([1, 3, 5]))
    mode = draw(st.sampled_from(MODES))
    if not fits(k, mode, H, W):
        mode = "edge" if k // 2 <= max(H, W) else None
    if mode is None:
        k = 1
        mode = "reflect"
    seed = draw(st.integers(0, 2**32 - 1))
    use_mask = draw(st.booleans())
    return H, W, C, k, mode, seed, use_mask


@settings(deadline=None)  # example budget: the hypothesis profile (tests/conftest.py)
@given(small_case())
def test_hypothesis_linear_and_mlp_match_reference(case):
    H, W, C, k, mode, seed, use_mask = case
    rng = np.random.default_rng(seed)
    images = random_images(rng, (2, H, W, C))
    mask = rng.random((2, H, W)) < 0.5 if use_mask else None
    coef = rng.standard_normal(k * k * C)
    np.testing.assert_allclose(
        linear_scores(images, (coef, 0.3), k, mode=mode, mask=mask, fill_value=-2),
        _reference.linear_scores(images, coef, 0.3, k, mode=mode, mask=mask, fill_value=-2),
        **LIN_TOL,
    )
    mlp = random_mlp(rng, k * k * C, (3,), activation="tanh")
    np.testing.assert_allclose(
        mlp_scores(images, mlp, k, mode=mode, mask=mask, fill_value=-2),
        ref_mlp(images, mlp, k, mode=mode, mask=mask, fill_value=-2),
        **MLP_TOL,
    )


# --------------------------------------------------------------------------- bad input

@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(0)
    images = random_images(rng, (2, 8, 8, 4))
    X = window_features(images, 3)
    y = X[:, 16] > 0
    svc = _fit(LinearSVC(), X, y)
    mlp = _fit(MLPClassifier((4,), max_iter=20, random_state=0), X, y)
    y3 = np.digitize(X[:, 16], [-0.5, 0.5])
    return {"images": images, "X": X, "y": y, "svc": svc, "mlp": mlp,
            "svc3": _fit(LinearSVC(), X, y3), "mlp3": _fit(MLPClassifier((4,), max_iter=5), X, y3)}


def test_linear_bad_coef_length(small):
    with pytest.raises(ValueError, match=r"model coef takes 35 input features.*k=3.*C=4.*36"):
        linear_scores(small["images"], (np.zeros(35), 0.0), 3)
    with pytest.raises(ValueError, match=r"coef must have shape"):
        linear_scores(small["images"], (np.zeros((2, 36)), 0.0), 3)
    with pytest.raises(ValueError, match=r"intercept must be a scalar"):
        linear_scores(small["images"], (np.zeros(36), np.zeros(2)), 3)
    with pytest.raises(ValueError, match=r"\(coef, intercept\) pair"):
        linear_scores(small["images"], (np.zeros(36),), 3)
    with pytest.raises(TypeError, match=r"model coef must have a real dtype"):
        linear_scores(small["images"], (np.array(["a"] * 36), 0.0), 3)


def test_not_fitted(small):
    with pytest.raises(NotFittedError):
        linear_scores(small["images"], LinearSVC(), 3)
    with pytest.raises(NotFittedError):
        mlp_scores(small["images"], MLPClassifier(), 3)
    with pytest.raises(NotFittedError):
        linear_scores(small["images"], make_pipeline(StandardScaler(), small["svc"]), 3)


def test_multiclass(small):
    with pytest.raises(ValueError, match=r"model must be a binary classifier.*3 classes"):
        linear_scores(small["images"], small["svc3"], 3)
    with pytest.raises(ValueError, match=r"model must be a binary MLPClassifier.*3 classes"):
        mlp_scores(small["images"], small["mlp3"], 3)


def test_k_mismatch(small):
    with pytest.raises(ValueError, match=r"model takes 36 input features, but k=5 .*100"):
        linear_scores(small["images"], small["svc"], 5)
    with pytest.raises(ValueError, match=r"model takes 36 input features, but k=1 .*4"):
        mlp_scores(small["images"], small["mlp"], 1)


def test_channel_mismatch(small):
    three = small["images"][..., :3]
    with pytest.raises(ValueError, match=r"model takes 36 input features.*C=3 channels give k\*k\*C = 27"):
        linear_scores(three, small["svc"], 3)
    with pytest.raises(ValueError, match=r"model takes 36 input features.*C=3"):
        mlp_scores(three, small["mlp"], 3)
    scaler = StandardScaler().fit(window_features(three, 3))
    pipe = make_pipeline(scaler, small["svc"])
    with pytest.raises(ValueError, match=r"model \(StandardScaler\) takes 27 input features"):
        linear_scores(small["images"], pipe, 3)


def test_non_finite_weights(small):
    coef = np.zeros(36)
    coef[3] = np.nan
    with pytest.raises(ValueError, match=r"model coef must contain only finite values"):
        linear_scores(small["images"], (coef, 0.0), 3)
    with pytest.raises(ValueError, match=r"model intercept must contain only finite values"):
        linear_scores(small["images"], (np.zeros(36), np.inf), 3)
    mlp = random_mlp(np.random.default_rng(0), 36, (4,))
    mlp.coefs_[1] = mlp.coefs_[1].copy()
    mlp.coefs_[1][0, 0] = np.inf
    with pytest.raises(ValueError, match=r"model coefs\[1\] must contain only finite values"):
        mlp_scores(small["images"], mlp, 3)
    huge = (np.full(36, 1e39), 0.0)   # finite in float64, inf once cast to float32 / folded
    pipe = make_pipeline(StandardScaler(), small["svc"])
    pipe[0].fit(small["X"])
    pipe[0].scale_ = np.full(36, 1e-300)
    with pytest.raises(ValueError, match=r"model weights are not finite in float32"):
        linear_scores(small["images"], pipe, 3)
    with pytest.raises(ValueError, match=r"model weights are not finite in float32"):
        linear_scores(small["images"], huge, 3)


def test_wrong_model_types(small):
    with pytest.raises(TypeError, match=r"model must be a fitted linear classifier.*MLPClassifier"):
        linear_scores(small["images"], small["mlp"], 3)
    with pytest.raises(TypeError, match=r"model must be a fitted MLPClassifier.*LinearSVC"):
        mlp_scores(small["images"], small["svc"], 3)
    reg = _fit(MLPRegressor(hidden_layer_sizes=(3,), max_iter=5), small["X"], small["y"].astype(float))
    with pytest.raises(TypeError, match=r"model must be a fitted MLPClassifier"):
        mlp_scores(small["images"], reg, 3)
    with pytest.raises(TypeError, match=r"pipeline step 'minmaxscaler' is MinMaxScaler"):
        linear_scores(small["images"], make_pipeline(MinMaxScaler().fit(small["X"]), small["svc"]), 3)
    with pytest.raises(TypeError, match=r"model must be a fitted linear classifier"):
        linear_scores(small["images"], "svc", 3)


def test_bad_mask(small):
    images = small["images"]
    with pytest.raises(ValueError, match=r"mask must have shape \(2, 8, 8\)"):
        linear_scores(images, small["svc"], 3, mask=np.ones((8, 8), bool))
    with pytest.raises(ValueError, match=r"mask must have shape \(8, 8\)"):
        mlp_scores(images[0], small["mlp"], 3, mask=np.ones((1, 8, 8), bool))
    with pytest.raises(ValueError, match=r"mask with a floating dtype may hold only 0 and 1"):
        linear_scores(images, small["svc"], 3, mask=np.full((2, 8, 8), 0.5))
    with pytest.raises(TypeError, match=r"mask must be a boolean or integer mask"):
        mlp_scores(images, small["mlp"], 3, mask=np.full((2, 8, 8), "x"))


def test_bad_arguments(small):
    images = small["images"]
    for score, model in ((linear_scores, small["svc"]), (mlp_scores, small["mlp"])):
        with pytest.raises(TypeError, match=r"fill_value must be a real number"):
            score(images, model, 3, fill_value="nan")
        with pytest.raises(ValueError, match=r"n_jobs must be None or a non-zero integer"):
            score(images, model, 3, n_jobs=0)
        with pytest.raises(ValueError, match=r"mode must be one of"):
            score(images, model, 3, mode="wrap")
        with pytest.raises(ValueError, match=r"k must be an odd integer"):
            score(images, model, 4)
        with pytest.raises(ValueError, match=r"images must contain only finite values"):
            score(np.where(images > 2, np.nan, images), model, 3)
        with pytest.raises(ValueError, match=r"images must have shape \(H, W, C\) or \(N, H, W, C\)"):
            score(images[0, 0], model, 3)


@LINEAR_BUILDS
def test_kernels_check_buffers(lin):
    """The kernels' own O(1) checks that keep memory safe when called directly."""
    _linear = lin
    images = np.zeros((1, 5, 6, 2), np.float32)
    rowmap, colmap = pad_index(5, 1, "edge"), pad_index(6, 1, "edge")
    weights = np.zeros((3, 3, 2), np.float32)
    out = np.empty((1, 5, 6), np.float32)
    planes = np.empty((2, 3, _linear.BLOCK + 2), np.float32)
    _linear.linear_scores_planar(images, rowmap, colmap, weights, 0.0, None, 0.0, out, planes)
    with pytest.raises(ValueError, match="planes must have shape"):
        _linear.linear_scores_planar(images, rowmap, colmap, weights, 0.0, None, 0.0, out,
                                     np.empty((2, 7, 8), np.float32))
    with pytest.raises(ValueError, match=r"weights must have shape \(k, k, 2\)"):
        _linear.linear_scores_planar(images, rowmap, colmap, weights[..., :1].copy(), 0.0, None, 0.0, out, planes)
    with pytest.raises(ValueError, match="rowmap holds an index outside"):
        _linear.linear_scores_planar(images, rowmap + 1, colmap, weights, 0.0, None, 0.0, out, planes)
    with pytest.raises(ValueError, match="out must have shape"):
        _linear.linear_scores_planar(images, rowmap, colmap, weights, 0.0, None, 0.0, out[:, :4].copy(), planes)
    with pytest.raises(ValueError, match="mask must have shape"):
        _linear.linear_scores_planar(images, rowmap, colmap, weights, 0.0, np.ones((1, 5, 5), np.uint8), 0.0,
                                     out, planes)
    with pytest.raises(ValueError, match="interleaved kernel needs C == 4"):
        _linear.linear_scores_interleaved(images, rowmap, colmap, weights, 0.0, None, 0.0, out,
                                          np.empty((7, 8, 2), np.float32))
    assert _linear.simd_path() == ("avx2+fma" if _linear.__name__.endswith("_avx2") else "baseline")
    assert _linear.interleaved_ok(4, 20) == (_linear.simd_path() == "avx2+fma")
    if _linear.interleaved_ok(4, 20):
        images4 = np.zeros((1, 5, 20, 4), np.float32)
        with pytest.raises(ValueError, match="padded must have shape"):
            _linear.linear_scores_interleaved(images4, rowmap, pad_index(20, 1, "edge"), np.zeros((3, 3, 4), np.float32),
                                              0.0, None, 0.0, np.empty((1, 5, 20), np.float32),
                                              np.empty((7, 21, 4), np.float32))

    weights = np.zeros(18 * 4 + 4, np.float32)
    biases = np.zeros(5, np.float32)
    sizes = np.array([18, 4, 1], np.intp)
    padded = np.empty((7, 8, 2), np.float32)
    tile, act, index = np.empty((16, 18), np.float32), np.empty((2, 64), np.float32), np.empty(16, np.intp)
    _mlp.mlp_scores(images, rowmap, colmap, 3, weights, biases, sizes, 1, None, 0.0, out, padded, tile, act, index, 0, 30)
    np.testing.assert_array_equal(out, 0.5)
    with pytest.raises(ValueError, match="weights/biases must hold 76/5"):
        _mlp.mlp_scores(images, rowmap, colmap, 3, weights[1:], biases, sizes, 1, None, 0.0, out, padded, tile,
                        act, index, 0, 30)
    with pytest.raises(ValueError, match=r"act must have shape \(2, >= 64\)"):
        _mlp.mlp_scores(images, rowmap, colmap, 3, weights, biases, sizes, 1, None, 0.0, out, padded, tile,
                        act[:, :10].copy(), index, 0, 30)
    with pytest.raises(ValueError, match="sizes must run from k\\*k\\*C = 18 to 1"):
        _mlp.mlp_scores(images, rowmap, colmap, 3, weights, biases, np.array([18, 4, 2], np.intp), 1, None, 0.0,
                        out, padded, tile, act, index, 0, 30)
    with pytest.raises(ValueError, match="index must hold at least 16"):
        _mlp.mlp_scores(images, rowmap, colmap, 3, weights, biases, sizes, 1, None, 0.0, out, padded, tile, act,
                        index[:3], 0, 30)
    with pytest.raises(ValueError, match="positions must satisfy 0 <= pos_start <= pos_stop <= 30"):
        _mlp.mlp_scores(images, rowmap, colmap, 3, weights, biases, sizes, 1, None, 0.0, out, padded, tile, act,
                        index, 10, 31)


@pytest.mark.parametrize("C", [1, 3, 4, 5])
@pytest.mark.parametrize("where", [(0, 0, 0), (1, 4, 6), (1, 8, 10)])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_images_rejected(C, where, bad):
    """The linear kernel's check rides on its padding copy: every pixel, every channel, tails too."""
    images = np.random.default_rng(0).random((2, 9, 11, C), dtype=np.float32)
    images[where + (C - 1,)] = bad
    for mode in MODES:
        with pytest.raises(ValueError, match=r"images must contain only finite values, got 1 NaN"):
            linear_scores(images, (np.zeros(9 * C), 0.0), 3, mode=mode, mask=np.zeros((2, 9, 11), bool))


@pytest.mark.parametrize("C", [1, 4])
def test_non_finite_images_rejected_without_mask(C):
    """Without a mask the kernels detect NaN/inf through the pixel's own (non-finite) score."""
    for where in [(0, 0, 0), (1, 8, 39), (0, 4, 17)]:
        images = np.random.default_rng(1).random((2, 9, 40, C), dtype=np.float32)
        images[where + (C - 1,)] = np.inf
        coef = np.zeros(9 * C)  # even all-zero weights: 0 * inf is NaN
        for mode in MODES:
            with pytest.raises(ValueError, match=r"images must contain only finite values, got 1 NaN"):
                linear_scores(images, (coef, 0.0), 3, mode=mode)


@LINEAR_BUILDS
@pytest.mark.parametrize("C", [1, 3, 4])
@pytest.mark.parametrize("k", [1, 3, 5, 7, 9])
@pytest.mark.parametrize("W", [16, 17, 31, 64, 100])
def test_both_linear_layouts(lin, C, k, W):
    """The planar kernel (any C, any CPU) and the interleaved one (C=4, AVX2 build) against the
    reference, in each build this CPU runs (k = 3, 5, 7 take the literal-size loops)."""
    _linear = lin
    rng = np.random.default_rng(k * W + C)
    H = 11
    images = random_images(rng, (2, H, W, C))
    coef = rng.standard_normal(k * k * C)
    mask = rng.random((2, H, W)) < 0.3
    r = k // 2
    rowmap, colmap = pad_index(H, r, "reflect"), pad_index(W, r, "reflect")
    weights = coef.astype(np.float32).reshape(k, k, C)
    for m in (None, mask):
        ref = _reference.linear_scores(images, coef, 0.5, k, mask=m, fill_value=-1.0)
        out = np.empty((2, H, W), np.float32)
        planes = np.empty((C, 3 + 2 * r, -(-W // _linear.BLOCK) * _linear.BLOCK + 2 * r), np.float32)
        uint8 = None if m is None else m.view(np.uint8)
        assert _linear.linear_scores_planar(images, rowmap, colmap, weights, 0.5, uint8, -1.0, out, planes) == 0
        np.testing.assert_allclose(out, ref, **LIN_TOL)
        if _linear.interleaved_ok(C, W):
            out = np.empty((2, H, W), np.float32)
            padded = np.empty((H + 2 * r, W + 2 * r, C), np.float32)
            assert _linear.linear_scores_interleaved(images, rowmap, colmap, weights, 0.5, uint8, -1.0, out,
                                                     padded) == 0
            np.testing.assert_allclose(out, ref, **LIN_TOL)


@LINEAR_BUILDS
@pytest.mark.parametrize("C", [1, 4])
def test_linear_kernels_count_non_finite_images(lin, C):
    """Each build's kernels count the images with a non-finite score, with and without a mask."""
    rng = np.random.default_rng(C)
    H, W = 9, 40
    images = random_images(rng, (3, H, W, C))
    images[1, 4, 33, C - 1] = np.nan
    rowmap, colmap = pad_index(H, 1, "edge"), pad_index(W, 1, "edge")
    weights = rng.standard_normal((3, 3, C)).astype(np.float32)
    for mask in (None, np.ones((3, H, W), np.uint8)):
        out = np.empty((3, H, W), np.float32)
        planes = np.empty((C, 4, -(-W // lin.BLOCK) * lin.BLOCK + 2), np.float32)
        assert lin.linear_scores_planar(images, rowmap, colmap, weights, 0.0, mask, 0.0, out, planes) == 1
        if lin.interleaved_ok(C, W):
            assert lin.linear_scores_interleaved(images, rowmap, colmap, weights, 0.0, mask, 0.0, out,
                                                 np.empty((H + 2, W + 2, C), np.float32)) == 1


def test_scoring_uses_the_build_for_this_cpu():
    """fastseg.scoring runs the AVX2+FMA build of the linear kernels where the CPU runs it."""
    from fastseg import scoring

    assert scoring._linear is for_this_cpu("_linear")
    expected = "fastseg._ext._linear_avx2" if _linear.cpu_has_avx2_fma() else "fastseg._ext._linear"
    assert scoring._linear.__name__ == expected


def test_huge_finite_images_accepted():
    images = np.full((1, 6, 7, 4), 3e38, dtype=np.float32)
    scores = linear_scores(images, (np.full(36, 1e-3), 0.0), 3)
    np.testing.assert_allclose(scores, 36 * 3e35, rtol=1e-5)


def test_mlp_weights_container():
    from fastseg.scoring import MLPWeights

    rng = np.random.default_rng(9)
    images = random_images(rng, (2, 7, 20, 4))
    mlp = random_mlp(rng, 36, (6, 3), activation="logistic")
    weights = MLPWeights(mlp.coefs_, mlp.intercepts_, mlp.activation)
    np.testing.assert_array_equal(mlp_scores(images, weights, 3), mlp_scores(images, mlp, 3))
    np.testing.assert_allclose(mlp_scores(images, weights, 3), ref_mlp(images, mlp, 3), **MLP_TOL)
    with pytest.raises(ValueError, match=r"model activation must be one of"):
        mlp_scores(images, weights._replace(activation="softmax"), 3)
    with pytest.raises(TypeError, match=r"model activation must be one of"):
        mlp_scores(images, weights._replace(activation=None), 3)
    with pytest.raises(ValueError, match=r"binary MLP with one output unit, got 2"):
        mlp_scores(images, MLPWeights([np.ones((36, 2))], [np.zeros(2)], "relu"), 3)
    with pytest.raises(ValueError, match=r"layer 1 weights \(5, 1\) and intercepts \(1,\) do not chain"):
        mlp_scores(images, MLPWeights([np.ones((36, 4)), np.ones((5, 1))], [np.zeros(4), np.zeros(1)], "relu"), 3)
    with pytest.raises(ValueError, match=r"one intercept vector per layer"):
        mlp_scores(images, MLPWeights([np.ones((36, 1))], [], "relu"), 3)
    with pytest.raises(ValueError, match=r"model takes 36 input features, but k=5"):
        mlp_scores(images, weights, 5)



@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # a deliberately short fit
@pytest.mark.parametrize("density", [None, 0.001, 0.3, 1.0])
@pytest.mark.parametrize("n_jobs", [2, 3, -1])
def test_mlp_threads_sharing_one_image_give_identical_results(rng, density, n_jobs):
    """Fewer images than threads: the image is split on tile boundaries, so every GEMM is the serial one."""
    x = rng.standard_normal((2, 47, 53, 4)).astype(np.float32)
    X = rng.standard_normal((400, 36)).astype(np.float32)
    mlp = MLPClassifier((7,), max_iter=20, random_state=0).fit(X, X[:, 3] > 0)
    mask = None if density is None else rng.random((2, 47, 53)) < density
    serial = mlp_scores(x, mlp, 3, mask=mask)
    np.testing.assert_array_equal(mlp_scores(x[:1], mlp, 3, mask=None if mask is None else mask[:1], n_jobs=n_jobs),
                                  serial[:1])
    np.testing.assert_array_equal(mlp_scores(x, mlp, 3, mask=mask, n_jobs=n_jobs), serial)


# ----------------------------------------------------------------------------- MLP over feature rows

@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # a deliberately short fit
@pytest.mark.parametrize("hidden", [(7,), (16, 5)])
@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
@pytest.mark.parametrize("n_rows", [0, 1, 255, 256, 257, 1000])
def test_mlp_row_scores_equal_predict_proba(rng, hidden, activation, n_rows):
    from sklearn.neural_network import MLPClassifier

    from fastseg.scoring import OUTPUT_CODES, MLPWeights, Network, _network_row_scores

    X = rng.standard_normal((max(n_rows, 40), 11)).astype(np.float32)
    y = X[:, 0] + X[:, 3] ** 2 > 1
    mlp = MLPClassifier(hidden, activation=activation, max_iter=50, random_state=0).fit(X, y)
    rows = X[:n_rows]
    weights = MLPWeights(mlp.coefs_, mlp.intercepts_, activation)
    got = _network_row_scores(rows, Network.mlp(*weights), OUTPUT_CODES["proba"])
    assert got.shape == (n_rows,) and got.dtype == np.float32
    if n_rows:
        np.testing.assert_allclose(got, mlp.predict_proba(rows)[:, 1], rtol=1e-4, atol=1e-6)
    for n_jobs in (2, 3):
        np.testing.assert_array_equal(_network_row_scores(rows, Network.mlp(*weights), OUTPUT_CODES["proba"], n_jobs), got)


def test_mlp_rows_kernel_rejects_inconsistent_buffers(rng):
    from fastseg._ext import _mlp

    rows = rng.standard_normal((5, 3)).astype(np.float32)
    sizes = np.array([3, 2, 1], np.intp)
    w, b = np.zeros(3 * 2 + 2 * 1, np.float32), np.zeros(3, np.float32)
    out, act = np.empty(5, np.float32), np.empty((2, 8), np.float32)
    _mlp.mlp_rows(rows, w, b, sizes, 1, out, act, 4)
    np.testing.assert_allclose(out, 0.5)  # zero weights: logistic(0)
    with pytest.raises(ValueError, match="sizes must start with the rows' width and end with 1"):
        _mlp.mlp_rows(rows, w, b, np.array([4, 2, 1], np.intp), 1, out, act, 4)
    with pytest.raises(ValueError, match="weights and biases must match sizes"):
        _mlp.mlp_rows(rows, w[:-1], b, sizes, 1, out, act, 4)
    with pytest.raises(ValueError, match="out must have one entry per row"):
        _mlp.mlp_rows(rows, w, b, sizes, 1, out[:4], act, 4)
    with pytest.raises(ValueError, match="out must have one entry per row"):
        _mlp.mlp_rows(rows, w, b, sizes, 1, out, act, 5)  # act too small for 5-row tiles


# ------------------------------------------------ the logit cut predict thresholds instead of probabilities

def _logits_around(cut, rng):
    """float32 logits: random ones at every scale, the 20,001 floats around ``cut``, and special values."""
    from fastseg.scoring import _floats_from_keys

    scales = 10.0 ** rng.uniform(-40, 38, 20_000)
    z = [(rng.standard_normal(20_000) * scales).astype(np.float32),
         np.array([0.0, -0.0, np.inf, -np.inf, np.finfo(np.float32).max, -np.finfo(np.float32).max,
                   np.finfo(np.float32).tiny, -np.finfo(np.float32).tiny], np.float32)]
    if np.isfinite(cut):
        bits = np.array([cut], np.float32).view(np.int32)[0]
        key = int(bits) if bits >= 0 else -int(bits & 0x7FFFFFFF)
        z.append(_floats_from_keys(np.arange(key - 10_000, key + 10_001)))
    return np.concatenate(z)


@pytest.mark.parametrize("threshold", [0.5, 0.65, 0.3, 0.9, 0.999, 0.99999994, 1e-7, 1e-30, 0.0, -0.5, 1.0, 2.0])
def test_logistic_cut_gives_the_masks_of_the_probabilities(rng, threshold):
    """``logit >= cut`` is ``probability > threshold`` for every float32 logit, the probability as the
    kernels compute it and compared as predict compares it."""
    from fastseg.scoring import _kernel_logistic, _logistic_cut

    cut = _logistic_cut(threshold)
    assert cut is not None
    z = _logits_around(cut, rng)
    np.testing.assert_array_equal(z >= np.float32(cut), _kernel_logistic(z) > threshold)
    if threshold < 0:
        assert cut == -np.inf
    if threshold >= 1:
        assert np.isnan(cut)


def test_kernel_logistic_is_the_output_unit_of_the_kernels(rng):
    """The probabilities the cut is searched on are those of an MLP's output unit in the kernels."""
    from fastseg.scoring import OUTPUT_CODES, MLPWeights, Network, _kernel_logistic, _network_row_scores

    rows = rng.standard_normal((500, 6)).astype(np.float32)
    w = MLPWeights([rng.standard_normal((6, 4)).astype(np.float32), rng.standard_normal((4, 1)).astype(np.float32)],
                   [rng.standard_normal(4).astype(np.float32), rng.standard_normal(1).astype(np.float32)], "relu")

    logits = _network_row_scores(rows, Network.mlp(*w), OUTPUT_CODES["decision"])
    np.testing.assert_array_equal(_kernel_logistic(logits), _network_row_scores(rows, Network.mlp(*w), OUTPUT_CODES["proba"]))
