"""Volumes as input: fit and predict on lists of (Z, H, W, C) stacks, patient-wise cross-validation of
whole volumes, and the command line's training on a folder of BraTS cases."""
from __future__ import annotations

import numpy as np
import pytest

import fastseg.segmenter as segmenter_module
from fastseg import PixelSegmenter, cross_validate, tune_threshold
from fastseg.components import clean_volume
from fastseg.metrics import dice


def volumes(rng, depths=(6, 9, 7, 8), size=28):
    """Synthetic volumes: a bright box through some of the slices, tumour-free slices around it."""
    xs, ys, bs = [], [], []
    for z in depths:
        x = rng.standard_normal((z, size, size, 4)).astype(np.float32)
        y = np.zeros((z, size, size), bool)
        lo = int(rng.integers(0, z // 2))
        y[lo:lo + z // 2, 6:16, 8:18] = True
        x[y] += 2.0
        b = np.zeros((z, size, size), bool)
        b[:, 2:-2, 2:-2] = True
        x[~b] = -0.4
        xs.append(x), ys.append(y), bs.append(b)
    return xs, ys, bs


SMALL = dict(classifier="linear-svm", min_size=5, random_state=0)


def weights(seg):
    return np.concatenate([w.ravel() for w in seg.model_.network.weights] + [np.ravel(seg.model_.network.biases)])


def test_a_list_of_volumes_trains_as_their_slices_stacked():
    """Sampling and features are per slice, so volumes give the model their concatenation gives."""
    xs, ys, bs = volumes(np.random.default_rng(0))
    by_volume = PixelSegmenter(**SMALL).fit(xs, ys, bs)
    stacked = PixelSegmenter(**SMALL).fit(np.concatenate(xs), np.concatenate(ys), np.concatenate(bs))
    assert np.array_equal(weights(by_volume), weights(stacked))
    assert by_volume.n_training_pixels_ == stacked.n_training_pixels_


@pytest.mark.parametrize("chunk", [1, 4, 10**6])
def test_fit_in_chunks_equals_fit_at_once(monkeypatch, chunk):
    """The slices are normalised and described a chunk at a time; the chunk size changes nothing."""
    xs, ys, bs = volumes(np.random.default_rng(1), depths=(11,))
    reference = weights(PixelSegmenter(**SMALL).fit(xs[0], ys[0], bs[0]))
    monkeypatch.setattr(segmenter_module, "_FIT_CHUNK", chunk)
    assert np.array_equal(weights(PixelSegmenter(**SMALL).fit(xs[0], ys[0], bs[0])), reference)


def test_predict_on_a_list_gives_one_result_per_volume():
    xs, ys, bs = volumes(np.random.default_rng(2))
    seg = PixelSegmenter(**SMALL).fit(xs, ys, bs)
    masks = seg.predict(xs, bs)
    scores = seg.decision_function(xs)
    assert isinstance(masks, list) and len(masks) == len(xs)
    for x, b, m, s in zip(xs, bs, masks, scores):
        assert np.array_equal(m, seg.predict(x, b))
        assert np.array_equal(s, seg.decision_function(x))
    assert np.mean([dice(y, m) for y, m in zip(ys, masks)]) > 0.9


def test_brain_masks_derived_per_volume():
    xs, ys, bs = volumes(np.random.default_rng(3))
    a = PixelSegmenter(**SMALL).fit(xs, ys)
    b = PixelSegmenter(**SMALL).fit(np.concatenate(xs), np.concatenate(ys))
    assert np.array_equal(weights(a), weights(b))


def test_cross_validate_volumes_scores_each_volume_once_cleaned_in_3d():
    xs, ys, bs = volumes(np.random.default_rng(4), depths=(6, 9, 7, 8, 6))
    names = [f"case{i}" for i in range(5)]
    result = cross_validate(PixelSegmenter(**SMALL), xs, ys, names, cv=5, brain=bs)
    assert sorted(result["patient_dice"]) == sorted(names)
    assert [len(f) for f in result["fold_patients"]] == [1] * 5
    # every volume predicted by the model of the fold that held it out, then cleaned as fastseg predict does
    for fold in result["fold_patients"]:
        i = names.index(fold[0])
        train = [j for j in range(5) if j != i]
        model = PixelSegmenter(**SMALL).fit([xs[j] for j in train], [ys[j] for j in train], [bs[j] for j in train])
        expected = clean_volume(model.predict(xs[i], bs[i]), model.model_.postprocessing.min_relative_size)
        assert np.array_equal(result["predictions"][i], expected)
        assert result["patient_dice"][names[i]] == pytest.approx(dice(ys[i], expected))
    assert result["mean_patient_dice"] == pytest.approx(np.mean(list(result["patient_dice"].values())))


def test_cross_validate_volumes_keeps_a_patients_volumes_together():
    xs, ys, bs = volumes(np.random.default_rng(5), depths=(6, 7, 6, 8))
    result = cross_validate(PixelSegmenter(**SMALL), xs, ys, ["a", "a", "b", "c"], cv=3, brain=bs)
    assert sorted(map(tuple, result["fold_patients"])) == [("a",), ("b",), ("c",)]
    truth = np.concatenate(ys[:2])
    assert result["patient_dice"]["a"] == pytest.approx(dice(truth, np.concatenate(result["predictions"][:2])))


def test_tune_threshold_on_volumes():
    xs, ys, bs = volumes(np.random.default_rng(6), depths=(6, 9, 7))
    seg = PixelSegmenter(classifier="logistic", min_size=5, random_state=0)
    result = tune_threshold(seg, xs, ys, ["a", "b", "c"], cv=3, brain=bs, thresholds=[0.2, 0.5, 0.8])
    assert result["threshold"] in (0.2, 0.5, 0.8)
    best = result["mean_patient_dice"].max()
    assert result["mean_patient_dice"][[0.2, 0.5, 0.8].index(result["threshold"])] == best
    assert 0 <= best <= 1


@pytest.mark.parametrize("call, error, message", [
    (lambda xs, ys, bs: PixelSegmenter(**SMALL).fit(xs, ys[0], bs), TypeError,
     r"masks must be a list of 4 arrays, one per volume of images, got ndarray"),
    (lambda xs, ys, bs: PixelSegmenter(**SMALL).fit(xs, ys[:3], bs), TypeError, r"masks must be a list of 4 arrays.*of length 3"),
    (lambda xs, ys, bs: PixelSegmenter(**SMALL).fit(xs, ys, bs[0]), TypeError, r"brain must be a list of 4 arrays"),
    (lambda xs, ys, bs: PixelSegmenter(**SMALL).fit(xs[:1] + [xs[1][:, :20]], ys[:1] + [ys[1][:, :20]], None),
     ValueError, r"images\[1\] has slices of shape \(20, 28, 4\), but images\[0\] has \(28, 28, 4\)"),
    (lambda xs, ys, bs: PixelSegmenter(**SMALL).fit(xs, ys[:3] + [ys[3][1:]], bs), ValueError, r"masks\[3\] must have shape"),
    (lambda xs, ys, bs: PixelSegmenter(**SMALL).fit(xs[:3] + [xs[3] * np.nan], ys, bs), ValueError,
     r"images\[3\] must contain only finite values"),
    (lambda xs, ys, bs: cross_validate(PixelSegmenter(**SMALL), xs, ys, ["a", "b"], cv=2, brain=bs), ValueError,
     r"groups must have one entry per volume, shape \(4,\), got shape \(2,\)"),
    (lambda xs, ys, bs: cross_validate(PixelSegmenter(**SMALL), xs, ys, list("abcd"), cv=5, brain=bs), ValueError,
     r"cv must be an integer from 2 to the number of patients \(4\), got 5"),
])
def test_bad_volume_lists(call, error, message):
    xs, ys, bs = volumes(np.random.default_rng(7))
    before = [x.copy() for x in xs]
    with pytest.raises(error, match=message):
        call(xs, ys, bs)
    assert all(np.array_equal(a, b) for a, b in zip(xs, before))


# ----------------------------------------------------------------------------- the command line


@pytest.fixture(scope="module")
def small_cases(tmp_path_factory, brats2d_dir):
    """Three real cases cut to 16 axial slices each (the tumour's upper edge and tumour-free brain above
    it), written as BraTS case directories."""
    nib = pytest.importorskip("nibabel")
    root = tmp_path_factory.mktemp("cases")
    source = brats2d_dir.parent / "brats_volumes"
    for name in ("Brats18_2013_3_1", "Brats18_CBICA_ALU_1", "Brats18_TCIA13_623_1"):
        seg = np.asarray(nib.load(source / name / f"{name}_seg.nii.gz").dataobj)
        top = int(np.flatnonzero(seg.any(axis=(0, 1)))[-1])
        z = slice(top - 7, top + 9)
        (root / name).mkdir()
        for modality in ("t1", "t2", "t1ce", "flair", "seg"):
            img = nib.load(source / name / f"{name}_{modality}.nii.gz")
            data = np.asarray(img.dataobj)[:, :, z]
            nib.save(nib.Nifti1Image(data, img.affine, img.header), root / name / f"{name}_{modality}.nii.gz")
    return root


def test_train_on_a_folder_of_cases_uses_every_brain_slice(small_cases, tmp_path, capsys):
    from fastseg.cli import main
    from fastseg.datasets import load_case

    cases = sorted(small_cases.iterdir())
    brain_slices = sum(int(load_case(c).brain.any(axis=(1, 2)).sum()) for c in cases)
    tumour_slices = sum(int(load_case(c).seg.any(axis=(1, 2)).sum()) for c in cases)
    assert brain_slices > tumour_slices  # the cut holds tumour-free brain
    code = main(["train", "--data", str(small_cases), "--cv", "3", "--seed", "0", "--model", str(tmp_path / "m.npz")])
    out = capsys.readouterr().out
    assert code == 0
    assert f"training on {brain_slices} slices of 3 volumes (3 cases)" in out
    for case in cases:  # one row per case: its whole-volume Dice
        assert any(line.split()[:1] == [case.name] for line in out.splitlines()), out
    mean = float(out.split("3-fold patient-wise cross-validated mean Dice:")[1].split()[0])
    assert 0 < mean <= 1
    assert (tmp_path / "m.npz").exists()
