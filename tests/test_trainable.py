"""fastseg.trainable: sparse-label fitting, band-wise prediction, compiled scoring, model files, and the
random-forest agreement with scikit-image's features on the shipped BraTS slices."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

import fastseg.trainable as trainable
from fastseg.datasets import load_sample
from fastseg.features import multiscale_features
from fastseg.trainable import TrainableSegmenter, fit_segmenter, load_segmenter, predict_segmenter


def _scribbles(shape, seed=0, n_classes=3, share=0.02):
    rng = np.random.default_rng(seed)
    image = np.zeros(shape, np.float32)
    labels = np.zeros(shape, np.int32)
    # class k fills a slab of the last axis, brighter with k, plus noise
    bounds = np.linspace(0, shape[-1], n_classes + 1).astype(int)
    for k in range(n_classes):
        image[..., bounds[k]:bounds[k + 1]] = k
    image += rng.normal(scale=0.2, size=shape).astype(np.float32)
    truth = np.digitize(np.broadcast_to(np.arange(shape[-1]), shape), bounds[1:-1]) + 1
    picked = rng.random(shape) < share
    labels[picked] = truth[picked]
    return image, labels, truth


@pytest.fixture(scope="module")
def sample():
    return load_sample()


def test_random_forest_agrees_with_skimage_features_on_brats(sample):
    # one forest (fixed seed) fitted on each feature set from the same sparse labels of the shipped
    # slices; the two segment at least 99.9 % of the pixels the same
    feature = pytest.importorskip("skimage.feature")
    idx = range(len(sample.images))  # all 20 slices
    rng = np.random.default_rng(0)
    ours, theirs, labels = [], [], []
    for i in idx:
        image = sample.images[i]
        ours.append(multiscale_features(image, channel_axis=-1))
        theirs.append(feature.multiscale_basic_features(image, channel_axis=-1))
        lab = np.where(~sample.brain[i], 1, np.where(sample.masks[i], 3, 2)).astype(np.int32)
        lab[rng.random(lab.shape) > 0.01] = 0
        labels.append(lab)
    labels, ours, theirs = np.stack(labels), np.stack(ours), np.stack(theirs)
    rf = dict(n_estimators=40, random_state=0, n_jobs=1)
    a = predict_segmenter(ours, fit_segmenter(labels, ours, RandomForestClassifier(**rf)))
    b = predict_segmenter(theirs, fit_segmenter(labels, theirs, RandomForestClassifier(**rf)))
    agreement = float(np.mean(a == b))
    assert agreement >= 0.999, agreement
    assert len(np.unique(a)) == 3  # a real segmentation, not a constant


@pytest.mark.parametrize("clf", [LogisticRegression(max_iter=1000), MLPClassifier((12,), solver="lbfgs", max_iter=3000, random_state=0),
                                 RandomForestClassifier(20, random_state=0)], ids=["logistic", "mlp", "forest"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_segmenter_probabilities_equal_the_classifier_on_all_features(clf, n_classes):
    image, labels, truth = _scribbles((40, 45), n_classes=n_classes)
    seg = TrainableSegmenter(clf, sigma_max=4, workers=1).fit(image, labels)
    assert seg.clf_ is clf and list(seg.classes_) == list(range(1, n_classes + 1))
    features = multiscale_features(image, sigma_max=4)
    want = clf.predict_proba(features.reshape(-1, features.shape[-1])).reshape(40, 45, n_classes)
    got = seg.predict_proba(image)
    assert got.shape == (40, 45, n_classes) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=2e-5)
    assert np.mean(seg.predict(image) == truth) > 0.95
    np.testing.assert_allclose(got.sum(axis=-1), 1, atol=1e-5)


def test_fit_reads_only_labelled_pixels_features():
    image, labels, _ = _scribbles((30, 33))
    mask = labels > 0
    rows = multiscale_features(image, sigma_max=2, mask=mask)
    clf = LogisticRegression(max_iter=1000).fit(rows, labels[mask])
    seg = TrainableSegmenter(LogisticRegression(max_iter=1000), sigma_max=2).fit(image, labels)
    np.testing.assert_array_equal(seg.clf_.coef_, clf.coef_)


def test_bands_and_masks_do_not_change_results(monkeypatch):
    volume, labels, _ = _scribbles((14, 20, 24), seed=1)
    seg = TrainableSegmenter(LogisticRegression(max_iter=1000), sigma_max=2).fit(volume, labels)
    whole = seg.predict_proba(volume)
    monkeypatch.setattr(trainable, "_BAND_PIXELS", 300)  # one plane per band
    np.testing.assert_array_equal(seg.predict_proba(volume), whole)
    mask = np.random.default_rng(2).random(volume.shape) < 0.3
    np.testing.assert_allclose(seg.predict_proba(volume, mask=mask), whole[mask], atol=1e-6)
    predicted = seg.predict(volume, mask=mask)
    assert np.all(predicted[~mask] == 0)
    np.testing.assert_array_equal(predicted[mask], seg.classes_[whole[mask].argmax(-1)])


def test_multichannel_and_fit_predict_segmenter():
    image, labels, truth = _scribbles((36, 38))
    stack = np.stack([image, image[::-1]], axis=0)  # channels first
    features = multiscale_features(stack, channel_axis=0, sigma_max=4)
    clf = fit_segmenter(labels, features, RandomForestClassifier(10, random_state=0))
    predicted = predict_segmenter(features, clf)
    assert predicted.shape == labels.shape and np.mean(predicted == truth) > 0.9
    seg = TrainableSegmenter(RandomForestClassifier(10, random_state=0), channel_axis=0, sigma_max=4)
    np.testing.assert_array_equal(seg.fit(stack, labels).predict(stack), predicted)


@pytest.mark.parametrize("clf", [LogisticRegression(max_iter=1000), MLPClassifier((8, 6), solver="lbfgs", max_iter=3000, random_state=0)],
                         ids=["logistic", "mlp"])
def test_save_and_load_predict_the_same(tmp_path, clf):
    image, labels, _ = _scribbles((30, 32))
    seg = TrainableSegmenter(clf, sigma_max=4).fit(image, labels)
    path = seg.save(tmp_path / "seg.npz")
    loaded = load_segmenter(path)
    assert loaded.clf is None and loaded.sigma_max == 4
    np.testing.assert_array_equal(loaded.predict_proba(image), seg.predict_proba(image))
    np.testing.assert_array_equal(loaded.predict(image), seg.predict(image))
    with zipfile.ZipFile(path) as z:  # plain arrays only
        assert all(name.endswith(".npy") for name in z.namelist())


def test_unsaveable_classifier_is_refused(tmp_path):
    image, labels, _ = _scribbles((20, 21))
    seg = TrainableSegmenter(RandomForestClassifier(5, random_state=0), sigma_max=2).fit(image, labels)
    with pytest.raises(TypeError, match="only a segmenter with a LogisticRegression or an MLPClassifier"):
        seg.save(tmp_path / "seg.npz")
    assert not (tmp_path / "seg.npz").exists()


def _rewrite(path, out, **changes):
    with np.load(path, allow_pickle=False) as npz:
        data = {k: npz[k] for k in npz.files}
    spec = json.loads(str(data["spec"]))
    for key, value in changes.items():
        if key == "spec":
            spec.update(value)
        elif value is None:
            del data[key]
        else:
            data[key] = value
    data["spec"] = np.array(json.dumps(spec))
    np.savez(out, **data)
    return out


def test_damaged_files_are_refused(tmp_path):
    image, labels, _ = _scribbles((20, 21))
    seg = TrainableSegmenter(LogisticRegression(max_iter=1000), sigma_max=2).fit(image, labels)
    path = seg.save(tmp_path / "seg.npz")
    bad = [
        (dict(spec={"format_version": "9.0"}), "format version"),
        (dict(spec={"format": "other"}), "not a TrainableSegmenter file"),
        (dict(spec={"sigma_max": 4, "params": {**json.loads(str(np.load(path)["spec"]))["params"], "sigma_max": 4}}),
         "its weights take"),
        (dict(coef_0_0=None), "incomplete"),
        (dict(intercept_0_0=np.zeros(3)), "do not chain"),
        (dict(coef_0_0=np.full((12, 1), np.nan)), "not finite"),
        (dict(classes=np.array([1.0, 2.0, 3.0])), "classes are not integers"),
    ]
    for i, (change, match) in enumerate(bad):
        with pytest.raises(ValueError, match=match):
            load_segmenter(_rewrite(path, tmp_path / f"bad{i}.npz", **change))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable"):
        load_segmenter(tmp_path / "junk.npz")


@pytest.mark.parametrize("call, error, match", [
    (lambda im, lab: fit_segmenter(lab.astype(float), im[..., None], LogisticRegression()), TypeError,
     "labels must have an integer dtype"),
    (lambda im, lab: fit_segmenter(lab[:-1], im[..., None], LogisticRegression()), ValueError,
     "labels must have shape \\(20, 21\\), got shape \\(19, 21\\)"),
    (lambda im, lab: fit_segmenter(-lab, im[..., None], LogisticRegression()), ValueError, "labels must be >= 0"),
    (lambda im, lab: fit_segmenter(0 * lab, im[..., None], LogisticRegression()), ValueError,
     "labels must mark at least one pixel"),
    (lambda im, lab: fit_segmenter(lab, im, LogisticRegression()), ValueError, "labels must have shape \\(20,\\)"),
    (lambda im, lab: fit_segmenter(lab, im[..., None], "rf"), TypeError, "clf must be a scikit-learn classifier"),
    (lambda im, lab: predict_segmenter(im[..., None].astype(complex), None), TypeError, "features must have a real"),
    (lambda im, lab: TrainableSegmenter().predict(im), ValueError, "not fitted yet"),
    (lambda im, lab: TrainableSegmenter(sigma_min=0).fit(im, lab), ValueError, "sigma_min must be"),
    (lambda im, lab: TrainableSegmenter(texture=False, edges=False, intensity=False).fit(im, lab), ValueError,
     "at least one of intensity"),
    (lambda im, lab: TrainableSegmenter(LogisticRegression(), sigma_max=2).fit(im, lab).predict(im[None]),
     ValueError, "image must have 2 spatial dimensions and 1 channel"),
    (lambda im, lab: TrainableSegmenter(LogisticRegression(), sigma_max=2).fit(im, lab).predict(im, mask=im > 9),
     None, None),
    (lambda im, lab: TrainableSegmenter(LogisticRegression(), sigma_max=2).fit(im, lab).predict(im, mask=lab[:3]),
     ValueError, "mask must have shape \\(20, 21\\)"),
])
def test_bad_input(call, error, match):
    image, labels, _ = _scribbles((20, 21))
    before = image.copy(), labels.copy()
    if error is None:  # an empty mask is fine: nothing to score
        assert np.all(call(image, labels) == 0)
    else:
        with pytest.raises(error, match=match):
            call(image, labels)
    np.testing.assert_array_equal(image, before[0])
    np.testing.assert_array_equal(labels, before[1])
