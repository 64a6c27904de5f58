"""PixelSegmenter on real BraTS slices (quality bars) and its scikit-learn contract."""
from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

import fastseg
from fastseg.model import PostProcessing
from fastseg import PixelSegmenter, cross_validate, load, save, segmentation_report, tune_threshold
from fastseg.features import pixel_features
from fastseg.preprocessing import normalize_brain

#: The seed recipe of the course: per-pixel linear SVM on the raw channels, every brain pixel, no post-processing.
SEED_RECIPE = dict(
    k=1, classifier="linear-svm", normalize="none", mean_sizes=(), std_sizes=(), asymmetry=False, gradient_size=0,
    position=False, max_pixels=10**6, min_size=0, min_relative_size=0, fill_holes=False,
)


def _with_multislice(part, extra):
    """A split's slices plus the extra slices of the same patients (multislice_*.npz)."""
    return (np.concatenate([part["x"], extra["x"]]), np.concatenate([part["y"], extra["y"]]),
            np.concatenate([part["brain"], extra["brain"]]))


@pytest.fixture(scope="module")
def fitted_default(brats_train, brats_multislice):
    """The default segmenter trained on the training patients (their brats2d slice and multislice slices)."""
    return PixelSegmenter(random_state=0).fit(*_with_multislice(brats_train, brats_multislice["train"]))


def synthetic(rng, n=4, size=32):
    x = rng.standard_normal((n, size, size, 4)).astype(np.float32)
    y = np.zeros((n, size, size), bool)
    y[:, 8:20, 10:24] = True
    x[y] += 1.5
    brain = np.zeros((n, size, size), bool)
    brain[:, 2:-2, 2:-2] = True
    x[~brain] = -0.4  # constant background, as in z-normalised BraTS slices
    return x, y, brain


# ----------------------------------------------------------------------------- quality on real data

def test_default_reaches_bar_on_fixed_test_split(fitted_default, brats_test):
    """Mean per-patient Dice >= 0.88 on the 3 test patients."""
    pred = fitted_default.predict(brats_test["x"], brats_test["brain"])
    report = segmentation_report(brats_test["y"], pred, brats_test["patients"])
    assert report.mean_group["dice"] >= 0.88, report.format()


def test_default_on_the_test_patients_multislice_set(fitted_default, brats_multislice):
    """The 36 slices of the test patients, pooled per patient.

    The bar is >= 0.85; the default reaches 0.79 (one patient, whose tumour
    the model over-segments on every slice, is at 0.65-0.70).  This guards the
    measured level against regressions; the bar is reported as missed."""
    ms = brats_multislice["test"]
    pred = fitted_default.predict(ms["x"], ms["brain"])
    report = segmentation_report(ms["y"], pred, ms["patients"])
    assert report.mean_group["dice"] >= 0.77, report.format()


def test_default_reaches_bar_in_patientwise_cross_validation(brats_train, brats_test, brats_multislice):
    """5-fold patient-wise CV over the 20 patients (their brats2d slice), mean Dice >= 0.88.

    Each fold also trains on the multislice slices of its training patients only."""
    x = np.concatenate([brats_train["x"], brats_test["x"]])
    y = np.concatenate([brats_train["y"], brats_test["y"]])
    b = np.concatenate([brats_train["brain"], brats_test["brain"]])
    patients = brats_train["patients"] + brats_test["patients"]
    ms = [brats_multislice[s] for s in ("train", "test")]
    extra = tuple(np.concatenate([m[key] for m in ms]) for key in ("x", "y", "patients", "brain"))
    result = cross_validate(PixelSegmenter(random_state=0), x, y, patients, cv=5, brain=b, extra=extra)
    assert len(result["patient_dice"]) == 20
    for fold in result["fold_patients"]:  # every patient validated once, by a model that never saw it
        assert len(fold) == 4
    assert sorted(p for fold in result["fold_patients"] for p in fold) == sorted(patients)
    assert result["mean_patient_dice"] >= 0.88, result["patient_dice"]


