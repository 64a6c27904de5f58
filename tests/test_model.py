"""The fitted model (fastseg.model): built once and validated once, immutable, the same bits as 0.2.0.

``tests/data/release-0.2.0`` holds three models fitted by fastseg 0.2.0 (the default MLP, a linear SVM
and a logistic regression, ``random_state=0``, on the brats2d and multislice training slices) in its
model format 2.0, the masks they predicted on all 260 real slices and on the two test patients'
volumes (bit-packed), and the SHA-256 digest of every slice's scores (probabilities, or the SVM's
decision values) and logits (the output unit's input).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import fastseg
from fastseg import PixelSegmenter, load, save
from fastseg.features import FeatureSpec
from fastseg.model import PixelModel, PostProcessing
from fastseg.persistence import _load_model
from fastseg.scoring import Network, _kernel_logistic

RELEASE = Path(__file__).parent / "data" / "release-0.2.0"
MODELS = ("default", "linear_svm", "logistic")
CASES = ("Brats18_2013_3_1", "Brats18_CBICA_ALU_1")


def _digests(a: np.ndarray) -> np.ndarray:
    return np.array([hashlib.sha256(np.ascontiguousarray(s, dtype=np.float32).tobytes()).hexdigest() for s in a])


@pytest.fixture(scope="module")
def all_slices(brats2d_dir):
    """The 260 real slices in the fixtures' order: brats2d train, test, multislice train, test."""
    tr, te = np.load(brats2d_dir / "multislice_train.npz"), np.load(brats2d_dir / "multislice_test.npz")
    return np.concatenate([np.load(brats2d_dir / "train_x.npy"), np.load(brats2d_dir / "test_x.npy"), tr["x"], te["x"]])


@pytest.fixture(scope="module")
def release():
    with np.load(RELEASE / "outputs.npz") as z:
        return {name: z[name] for name in z.files}


@pytest.mark.parametrize("n_jobs", [1, 2])
@pytest.mark.parametrize("name", MODELS)
def test_release_models_predict_the_same_bits(all_slices, release, name, n_jobs):
    """Masks, probabilities and logits of 0.2.0's model files, on all 260 real slices, bit for bit."""
    seg = load(RELEASE / f"{name}.npz").set_params(n_jobs=n_jobs)
    masks = seg.predict(all_slices)
    np.testing.assert_array_equal(np.packbits(masks), release[f"{name}.masks"])
    scores = seg.predict_proba(all_slices) if seg.score_kind_ == "proba" else seg.decision_function(all_slices)
    assert (_digests(scores) == release[f"{name}.scores"]).all()
    assert (_digests(seg.decision_function(all_slices)) == release[f"{name}.logits"]).all()


@pytest.mark.parametrize("name", MODELS)
def test_release_models_segment_the_volumes_the_same(brats2d_dir, release, tmp_path, name):
    """``fastseg predict`` on the two shipped test-patient volumes with 0.2.0's model files: the same masks."""
    nib = pytest.importorskip("nibabel")
    from fastseg.cli import main

    for case in CASES:
        out = tmp_path / f"{case}.nii.gz"
        assert main(["predict", "--model", str(RELEASE / f"{name}.npz"), "--input",
                     str(brats2d_dir.parent / "brats_volumes" / case), "--out", str(out)]) == 0
        volume = np.asarray(nib.load(out).dataobj)
        assert tuple(volume.shape) == tuple(release[f"{name}.{case}.shape"])
        np.testing.assert_array_equal(np.packbits(volume > 0), release[f"{name}.{case}"])


def test_release_model_files_load_without_scikit_learn_and_round_trip(all_slices, tmp_path):
    """0.2.0 files (format 2.0, ``box_sizes``) load as the model alone; saved again they predict the same."""
    for name in MODELS:
        model = _load_model(RELEASE / f"{name}.npz")
        seg = load(RELEASE / f"{name}.npz")
        assert isinstance(model, PixelModel) and seg.model_.feature_names == model.feature_names
        again = load(save(seg, tmp_path / "again.npz"))
        assert json.loads(str(np.load(tmp_path / "again.npz")["spec"]))["format_version"] == "2.2"
        np.testing.assert_array_equal(again.decision_function(all_slices[:8]), model.decision_function(all_slices[:8]))


# ----------------------------------------------------------------------------- one model, immutable

