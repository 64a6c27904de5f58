"""The three BraTS regions: scoring inside a region (``within``), label maps in each convention, the
cascade, its model files, its cross-validation and the command line."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.naive_bayes import GaussianNB

from fastseg import PixelSegmenter, load, save
from fastseg.components import clean_volume
from fastseg.io import LABEL_CONVENTIONS, label_map, regions
from fastseg.metrics import case_metrics
from fastseg.persistence import _load_model, dumps, loads
from fastseg.regions import REGIONS, RegionModel, RegionSegmenter, cross_validate_regions

#: The label values of each region, written out here (not taken from the package).
VALUES = {
    "brats2018": {"whole tumour": (1, 2, 4), "tumour core": (1, 4), "enhancing tumour": (4,)},
    "brats2023": {"whole tumour": (1, 2, 3), "tumour core": (1, 3), "enhancing tumour": (3,)},
    "msd": {"whole tumour": (1, 2, 3), "tumour core": (2, 3), "enhancing tumour": (3,)},
}
#: Each convention's label of oedema, the non-enhancing core and the enhancing tumour.
PARTS = {"brats2018": (2, 1, 4), "brats2023": (2, 1, 3), "msd": (1, 2, 3)}


def _tumour_images(rng, n=6, size=40):
    """Slices with a nested tumour: oedema bright in FLAIR, core bright in T2, enhancing in T1C
    (labels in brats2018)."""
    x = rng.standard_normal((n, size, size, 4)).astype(np.float32)
    labels = np.zeros((n, size, size), np.uint8)
    labels[:, 8:32, 8:32] = 2
    labels[:, 14:26, 14:26] = 1
    labels[:, 17:23, 17:23] = 4
    x[..., 3] += 3 * (labels > 0)
    x[..., 1] += 3 * np.isin(labels, (1, 4))
    x[..., 2] += 3 * (labels == 4)
    return x, labels


# ----------------------------------------------------------------------------- label maps

@pytest.mark.parametrize("convention", sorted(VALUES))
def test_conventions_are_the_ones_written_down(convention):
    assert LABEL_CONVENTIONS[convention] == VALUES[convention]


def test_the_command_line_offers_every_convention():
    from fastseg.cli import LABEL_CONVENTION_NAMES

    assert LABEL_CONVENTION_NAMES == tuple(LABEL_CONVENTIONS)


@given(seed=st.integers(0, 2**32 - 1), convention=st.sampled_from(sorted(VALUES)),
       shape=st.tuples(st.integers(1, 5), st.integers(1, 9), st.integers(1, 9)))
def test_label_map_inverts_regions(seed, convention, shape):
    rng = np.random.default_rng(seed)
    labels = np.array([0, *PARTS[convention]], np.uint8)[rng.integers(0, 4, shape)]
    found = regions(labels, convention)
    for name, values in VALUES[convention].items():
        np.testing.assert_array_equal(found[name], np.isin(labels, values))
    np.testing.assert_array_equal(label_map(found, convention), labels)
    # the same regions in another convention: each part gets that convention's label
    for other in VALUES:
        relabelled = label_map(found, other)
        lookup = dict(zip((0, *PARTS[convention]), (0, *PARTS[other])))
        np.testing.assert_array_equal(relabelled, np.vectorize(lookup.get)(labels).astype(np.uint8).reshape(shape))


def test_label_map_refuses_regions_that_are_not_nested():
    wt = np.array([True, True, False])
    with pytest.raises(ValueError, match="tumour core has pixels outside whole tumour"):
        label_map({"whole tumour": wt, "tumour core": np.array([False, False, True]),
                   "enhancing tumour": np.zeros(3, bool)}, "brats2018")
    with pytest.raises(TypeError, match="found must be a dict with the keys"):
        label_map({"whole tumour": wt}, "brats2018")
    with pytest.raises(ValueError, match="convention must be one of"):
        label_map(regions(np.zeros(3, int), "msd"), "brats2015")


# ----------------------------------------------------------------------------- scoring within a region

@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(3)
    x, labels = _tumour_images(rng, n=4, size=32)
    y = labels > 0
    brain = np.ones_like(y)
    out = {}
    for name, kwargs in {
        "mlp": dict(classifier="mlp"),
        "linear-svm": dict(classifier="linear-svm"),
        "logistic": dict(classifier="logistic"),
        "window-only-mlp": dict(classifier="mlp", std_sizes=(), asymmetry=False, gradient_size=0, position=False),
        "window-only-logistic": dict(classifier="logistic", std_sizes=(), asymmetry=False, gradient_size=0,
                                     position=False),
        "other-estimator": dict(classifier=GaussianNB()),
    }.items():
        out[name] = PixelSegmenter(min_size=3, random_state=0, **kwargs).fit(x, y, brain).model_
    return out


@pytest.mark.parametrize("name", ["mlp", "linear-svm", "logistic", "window-only-mlp", "window-only-logistic",
                                  "other-estimator"])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 20), n_jobs=st.sampled_from([1, 2]),
       share=st.floats(0, 1))
def test_scores_within_a_region_are_the_scores_of_the_brain_there(fitted, name, seed, n, n_jobs, share):
    """A pixel's score does not depend on ``within`` beyond float32 rounding (the network's matrix
    products run over tiles of the requested rows, and BLAS may round a row differently at another
    place in a tile): the brain's scores where it holds, within 1e-6 relative (about 8 units in the
    last place), exactly 0 elsewhere; the masks are those scores thresholded and cleaned inside it."""
    model = fitted[name]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 24, 28, 4)).astype(np.float32)
    x[:, 6:18, 8:20, 3] += 3
    brain = rng.random((n, 24, 28)) < 0.9
    within = rng.random((n, 24, 28)) < share
    full = model.score_maps(x, brain, n_jobs=n_jobs)
    inside = model.score_maps(x, brain, within=within, n_jobs=n_jobs)
    scored = within & brain
    assert not inside[~scored].any()
    np.testing.assert_allclose(inside[scored], full[scored], rtol=1e-6, atol=1e-6)
    if model.score_kind == "proba":
        np.testing.assert_array_equal(model.predict_proba(x, brain, within=within, n_jobs=n_jobs), inside)
    masks = model.predict(x, brain, within=within, n_jobs=n_jobs)
    np.testing.assert_array_equal(masks, model.postprocessing.apply((inside > model.threshold) & scored))


def test_within_is_validated(fitted):
    x = np.zeros((2, 16, 16, 4), np.float32)
    with pytest.raises(ValueError, match=r"within must have shape \(2, 16, 16\)"):
        fitted["mlp"].predict(x, within=np.ones((2, 16, 15), bool))
    with pytest.raises(TypeError, match="within must be a boolean or integer mask"):
        fitted["mlp"].predict_proba(x, within=np.full((2, 16, 16), "a"))


def test_fit_samples_only_within(rng):
    x, labels = _tumour_images(rng, n=4, size=32)
    brain = np.ones(labels.shape, bool)
    core, whole = np.isin(labels, (1, 4)), labels > 0
    seg = PixelSegmenter(max_pixels=10_000, random_state=0)
    inside = seg.fit(x, core, brain, within=whole)
    # every pixel of the whole tumour is sampled (max_pixels is larger): as many as it holds
    assert inside.n_training_pixels_ == int(whole.sum())
    everywhere = PixelSegmenter(random_state=0).fit(x, core, brain)
    same = PixelSegmenter(random_state=0).fit(x, core, brain, within=brain)
    np.testing.assert_array_equal(same.model_.network.weights, everywhere.model_.network.weights)
    with pytest.raises(ValueError, match=r"inside the brain \(and within\)"):
        PixelSegmenter(random_state=0).fit(x, core, brain, within=whole & ~core)
    with pytest.raises(TypeError, match="within must be a list of 1 arrays"):
        PixelSegmenter(random_state=0).fit([x], [core], [brain], within=whole)


# ----------------------------------------------------------------------------- the cascade

@pytest.fixture(scope="module")
def cascade():
    rng = np.random.default_rng(7)
    x, labels = _tumour_images(rng, n=6)
    brain = np.ones(labels.shape, bool)
    return x, labels, brain, RegionSegmenter(PixelSegmenter(min_size=5, random_state=0)).fit(x, labels, brain)


def test_each_stage_is_a_segmenter_fitted_inside_the_region_before(cascade):
    x, labels, brain, seg = cascade
    template = PixelSegmenter(min_size=5, random_state=0)
    # the enhancing stage's clean-up is its own by default; the other parameters are the template's
    expected_params = [template.get_params(), template.get_params(),
                       {**template.get_params(), "min_size": 10, "min_relative_size": 0.0, "fill_holes": False}]
    for name, params in zip(REGIONS, expected_params):
        assert seg.stages_[name].get_params() == params
    wt, tc, et = (np.isin(labels, v) for v in VALUES["brats2018"].values())
    expected = [template.fit(x, wt, brain).model_.network.weights,
                PixelSegmenter(**template.get_params()).fit(x, tc, brain, within=wt).model_.network.weights,
                PixelSegmenter(**template.get_params()).fit(x, et, brain, within=tc).model_.network.weights]
    for name, weights in zip(REGIONS, expected):
        np.testing.assert_array_equal(seg.stages_[name].model_.network.weights, weights)


@pytest.mark.parametrize("volume", [False, True])
def test_predicted_regions_are_each_stage_inside_the_one_before(cascade, volume):
    x, labels, brain, seg = cascade
    found = seg.predict_regions(x, brain, volume=volume)
    inside = None
    for name, model in zip(REGIONS, seg.model_.stages):
        expected = model.predict(x, brain, within=inside)
        if inside is not None:
            expected &= inside
        if volume:
            expected = clean_volume(expected, model.postprocessing.min_relative_size)
        np.testing.assert_array_equal(found[name], expected)
        inside = expected
    assert found["enhancing tumour"].any() and (found["whole tumour"] & ~found["tumour core"]).any()
    # these regions are easy: each is found
    for name, values in VALUES["brats2018"].items():
        assert case_metrics(np.isin(labels, values), found[name])["dice"] > 0.9


@pytest.mark.parametrize("convention", sorted(VALUES))
def test_predict_writes_the_convention(cascade, convention):
    x, labels, brain, seg = cascade
    found = seg.predict_regions(x, brain)
    written = seg.model_.predict(x, brain, convention=convention)
    for name, values in VALUES[convention].items():
        np.testing.assert_array_equal(np.isin(written, values), found[name])
    assert set(np.unique(written).tolist()) <= {0, *PARTS[convention]}


def test_fit_reads_the_segmenters_convention(cascade):
    x, labels, brain, seg = cascade
    msd = np.array([0, 2, 1, 0, 3], np.uint8)[labels]  # brats2018 1 -> msd 2, 2 -> 1, 4 -> 3
    other = RegionSegmenter(seg.segmenter, convention="msd").fit(x, msd, brain)
    for name in REGIONS:
        np.testing.assert_array_equal(other.stages_[name].model_.network.weights,
                                      seg.stages_[name].model_.network.weights)
    np.testing.assert_array_equal(other.predict(x, brain), np.array([0, 2, 1, 0, 3], np.uint8)[seg.predict(x, brain)])
    with pytest.raises(ValueError, match=r"labels: labels \{3\} are not in the brats2018 convention \(its labels: 0, 1, 2, 4\)"):
        RegionSegmenter(seg.segmenter).fit(x, msd, brain)


def test_region_segmenter_validates(cascade):
    x, labels, brain, seg = cascade
    with pytest.raises(ValueError, match="convention must be one of"):
        RegionSegmenter(convention="brats2015").fit(x, labels, brain)
    with pytest.raises(TypeError, match="segmenter must be a PixelSegmenter or None"):
        RegionSegmenter(segmenter=GaussianNB()).fit(x, labels, brain)
    with pytest.raises(TypeError, match="labels must hold integer labels"):
        RegionSegmenter().fit(x, labels.astype(np.float32), brain)
    with pytest.raises(ValueError, match="volume=True needs a stack of slices"):
        seg.model_.predict_regions(x[0], brain[0], volume=True)
    with pytest.raises(ValueError, match="images have 3 channels but the model was fitted on 4"):
        seg.predict_regions(x[..., :3], brain)
    with pytest.raises(TypeError, match="whole must be a PixelModel"):
        RegionModel(None, seg.model_.core, seg.model_.enhancing)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        RegionSegmenter().predict(x, brain)


def test_stage_parameters_override_the_template(rng):
    from fastseg.regions import ENHANCING_DEFAULTS

    assert ENHANCING_DEFAULTS == {"min_size": 10, "min_relative_size": 0.0, "fill_holes": False}
    x, labels = _tumour_images(rng, n=3, size=32)
    brain = np.ones(labels.shape, bool)
    template = PixelSegmenter(min_size=5, random_state=0)
    seg = RegionSegmenter(template, core={"hidden_layer_sizes": (8,)}, enhancing={}).fit(x, labels, brain)
    assert seg.stages_["tumour core"].get_params() == {**template.get_params(), "hidden_layer_sizes": (8,)}
    assert seg.stages_["enhancing tumour"].get_params() == template.get_params()
    assert seg.stages_["whole tumour"].get_params() == template.get_params()
    with pytest.raises(TypeError, match="enhancing must be a dict of PixelSegmenter parameters or None, got list"):
        RegionSegmenter(template, enhancing=[]).fit(x, labels, brain)
    with pytest.raises(ValueError, match="Invalid parameter 'nope'"):
        RegionSegmenter(template, core={"nope": 1}).fit(x, labels, brain)


def test_region_segmenter_speaks_the_estimator_protocol():
    from sklearn.base import clone

    seg = RegionSegmenter(PixelSegmenter(k=5), convention="msd")
    assert seg.get_params(deep=False) == {"segmenter": seg.segmenter, "convention": "msd", "core": None,
                                          "enhancing": None}
    assert seg.get_params()["segmenter__k"] == 5
    assert seg.set_params(segmenter__k=7, convention="brats2023") is seg
    assert seg.segmenter.k == 7 and seg.convention == "brats2023"
    copy = clone(seg)
    assert copy.segmenter is not seg.segmenter and copy.get_params()["segmenter__k"] == 7
    assert repr(copy).startswith("RegionSegmenter(segmenter=PixelSegmenter(k=7")
    with pytest.raises(ValueError, match="RegionSegmenter has no parameter 'k'"):
        seg.set_params(k=3)


def test_an_empty_region_leaves_the_later_ones_empty(cascade):
    x, labels, brain, seg = cascade
    found = seg.predict_regions(np.zeros_like(x), brain)  # nothing bright: no tumour
    assert not any(m.any() for m in found.values())


# ----------------------------------------------------------------------------- model files

def test_a_region_file_round_trips(cascade, tmp_path):
    x, labels, brain, seg = cascade
    path = save(seg, tmp_path / "regions.npz")
    loaded = load(path)
    assert isinstance(loaded, RegionSegmenter) and loaded.convention == "brats2018"
    assert loaded.core == {} and loaded.enhancing == {"min_size": 10, "min_relative_size": 0.0, "fill_holes": False}
    for name in REGIONS:
        assert loaded.stages_[name].get_params() == seg.stages_[name].get_params()
    np.testing.assert_array_equal(loaded.predict(x, brain), seg.predict(x, brain))
    assert isinstance(_load_model(path), RegionModel)
    np.testing.assert_array_equal(loads(dumps(seg)).predict(x, brain), seg.predict(x, brain))
    # a plain segmenter's file is still a plain segmenter
    assert isinstance(load(save(seg.stages_["tumour core"], tmp_path / "core.npz")), PixelSegmenter)


def test_damaged_region_files_are_refused(cascade, tmp_path):
    x, labels, brain, seg = cascade
    path = save(seg, tmp_path / "regions.npz")
    with np.load(path) as z:
        members = dict(z)

    def refused(data, match):
        np.savez(tmp_path / "bad.npz", **data)
        with pytest.raises(ValueError, match=match):
            load(tmp_path / "bad.npz")

    refused({**members, "extra": np.zeros(2)}, r"it holds members of no stage \['extra'\]")
    refused({k: v for k, v in members.items() if not k.startswith("core.")}, r"\(core stage\): it has no 'spec'")
    refused({**members, "regions": np.array('{"format_version": "2.2", "convention": "brats2015"}')},
            "its label convention 'brats2015' is not one of")
    refused({**members, "regions": np.array('{"format_version": "3.0", "convention": "msd"}')},
            "format version '3.0'")
    refused({**members, "regions": np.array("not json")}, "its regions entry is not valid JSON")


# ----------------------------------------------------------------------------- cross-validation

def test_cross_validation_scores_each_held_out_volume_as_its_fold_model_segments_it(rng):
    volumes, maps = [], []
    for _ in range(4):
        x, labels = _tumour_images(rng, n=5, size=32)
        volumes.append(x)
        maps.append(labels)
    brain = [np.ones(m.shape, bool) for m in maps]
    template = RegionSegmenter(PixelSegmenter(min_size=5, random_state=0))
    result = cross_validate_regions(template, volumes, maps, ["a", "b", "c", "d"], cv=2, brain=brain,
                                    spacing=[(2.0, 1.0, 1.0)] * 4)
    assert [r["case"] for r in result["cases"]] == ["a", "b", "c", "d"]
    assert sorted(sum(result["fold_patients"], [])) == ["a", "b", "c", "d"]
    for fold in result["fold_patients"]:
        train = [i for i, p in enumerate("abcd") if p not in fold]
        model = RegionSegmenter(PixelSegmenter(min_size=5, random_state=0)).fit(
            [volumes[i] for i in train], [maps[i] for i in train], [brain[i] for i in train])
        for p in fold:
            i = "abcd".index(p)
            found = model.predict_regions(volumes[i], brain[i], volume=True)
            for name, values in VALUES["brats2018"].items():
                assert result["cases"][i][name] == case_metrics(np.isin(maps[i], values), found[name], (2.0, 1.0, 1.0))
    for name in REGIONS:
        dice = [r[name]["dice"] for r in result["cases"]]
        assert result["summary"][name]["dice"]["mean"] == pytest.approx(np.mean(dice))
        assert result["summary"][name]["dice"]["worst"] == min(dice)
    with pytest.raises(TypeError, match="segmenter must be a RegionSegmenter"):
        cross_validate_regions(PixelSegmenter(), volumes, maps, list("abcd"), cv=2)
    with pytest.raises(ValueError, match="spacing must give one voxel size per volume"):
        cross_validate_regions(template, volumes, maps, list("abcd"), cv=2, spacing=[(1, 1, 1)])


# ----------------------------------------------------------------------------- the command line

def _run(capsys, *args):
    from fastseg.cli import main

    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def region_model_file(small_cases_folder, tmp_path_factory):
    from fastseg.cli import main

    path = tmp_path_factory.mktemp("region_model") / "regions.npz"
    assert main(["train", "--data", str(small_cases_folder), "--regions", "--model", str(path)]) == 0
    return path


def test_train_regions_writes_a_region_model(region_model_file):
    seg = load(region_model_file)
    assert isinstance(seg, RegionSegmenter) and seg.convention == "brats2018"
    assert all(isinstance(seg.stages_[name], PixelSegmenter) for name in REGIONS)


@pytest.mark.parametrize("labels", [None, "brats2018", "brats2023", "msd"])
def test_predict_writes_a_label_map_in_the_layouts_or_the_chosen_convention(
        small_cases_folder, region_model_file, tmp_path, capsys, labels):
    nib = pytest.importorskip("nibabel")
    from fastseg.io import find_case, read_case

    for case in (small_cases_folder / "Brats18_2013_3_1", small_cases_folder / "Brats18_TCIA02_135_1"):
        out = tmp_path / f"{case.name}.nii.gz"
        code, printed, err = _run(capsys, "predict", "--model", region_model_file, "--input", case, "--out", out,
                                  *(["--labels", labels] if labels else []))
        assert code == 0, err
        written = np.asarray(nib.load(out).dataobj)
        read = read_case(find_case(case))
        convention = labels or read.convention  # the 2023 case writes 2023 labels by default
        assert convention == (labels or ("brats2023" if "TCIA02" in case.name else "brats2018"))
        found = _load_model(region_model_file).predict_regions(read.images, read.brain, volume=True)
        expected = label_map(found, convention).transpose(2, 1, 0)  # (Z, H, W) slices -> the file's (X, Y, Z)
        np.testing.assert_array_equal(written, expected)
        assert set(np.unique(written).tolist()) <= {0, *PARTS[convention]}
        truth = regions(read.labels, read.convention)
        line = ", ".join(f"{name} {case_metrics(truth[name], found[name])['dice']:.3f}" for name in REGIONS)
        assert f"Dice against {case.name}'s seg: {line}" in printed


def test_a_folder_with_jobs_gives_the_files_of_single_cases(small_cases_folder, region_model_file, tmp_path, capsys):
    nib = pytest.importorskip("nibabel")
    code, printed, err = _run(capsys, "predict", "--model", region_model_file, "--input", small_cases_folder,
                              "--out", tmp_path / "out", "--jobs", "2")
    assert code == 0, err
    for case in sorted(small_cases_folder.iterdir()):
        assert _run(capsys, "predict", "--model", region_model_file, "--input", case,
                    "--out", tmp_path / "one.nii.gz")[0] == 0
        np.testing.assert_array_equal(np.asarray(nib.load(tmp_path / "out" / f"{case.name}.nii.gz").dataobj),
                                      np.asarray(nib.load(tmp_path / "one.nii.gz").dataobj))


def test_train_regions_cross_validation_prints_every_case(small_cases_folder, tmp_path, capsys):
    code, printed, err = _run(capsys, "train", "--data", small_cases_folder, "--regions", "--cv", "3",
                              "--model", tmp_path / "m.npz")
    assert code == 0, err
    assert "3-fold patient-wise cross-validation, per case (Dice, HD95 mm):" in printed
    table = [line for line in printed.splitlines() if line.startswith(("Brats18_", "mean", "median", "worst"))]
    assert [line.split()[0] for line in table] == [*sorted(p.name for p in small_cases_folder.iterdir()),
                                                   "mean", "median", "worst"]
    values = np.array([[float(v) for v in line.split()[1:]] for line in table])
    assert values.shape == (6, 6)
    # the mean of the printed cases, up to the printing: Dice to 3 decimals, HD95 to 2
    assert (np.abs(values[3] - values[:3].mean(axis=0)) <= np.tile([1.5e-3, 1.5e-2], 3)).all()
    assert (values[:, ::2] >= 0).all() and (values[:, ::2] <= 1).all()


@pytest.mark.parametrize("args, message", [
    (["--labels", "msd"], "--labels goes with --regions"),
    (["--regions", "--tune-threshold"], "--tune-threshold tunes a whole-tumour model"),
])
def test_train_regions_usage_errors(small_cases_folder, tmp_path, capsys, args, message):
    code, printed, err = _run(capsys, "train", "--data", small_cases_folder, "--model", tmp_path / "m.npz", *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_train_regions_refuses_slices(brats2d_dir, tmp_path, capsys):
    code, _, err = _run(capsys, "train", "--data", brats2d_dir, "--regions", "--model", tmp_path / "m.npz")
    assert code == 2 and "--regions trains on cases with label volumes" in err


def test_predict_labels_needs_a_region_model(small_cases_folder, tmp_path, capsys):
    code, _, err = _run(capsys, "predict", "--input", small_cases_folder / "Brats18_2013_3_1", "--out",
                        tmp_path / "o.nii.gz", "--labels", "msd")
    assert code == 2 and "--labels: this model segments the whole tumour only" in err


def test_evaluate_regions_scores_what_predict_wrote(small_cases_folder, region_model_file, tmp_path, capsys):
    import json

    from fastseg.io import find_case, read_label_volume

    out = tmp_path / "out"
    assert _run(capsys, "predict", "--model", region_model_file, "--input", small_cases_folder, "--out", out)[0] == 0
    code, printed, err = _run(capsys, "evaluate", "--pred", out, "--truth", small_cases_folder, "--regions",
                              "--labels", "brats2018")
    # the 2023 case was written in its own convention, so it fails under brats2018 ...
    assert code == 2 and "Brats18_TCIA02_135_1 failed" in err and "labels {3}" in err
    # ... and each 2018 case's row is the region metrics of the written map against its seg
    report = json.loads((out / "metrics.json").read_text())
    assert [row["case"] for row in report["cases"]] == ["Brats18_2013_3_1", "Brats18_CBICA_ALU_1"]
    for row in report["cases"]:
        case = find_case(small_cases_folder / row["case"])
        truth, pred = read_label_volume(case.label), read_label_volume(out / f"{row['case']}.nii.gz")
        for name, prefix in (("whole tumour", "wt"), ("tumour core", "tc"), ("enhancing tumour", "et")):
            expected = case_metrics(np.isin(truth.labels, VALUES["brats2018"][name]),
                                    np.isin(pred.labels, VALUES["brats2018"][name]), truth.spacing)
            assert row[f"{prefix}_dice"] == pytest.approx(expected["dice"], abs=1e-12)
            assert row[f"{prefix}_hd95"] == pytest.approx(expected["hd95"], abs=1e-9)


def test_predict_with_a_region_model_imports_no_scikit_learn(small_cases_folder, region_model_file, tmp_path,
                                                             main_in_fresh_python):
    nib = pytest.importorskip("nibabel")
    case = small_cases_folder / "Brats18_2013_3_1"
    result = main_in_fresh_python(["predict", "--model", region_model_file, "--input", case,
                                   "--out", tmp_path / "o.nii.gz"], cwd=tmp_path)
    assert "exit 0 sklearn imported: False scipy.ndimage imported: False" in result.stdout, \
        result.stdout + result.stderr
    assert set(np.unique(np.asarray(nib.load(tmp_path / "o.nii.gz").dataobj)).tolist()) <= {0, 1, 2, 4}