def test_seed_recipe_baseline(brats_train, brats_test):
    """The course's per-pixel linear SVM without post-processing scores about 0.63 on the test patients."""
    seg = PixelSegmenter(random_state=0, **SEED_RECIPE).fit(brats_train["x"], brats_train["y"], brats_train["brain"])
    pred = seg.predict(brats_test["x"], brats_test["brain"])
    dice = segmentation_report(brats_test["y"], pred, brats_test["patients"]).mean_group["dice"]
    assert 0.60 <= dice <= 0.66, dice
    assert seg.n_training_pixels_ == int(brats_train["brain"].sum())


def test_derived_brain_mask_gives_the_same_predictions(fitted_default, brats_test):
    with_given = fitted_default.predict(brats_test["x"], brats_test["brain"])
    derived = fitted_default.predict(brats_test["x"])
    assert (with_given == derived).mean() >= 0.999


# ----------------------------------------------------------------------------- background and sampling

def test_background_never_reaches_the_classifier(rng):
    x, y, brain = synthetic(rng)
    seg = PixelSegmenter(k=3, classifier="linear-svm", min_size=5, random_state=0)
    sample = seg._sample(y, brain, np.random.default_rng(0), seg.max_pixels, seg.tumour_fraction)
    assert sample.any() and not (sample & ~brain).any()
    # Whatever the background holds (even the "tumour" label), the fitted model is the same.
    noisy = x.copy()
    noisy[~brain] = rng.standard_normal(((~brain).sum(), 4)) * 50
    y_bg = y | ~brain
    a = clone(seg).fit(x, y, brain)
    b = clone(seg).fit(noisy, y_bg, brain)
    np.testing.assert_array_equal(a.model_.network.coefs[0], b.model_.network.coefs[0])
    assert not a.predict(noisy, brain)[~brain].any()


def test_class_aware_sampling(rng):
    x, y, brain = synthetic(rng, n=3)
    seg = PixelSegmenter(max_pixels=200, tumour_fraction=0.25)
    sample = seg._sample(y, brain, np.random.default_rng(1), 200, 0.25)
    for i in range(3):
        assert sample[i].sum() == 200
        assert (sample[i] & y[i]).sum() == 50
    # all pixels when the brain is smaller than max_pixels
    full = PixelSegmenter._sample(y, brain, np.random.default_rng(1), 10**6, 0.5)
    np.testing.assert_array_equal(full, brain)


# ----------------------------------------------------------------------------- scikit-learn contract

def test_get_params_set_params_clone():
    seg = PixelSegmenter(k=5, classifier="mlp", hidden_layer_sizes=(8,), random_state=3)
    params = seg.get_params()
    assert params["k"] == 5 and params["hidden_layer_sizes"] == (8,) and params["random_state"] == 3
    other = clone(seg)
    assert other.get_params() == params and other is not seg
    assert seg.set_params(k=7, min_size=10) is seg and seg.k == 7 and seg.min_size == 10


def test_fit_returns_self_and_is_repeatable(rng):
    x, y, brain = synthetic(rng)
    seg = PixelSegmenter(k=3, classifier="linear-svm", min_size=5, random_state=0)
    assert seg.fit(x, y, brain) is seg
    again = clone(seg).fit(x, y, brain)
    np.testing.assert_array_equal(seg.model_.network.coefs[0], again.model_.network.coefs[0])
    for attr in ("model_", "classifier_", "n_channels_", "score_kind_", "threshold_", "n_training_pixels_",
                 "feature_names_"):
        assert hasattr(seg, attr)


def test_predict_one_image_equals_batch(rng):
    x, y, brain = synthetic(rng)
    seg = PixelSegmenter(k=3, min_size=5, random_state=0).fit(x, y, brain)
    batch = seg.predict(x, brain)
    for i in range(len(x)):
        np.testing.assert_array_equal(seg.predict(x[i], brain[i]), batch[i])
    np.testing.assert_array_equal(seg.decision_function(x[1], brain[1]), seg.decision_function(x, brain)[1])


def test_n_jobs_gives_the_same_results(rng):
    x, y, brain = synthetic(rng, n=6)
    seg = PixelSegmenter(k=3, min_size=5, random_state=0).fit(x, y, brain)
    serial = seg.predict(x, brain)
    np.testing.assert_array_equal(seg.set_params(n_jobs=2).predict(x, brain), serial)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # a deliberately short fit