def test_fit_builds_one_immutable_model(rng):
    x = rng.standard_normal((3, 24, 24, 4)).astype(np.float32)
    y = np.zeros((3, 24, 24), bool); y[:, 6:16, 8:18] = True; x[y] += 2
    seg = PixelSegmenter(k=3, classifier="linear-svm", min_size=5, random_state=0).fit(x, y, np.ones_like(y))
    model = seg.model_
    assert isinstance(model, PixelModel) and model.n_channels == seg.n_channels_ == 4
    assert model.threshold == seg.threshold_ and model.feature_names == seg.feature_names_
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.threshold = 1.0
    with pytest.raises(ValueError, match="read-only"):
        model.network.weights[0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        model.network.coefs[0][0] = 1.0


def test_set_params_after_fit_changes_nothing_predict_does(rng):
    """A fitted segmenter predicts from its fitted model (scikit-learn's contract): parameters set after
    fit, valid or not, change nothing until the next fit, which checks them."""
    x = rng.standard_normal((4, 32, 32, 4)).astype(np.float32)
    y = np.zeros((4, 32, 32), bool); y[:, 8:20, 10:22] = True; x[y] += 1.5
    seg = PixelSegmenter(k=3, classifier="logistic", min_size=5, random_state=0).fit(x, y)
    masks, proba = seg.predict(x), seg.predict_proba(x)
    for change in ({"min_size": -1}, {"normalize": "Brain"}, {"normalize": "none"}, {"k": 4}, {"threshold": 0.9}):
        seg.set_params(**change)
        np.testing.assert_array_equal(seg.predict(x), masks)
        np.testing.assert_array_equal(seg.predict_proba(x), proba)
    for bad, message in (({"min_size": -1}, "min_size must be >= 0, got -1"),
                         ({"normalize": "Brain"}, r"normalize must be one of \('brain', 'none'\), got 'Brain'"),
                         ({"k": 4}, "k must be an odd integer >= 1, got 4")):
        fresh = PixelSegmenter(k=3, classifier="logistic", random_state=0).set_params(**bad)
        with pytest.raises(ValueError, match=message):
            fresh.fit(x, y)


def test_box_sizes_is_a_deprecated_alias_of_mean_sizes(rng):
    x = rng.standard_normal((2, 24, 24, 4)).astype(np.float32)
    y = np.zeros((2, 24, 24), bool); y[:, 6:16, 8:18] = True; x[y] += 2
    with pytest.warns(FutureWarning, match="box_sizes was renamed mean_sizes"):
        old = PixelSegmenter(k=1, classifier="linear-svm", box_sizes=(5,), random_state=0).fit(x, y)
    new = PixelSegmenter(k=1, classifier="linear-svm", mean_sizes=(5,), random_state=0).fit(x, y)
    assert old.feature_names_ == new.feature_names_ and "mean5[c0]" in new.feature_names_
    np.testing.assert_array_equal(old.decision_function(x), new.decision_function(x))


@pytest.mark.parametrize("change, message", [
    ({"normalize": "Brain"}, r"normalize must be one of \('brain', 'none'\), got 'Brain'"),
    ({"min_size": -1}, "min_size must be >= 0, got -1"),
    ({"k": 4}, "k must be an odd integer >= 1, got 4"),
    ({"std_sizes": [6]}, "std_sizes must be an odd integer >= 1, got 6"),
    ({"connectivity": 3}, "connectivity must be 1 .* got 3"),
])
def test_load_checks_the_parameters_again(tmp_path, change, message):
    """A model file whose parameters were edited is refused, naming the parameter."""
    with np.load(RELEASE / "linear_svm.npz") as z:
        files = {name: z[name] for name in z.files}
    spec = json.loads(str(files["spec"]))
    spec["params"].update(change)
    files["spec"] = np.array(json.dumps(spec))
    np.savez(tmp_path / "edited.npz", **files)
    with pytest.raises(ValueError, match="its parameters are invalid .*" + message):
        load(tmp_path / "edited.npz")
    with pytest.raises(ValueError, match="its parameters are invalid"):
        _load_model(tmp_path / "edited.npz")


# ----------------------------------------------------------------------------- decision_function, predict_proba

@pytest.mark.parametrize("name", ["default", "logistic"])
def test_decision_function_is_the_logit_and_predict_proba_its_logistic(all_slices, name):
    """scikit-learn's meanings: decision_function is the output unit's input, predict_proba its output."""
    seg = load(RELEASE / f"{name}.npz")
    x = all_slices[17:20]
    logits, proba = seg.decision_function(x), seg.predict_proba(x)
    np.testing.assert_array_equal(_kernel_logistic(logits).reshape(proba.shape)[proba > 0], proba[proba > 0])
    assert ((logits > 0) == (proba > 0.5)).mean() > 0.999


def test_linear_svm_gives_no_probabilities(all_slices):
    seg = load(RELEASE / "linear_svm.npz")
    with pytest.raises(AttributeError, match="predict_proba is not available"):
        seg.predict_proba(all_slices[:1])
    np.testing.assert_array_equal(seg.decision_function(all_slices[:2]), seg.score_maps(all_slices[:2]))


def test_window_only_mlp_decision_function_is_the_logit(rng):
    """An MLP over the window alone: its logits (through the row kernels) give its probabilities."""
    x = rng.standard_normal((2, 20, 20, 2)).astype(np.float32)
    spec = FeatureSpec(2, k=3, std_sizes=(), asymmetry=False, gradient_size=0, position=False)
    net = Network.mlp([rng.standard_normal((18, 5)) / 4, rng.standard_normal((5, 1))],
                      [rng.standard_normal(5), rng.standard_normal(1)], "relu")
    model = PixelModel(spec, net, 0.5, "proba", PostProcessing(0, 0.0, False), normalize="none")
    brain = np.ones((2, 20, 20), bool)
    np.testing.assert_allclose(1 / (1 + np.exp(-model.decision_function(x, brain).astype(np.float64))),
                               model.predict_proba(x, brain), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- one validation per public call

def _count_checks(monkeypatch):
    """Count every call of the input validators, whichever module calls them."""
    from fastseg import _validation

    calls = []
    for validator in ("check_images", "check_masks"):
        original = getattr(_validation, validator)

        def counting(value, name=None, *args, _original=original, _validator=validator, **kwargs):
            calls.append((_validator, name if name is not None else ("images" if _validator == "check_images" else "masks")))
            return _original(value, *(() if name is None else (name,)), *args, **kwargs)

        for module in list(sys.modules.values()):
            if getattr(module, "__name__", "").startswith("fastseg") and getattr(module, validator, None) is original:
                monkeypatch.setattr(module, validator, counting)
    return calls


@pytest.mark.parametrize("name", MODELS)
def test_each_input_is_checked_once_per_public_call(monkeypatch, all_slices, name):
    seg = load(RELEASE / f"{name}.npz")
    x = all_slices[:40]  # three chunks of 16
    brain = x[..., 0] != x[:, :1, :1, 0]
    methods = ["predict", "decision_function", "score_maps"] + (["predict_proba"] if seg.score_kind_ == "proba" else [])
    for method in methods:
        for kwargs in ({}, {"brain": brain}):
            for target in (seg, seg.model_):
                calls = _count_checks(monkeypatch)
                getattr(target, method)(x, **kwargs)
                expected = [("check_images", "images")] + ([("check_masks", "brain")] if kwargs else [])
                assert sorted(calls) == sorted(expected), (method, kwargs, calls)
                monkeypatch.undo()


def test_fit_and_the_feature_functions_check_each_input_once(monkeypatch, rng):
    x = rng.standard_normal((3, 24, 24, 4)).astype(np.float32)
    y = np.zeros((3, 24, 24), bool); y[:, 6:16, 8:18] = True; x[y] += 2
    brain = np.ones_like(y)
    calls = _count_checks(monkeypatch)
    PixelSegmenter(k=3, classifier="linear-svm", random_state=0).fit(x, y, brain)
    assert sorted(calls) == [("check_images", "images"), ("check_masks", "brain"), ("check_masks", "masks")]
    calls.clear()
    fastseg.features.pixel_features(x, brain, 3, mask=y)
    assert sorted(calls) == [("check_images", "images"), ("check_masks", "brain"), ("check_masks", "mask")]
    calls.clear()
    fastseg.normalize_brain(x, brain)
    assert sorted(calls) == [("check_images", "images"), ("check_masks", "brain")]


def test_non_finite_images_are_reported_over_the_whole_batch(all_slices):
    """Found by the normalisation of one chunk, reported with the count over the whole batch."""
    seg = load(RELEASE / "default.npz").set_params(n_jobs=2)
    x = all_slices[:40].copy()
    x[3, 100, 100, 0] = np.nan
    x[35, 10, 10, 2] = np.inf
    for method in ("predict", "predict_proba", "decision_function"):
        with pytest.raises(ValueError, match="images must contain only finite values, got 2 NaN or infinite"):
            getattr(seg, method)(x)