@pytest.mark.parametrize("classifier", ["mlp", "logistic"])
def test_a_slice_scores_the_same_in_any_batch_and_with_any_blas_threads(brats_train, classifier):
    """Other slices never change a slice's scores, nor does the BLAS thread count (fastseg.dask's workers
    run one BLAS thread). Real slices: a BLAS matrix-vector product over their ~250,000 feature rows per
    chunk, which the linear path once used, changed 4 of them."""
    from threadpoolctl import threadpool_limits

    x, y, b = brats_train["x"], brats_train["y"], brats_train["brain"]
    seg = PixelSegmenter(classifier=classifier, max_iter=20, max_pixels=300, random_state=0).fit(x, y, b)
    whole = seg.decision_function(x, b)
    for part in (slice(0, 1), slice(3, 12)):
        np.testing.assert_array_equal(seg.decision_function(x[part], b[part]), whole[part])
    with threadpool_limits(1):
        np.testing.assert_array_equal(seg.decision_function(x, b), whole)
    np.testing.assert_array_equal(seg.set_params(n_jobs=2).decision_function(x, b), whole)


def test_fused_linear_scores_equal_the_pipeline(rng):
    x, y, brain = synthetic(rng)
    seg = PixelSegmenter(k=3, classifier="linear-svm", random_state=0).fit(x, y, brain)
    features = pixel_features(normalize_brain(x, brain), brain, 3)
    assert features.shape[1] == len(seg.feature_names_)
    expected = seg.classifier_.decision_function(features)
    np.testing.assert_allclose(seg.decision_function(x, brain)[brain], expected, rtol=1e-4, atol=1e-4)
    assert (seg.decision_function(x, brain)[~brain] == 0).all()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # a deliberately short fit
def test_mlp_path_and_probabilities(rng):
    x, y, brain = synthetic(rng)
    seg = PixelSegmenter(k=3, classifier="mlp", hidden_layer_sizes=(8,), max_iter=50, max_pixels=300,
                         mean_sizes=(5,), asymmetry=False, min_size=5, random_state=0)
    seg.fit(x, y, brain)
    assert seg.score_kind_ == "proba" and seg.threshold_ == 0.5 and seg.model_.network.kind == "mlp"
    features = pixel_features(normalize_brain(x, brain), brain, 3, mean_sizes=(5,), asymmetry=False)
    proba = seg.predict_proba(x, brain)
    np.testing.assert_allclose(proba[brain], seg.classifier_.predict_proba(features)[:, 1], rtol=1e-4, atol=1e-5)
    assert (proba[~brain] == 0).all() and proba.min() >= 0 and proba.max() <= 1


def test_logistic_gives_probabilities(rng):
    x, y, brain = synthetic(rng)
    seg = PixelSegmenter(k=3, classifier="logistic", min_size=5, random_state=0).fit(x, y, brain)
    features = pixel_features(normalize_brain(x, brain), brain, 3)
    np.testing.assert_allclose(seg.predict_proba(x, brain)[brain], seg.classifier_.predict_proba(features)[:, 1],
                               rtol=1e-4, atol=1e-5)


def test_other_estimators_fall_back_to_features(rng):
    x, y, brain = synthetic(rng)
    seg = PixelSegmenter(k=3, classifier=DecisionTreeClassifier(max_depth=3), min_size=5, random_state=0)
    seg.fit(x, y, brain)
    assert seg.model_.network is None and seg.score_kind_ == "proba"
    pred = seg.predict(x, brain)
    assert pred.shape == y.shape and (pred == y).mean() > 0.9
    with pytest.raises(AttributeError, match="predict_proba is not available"):
        PixelSegmenter(k=3, classifier="linear-svm", min_size=5).fit(x, y, brain).predict_proba(x, brain)


@pytest.mark.parametrize("threshold", [None, 0.65, 0.2, 0.999])
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_predict_is_the_post_processed_thresholded_probabilities(fitted_default, brats_multislice, threshold, n_jobs):
    """predict compares the output unit's input with a cut instead of each probability with the threshold
    (no exp per pixel): the masks must be exactly those of the probabilities, on real slices."""
    import copy
    import dataclasses

    from fastseg import clean_mask

    seg = copy.deepcopy(fitted_default).set_params(n_jobs=n_jobs)
    if threshold is not None:  # another threshold on the same fitted network
        seg.model_ = dataclasses.replace(seg.model_, threshold=threshold)
    ms = brats_multislice["test"]
    proba = seg.predict_proba(ms["x"], ms["brain"])
    expected = clean_mask((proba > seg.threshold_) & ms["brain"], seg.min_size, seg.fill_holes, seg.connectivity,
                          min_relative_size=seg.min_relative_size)
    assert seg.model_._cut is not None  # the default takes the cut
    np.testing.assert_array_equal(seg.predict(ms["x"], ms["brain"]), expected)


@pytest.mark.parametrize("threshold", [None, 0.3, 0.9])
def test_predict_is_the_thresholded_probabilities_for_logistic_regression(rng, threshold):
    """The logit cut for a linear model over context features too (its output unit is the network's
    without hidden layers): the masks of its probabilities, post-processing off."""
    x, y, brain = synthetic(rng)
    seg = PixelSegmenter(k=3, classifier="logistic", min_size=0, min_relative_size=0, fill_holes=False,
                         threshold=threshold, random_state=0).fit(x, y, brain)
    assert seg.model_._cut is not None
    np.testing.assert_array_equal(seg.predict(x, brain), (seg.predict_proba(x, brain) > seg.threshold_) & brain)


def test_threshold_changes_the_masks(rng):
    x, y, brain = synthetic(rng)
    seg = PixelSegmenter(k=3, classifier="linear-svm", min_size=0, min_relative_size=0, fill_holes=False,
                         random_state=0).fit(x, y, brain)
    low = seg.set_params(threshold=-1.0).fit(x, y, brain).predict(x, brain)
    high = seg.set_params(threshold=1.0).fit(x, y, brain).predict(x, brain)
    assert (high <= low).all() and low.sum() > high.sum()
    assert not low[~brain].any()  # a negative threshold never marks the background


def test_post_processing_removes_relatively_small_components():
    post = PostProcessing(min_size=3, min_relative_size=0.2, connectivity=2)
    masks = np.zeros((1, 30, 30), bool)
    masks[0, 2:12, 2:12] = True       # 100 px
    masks[0, 20:24, 20:24] = True     # 16 px: < 20 % of 100, removed
    masks[0, 20:26, 2:6] = True       # 24 px: kept
    masks[0, 5, 5] = False            # a hole: filled
    out = post.apply(masks.copy())
    expected = masks.copy()
    expected[0, 20:24, 20:24] = False
    expected[0, 5, 5] = True
    np.testing.assert_array_equal(out, expected)


# ----------------------------------------------------------------------------- bad input

def test_bad_input(rng):
    x, y, brain = synthetic(rng)
    with pytest.raises(NotFittedError):
        PixelSegmenter().predict(x, brain)
    seg = PixelSegmenter(k=3, min_size=5, random_state=0).fit(x, y, brain)
    with pytest.raises(ValueError, match="images have 3 channels but the model was fitted on 4"):
        seg.predict(x[..., :3], brain)
    with pytest.raises(ValueError, match=r"brain must have shape \(4, 32, 32\)"):
        seg.predict(x, brain[0])
    with pytest.raises(ValueError, match=r"masks must have shape \(4, 32, 32\), got shape \(3, 32, 32\)"):
        PixelSegmenter().fit(x, y[:3], brain)
    with pytest.raises(ValueError, match="masks must contain both tumour and non-tumour pixels"):
        PixelSegmenter().fit(x, np.zeros_like(y), brain)
    with pytest.raises(ValueError, match="k must be an odd integer >= 1, got 4"):
        PixelSegmenter(k=4).fit(x, y, brain)
    with pytest.raises(ValueError, match="classifier must be one of"):
        PixelSegmenter(classifier="forest").fit(x, y, brain)
    with pytest.raises(ValueError, match="normalize must be one of"):
        PixelSegmenter(normalize="volume").fit(x, y, brain)
    with pytest.raises(ValueError, match="min_relative_size must be a number in"):
        PixelSegmenter(min_relative_size=2).fit(x, y, brain)
    with pytest.raises(ValueError, match="threshold must be a finite number"):
        PixelSegmenter(threshold=np.nan).fit(x, y, brain)
    with pytest.raises(ValueError, match="images must contain only finite values"):
        seg.predict(np.where(brain[..., None], x, np.nan), brain)


def test_inputs_unchanged(rng):
    x, y, brain = synthetic(rng)
    copies = [a.copy() for a in (x, y, brain)]
    seg = PixelSegmenter(k=3, min_size=5, random_state=0).fit(x, y, brain)
    seg.predict(x, brain)
    seg.predict(x)
    for a, b in zip((x, y, brain), copies):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- persistence

@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # a deliberately short fit
@pytest.mark.parametrize("classifier", ["linear-svm", "logistic", "mlp"])
def test_save_load_round_trip_is_exact(rng, tmp_path, classifier):
    x, y, brain = synthetic(rng)
    seg = PixelSegmenter(k=3, classifier=classifier, hidden_layer_sizes=(6, 4), max_iter=30, max_pixels=300,
                         min_size=5, random_state=0).fit(x, y, brain)
    path = save(seg, tmp_path / "model.npz")
    loaded = load(path)
    np.testing.assert_array_equal(loaded.decision_function(x, brain), seg.decision_function(x, brain))
    np.testing.assert_array_equal(loaded.predict(x, brain), seg.predict(x, brain))
    assert loaded.get_params() == seg.get_params()
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temporary file left behind


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # a deliberately short fit
@pytest.mark.parametrize("classifier", ["linear-svm", "mlp"])
def test_dumps_loads_round_trip_is_exact_and_matches_save(rng, tmp_path, classifier):
    from fastseg.persistence import dumps, loads

    x, y, brain = synthetic(rng)
    seg = PixelSegmenter(k=3, classifier=classifier, hidden_layer_sizes=(6,), max_iter=30, max_pixels=300,
                         min_size=5, random_state=0).fit(x, y, brain)
    blob = dumps(seg)
    assert isinstance(blob, bytes)
    restored = loads(blob)
    np.testing.assert_array_equal(restored.decision_function(x, brain), seg.decision_function(x, brain))
    np.testing.assert_array_equal(restored.predict(x, brain), seg.predict(x, brain))
    assert restored.get_params() == seg.get_params()
    # the same format as a saved file: a file's bytes load, and the bytes load as a file
    saved = save(seg, tmp_path / "model.npz")
    np.testing.assert_array_equal(loads(saved.read_bytes()).predict(x, brain), seg.predict(x, brain))
    (tmp_path / "dumped.npz").write_bytes(blob)
    np.testing.assert_array_equal(load(tmp_path / "dumped.npz").predict(x, brain), seg.predict(x, brain))
    assert loads(bytearray(blob)).k == loads(memoryview(blob)).k == 3


def test_dumps_loads_reject_bad_input(rng):
    from fastseg.persistence import dumps, loads

    x, y, brain = synthetic(rng)
    blob = dumps(PixelSegmenter(k=3, min_size=5, random_state=0).fit(x, y, brain))
    with pytest.raises(ValueError, match=r"from bytes \(\d+ bytes\): not a readable .npz model file"):
        loads(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="not a readable .npz model file"):
        loads(b"")
    with pytest.raises(TypeError, match="data must be bytes, got str"):
        loads("model.npz")
    with pytest.raises(TypeError, match="data must be bytes, got NoneType"):
        loads(None)
    with pytest.raises(ValueError, match="segmenter is not fitted"):
        dumps(PixelSegmenter())
    with pytest.raises(TypeError, match="segmenter must be a PixelSegmenter"):
        dumps(object())
    tree = PixelSegmenter(k=3, classifier=DecisionTreeClassifier(max_depth=2), min_size=5).fit(x, y, brain)
    with pytest.raises(TypeError, match="only linear and MLP classifiers can be saved"):
        dumps(tree)


def test_save_refuses_what_it_cannot_store(rng, tmp_path):
    x, y, brain = synthetic(rng)
    tree = PixelSegmenter(k=3, classifier=DecisionTreeClassifier(max_depth=2), min_size=5).fit(x, y, brain)
    with pytest.raises(TypeError, match="only linear and MLP classifiers can be saved"):
        save(tree, tmp_path / "tree.npz")
    with pytest.raises(ValueError, match="segmenter is not fitted"):
        save(PixelSegmenter(), tmp_path / "x.npz")
    with pytest.raises(TypeError, match="segmenter must be a PixelSegmenter"):
        save(make_pipeline(StandardScaler(), MLPClassifier()), tmp_path / "x.npz")
    assert not list(tmp_path.iterdir())


def _tamper(path, **changes):
    import json

    with np.load(path, allow_pickle=False) as npz:
        data = {k: npz[k] for k in npz.files}
    spec = json.loads(str(data["spec"]))
    for key, value in changes.items():
        if key in data:
            data[key] = value
        else:
            spec[key] = value
    data["spec"] = np.array(json.dumps(spec))
    np.savez(path, **data)


def test_load_rejects_bad_files(rng, tmp_path):
    x, y, brain = synthetic(rng)
    seg = PixelSegmenter(k=3, classifier="linear-svm", min_size=5, random_state=0).fit(x, y, brain)
    good = save(seg, tmp_path / "good.npz")
    raw = good.read_bytes()

    with pytest.raises(FileNotFoundError, match="no model file"):
        load(tmp_path / "missing.npz")
    (tmp_path / "truncated.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="not a readable .npz model file"):
        load(tmp_path / "truncated.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="not a readable .npz model file"):
        load(tmp_path / "text.npz")

    path = tmp_path / "version.npz"
    path.write_bytes(raw)
    _tamper(path, format_version="1.0")  # models of fastseg 0.1 described pixels differently
    with pytest.raises(ValueError, match="format version '1.0' .* is not compatible"):
        load(path)

    path = tmp_path / "features.npz"
    path.write_bytes(raw)
    _tamper(path, features=seg.feature_names_[::-1])
    with pytest.raises(ValueError, match="its feature list does not match its parameters"):
        load(path)

    path = tmp_path / "shape.npz"
    path.write_bytes(raw)
    _tamper(path, coef=np.zeros(5))
    with pytest.raises(ValueError, match="a linear model needs coef of shape"):
        load(path)

    path = tmp_path / "nan.npz"
    path.write_bytes(raw)
    with np.load(good) as npz:
        coef = npz["coef"].copy()
    coef[0] = np.nan
    _tamper(path, coef=coef)
    with pytest.raises(ValueError, match="weights are not all finite"):
        load(path)

    # An object array (a pickle) inside the file is refused, never unpickled.
    path = tmp_path / "pickle.npz"
    with np.load(good) as npz:
        data = {k: npz[k] for k in npz.files}
    data["coef"] = np.array([object()], dtype=object)
    np.savez(path, **data)
    with pytest.raises(ValueError, match="its array 'coef' holds Python objects"):
        load(path)


# ----------------------------------------------------------------------------- cross-validation with extra slices

class _Recorder(PixelSegmenter):
    """Remembers which patients (encoded as the images' constant value) each fit saw."""

    seen: list = []

    def fit(self, images, masks, brain=None):
        _Recorder.seen.append(set(np.unique(np.asarray(images)[:, 0, 0, 0]).tolist()))
        return self

    def predict(self, images, brain=None):
        return np.zeros(np.shape(images)[:3], bool)


class _Scorer(_Recorder):
    """A recorder that scores like a fitted segmenter (all zeros), its model without post-processing."""

    def fit(self, images, masks, brain=None):
        super().fit(images, masks, brain)
        self.model_ = SimpleNamespace(score_kind="proba",
                                      postprocessing=PostProcessing(0, 0.0, fill_holes=False))
        return self

    def score_maps(self, images, brain=None):
        return np.zeros(np.shape(images)[:3], np.float32)


def test_cross_validate_extra_slices_never_leak_validation_patients():
    groups = np.repeat(np.arange(6), 2)
    x = np.repeat(groups.astype(np.float32), 8 * 8 * 2).reshape(12, 8, 8, 2)
    y = np.zeros((12, 8, 8), bool)
    extra_groups = np.array([0, 3, 5, 5, 7])  # patient 7 is not in the main set: never used
    extra_x = np.repeat(extra_groups.astype(np.float32) + 100, 8 * 8 * 2).reshape(5, 8, 8, 2)
    _Recorder.seen = []
    result = cross_validate(_Recorder(), x, y, groups, cv=3, extra=(extra_x, np.zeros((5, 8, 8), bool), extra_groups))
    for seen, held_out in zip(_Recorder.seen, result["fold_patients"]):
        trained = {g for g in range(6) if g not in held_out}
        assert seen == trained | {g + 100 for g in (0, 3, 5) if g in trained}


@pytest.mark.parametrize("classifier", ["logistic", "linear-svm"])
def test_tune_threshold_scores_every_candidate_as_predict_would(rng, classifier):
    """Each candidate's score is the mean per-patient Dice of the masks that a segmenter fitted on the other
    folds with that threshold predicts (public fit/predict, fold by fold); the best one is returned."""
    from sklearn.model_selection import GroupKFold

    x, y, brain = synthetic(rng, n=6)
    x += rng.standard_normal(x.shape).astype(np.float32)  # noisy enough that thresholds matter
    groups = np.array([0, 0, 1, 1, 2, 2])
    seg = PixelSegmenter(k=1, classifier=classifier, mean_sizes=(), std_sizes=(), asymmetry=False,
                         gradient_size=0, position=False, min_size=3, random_state=0)
    candidates = [0.2, 0.5, 0.8] if classifier == "logistic" else [-0.5, 0.0, 0.5]
    result = tune_threshold(seg, x, y, groups, cv=3, brain=brain, thresholds=candidates)
    expected = []
    for t in candidates:
        masks = np.zeros_like(y)
        for train, test in GroupKFold(n_splits=3).split(x, groups=groups):
            model = clone(seg).set_params(threshold=t).fit(x[train], y[train], brain[train])
            masks[test] = model.predict(x[test], brain[test])
        expected.append(segmentation_report(y, masks, groups).mean_group["dice"])
    np.testing.assert_allclose(result["mean_patient_dice"], expected, rtol=0, atol=1e-12)
    assert len(set(np.round(expected, 6))) > 1  # the candidates differ: the choice is a real one
    assert result["threshold"] == candidates[int(np.argmax(expected))]
    assert sorted(sum(result["fold_patients"], [])) == [0, 1, 2]
    assert seg.threshold is None and not hasattr(seg, "threshold_")  # the segmenter itself is not touched


def test_tune_threshold_defaults_and_patient_separation(rng):
    groups = np.repeat(np.arange(4), 2)
    x = np.repeat(groups.astype(np.float32), 8 * 8 * 2).reshape(8, 8, 8, 2)
    _Recorder.seen = []
    tune = tune_threshold(_Scorer(), x, np.zeros((8, 8, 8), bool), groups, cv=4, thresholds=[0.5])
    for seen, held_out in zip(_Recorder.seen, tune["fold_patients"]):
        assert seen == {g for g in range(4) if g not in held_out}
    x, y, brain = synthetic(rng, n=4)
    result = tune_threshold(PixelSegmenter(k=1, classifier="linear-svm", min_size=3, random_state=0), x, y,
                            [0, 0, 1, 1], cv=2, brain=brain)
    np.testing.assert_array_equal(result["thresholds"], np.round(np.arange(-1.0, 1.001, 0.1), 2))
    result = tune_threshold(PixelSegmenter(k=1, classifier="logistic", min_size=3, random_state=0), x, y,
                            [0, 0, 1, 1], cv=2)  # brain derived, as the segmenter does
    np.testing.assert_array_equal(result["thresholds"], np.round(np.arange(0.05, 0.951, 0.05), 2))
    assert result["threshold"] in result["thresholds"] and result["mean_patient_dice"].max() > 0.5


def test_tune_threshold_bad_input(rng):
    x, y, brain = synthetic(rng, n=4)
    x_before = x.copy()
    groups = [0, 0, 1, 1]
    with pytest.raises(TypeError, match="segmenter must be an estimator with fit, score_maps, get_params, got MLPClassifier"):
        tune_threshold(MLPClassifier(), x, y, groups, cv=2)
    with pytest.raises(ValueError, match="thresholds must be a non-empty sequence of finite numbers"):
        tune_threshold(PixelSegmenter(), x, y, groups, cv=2, thresholds=[])
    with pytest.raises(ValueError, match="thresholds must be a non-empty sequence of finite numbers"):
        tune_threshold(PixelSegmenter(), x, y, groups, cv=2, thresholds=[0.5, np.nan])
    with pytest.raises(ValueError, match="cv must be an integer from 2 to the number of patients"):
        tune_threshold(PixelSegmenter(), x, y, groups, cv=3)
    with pytest.raises(ValueError, match=r"groups must have one entry per slice, shape \(4,\), got shape \(3,\)"):
        tune_threshold(PixelSegmenter(), x, y, groups[:3], cv=2)
    np.testing.assert_array_equal(x, x_before)


def test_cross_validate_bad_extra(rng):
    x, y, brain = synthetic(rng, n=4)
    groups = [0, 0, 1, 1]
    with pytest.raises(TypeError, match="extra must be a tuple"):
        cross_validate(PixelSegmenter(), x, y, groups, cv=2, extra=x)
    with pytest.raises(ValueError, match=r"extra images must have the images' \(H, W, C\)"):
        cross_validate(PixelSegmenter(), x, y, groups, cv=2, extra=(x[..., :3], y, groups))
    with pytest.raises(ValueError, match="extra groups must have one entry per extra slice"):
        cross_validate(PixelSegmenter(), x, y, groups, cv=2, extra=(x, y, [0]))
    with pytest.raises(ValueError, match=r"extra needs brain masks"):
        cross_validate(PixelSegmenter(), x, y, groups, cv=2, brain=brain, extra=(x, y, groups))


def test_import_fastseg_is_lazy(tmp_path):
    """``import fastseg`` imports no scikit-learn until a name that needs it is used."""
    script = ("import sys, fastseg\n"
              "print(any(m.split('.')[0] == 'sklearn' for m in sys.modules), 'PixelSegmenter' in dir(fastseg))\n"
              "fastseg.clean_mask\n"
              "print(any(m.split('.')[0] == 'sklearn' for m in sys.modules))\n"
              "from fastseg import PixelSegmenter\n"
              "print(any(m.split('.')[0] == 'sklearn' for m in sys.modules), PixelSegmenter.__module__)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert result.stdout.split("\n")[:3] == ["False True", "False", "True fastseg.segmenter"], result.stderr
    with pytest.raises(AttributeError, match="module 'fastseg' has no attribute 'nothing'"):
        fastseg.nothing


def test_loaded_predictor_predicts_as_the_segmenter(rng, tmp_path):
    """The model file's scikit-learn-free predict path (the fastseg command's) equals load()'s."""
    from fastseg.model import PixelModel
    from fastseg.persistence import _load_model

    x, y, brain = synthetic(rng)
    for params in (dict(k=3, min_size=5), dict(k=3, classifier="linear-svm", std_sizes=(), position=False),
                   dict(k=5, classifier="linear-svm", std_sizes=(), asymmetry=False, gradient_size=0,
                        position=False)):
        seg = PixelSegmenter(random_state=0, **params).fit(x, y, brain)
        path = save(seg, tmp_path / "model.npz")
        light, full = _load_model(path), load(path)
        assert isinstance(light, PixelModel) and not isinstance(light, PixelSegmenter)
        np.testing.assert_array_equal(light.predict(x, brain), full.predict(x, brain))
        np.testing.assert_array_equal(light.score_maps(x), full.score_maps(x))
        np.testing.assert_array_equal(light.predict(x[0], brain[0]), seg.predict(x[0], brain[0]))
