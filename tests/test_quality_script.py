"""The quality scripts' plumbing: ``benchmarks/quality.py`` (the shipped configurations, its JSON) and
``experiments/recipes.py`` (the research recipes: their names, the prototype feature families against
brute force, the slice-adapted discriminant, the multislice CV).

The scripts' figures come from real data and take minutes; these tests check that what they compute is
what their rows say, on small inputs.
"""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest

import fastseg
import fastseg.features
from fastseg.datasets import load_sample

_ROOT = Path(__file__).resolve().parents[1]


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quality():
    return _load(_ROOT / "benchmarks" / "quality.py", "fastseg_quality_script")


@pytest.fixture(scope="module")
def experiments():
    return _load(_ROOT / "experiments" / "recipes.py", "fastseg_experiments_script")


def test_quality_lists_the_shipped_configurations_and_refuses_unknown_names(quality, capsys):
    quality.main(["--list"])
    assert capsys.readouterr().out.splitlines() == list(quality.CONFIGS)
    assert set(quality.CONFIGS) == {"default", "linear-svm", "logistic"}  # the built-in classifiers only
    with pytest.raises(SystemExit, match="no-such-row"):
        quality.main(["no-such-row"])


def test_quality_json_holds_every_figure_of_every_row(quality, monkeypatch, tmp_path, capsys):
    figures = {"cv": 0.9, "cv_worst": 0.7, "test": 0.89, "test_multislice": 0.79, "ms_per_slice": 2.0,
               "cv_patients": {"a": 0.7, "b": 1.0}}
    monkeypatch.setattr(quality, "evaluate", lambda entry, multislice, data: dict(figures))
    out = tmp_path / "quality.json"
    rows = quality.run(["logistic", "default"], quality.CONFIGS, data=None, json_path=out)
    record = json.loads(out.read_text())
    assert record["benchmark"] == "quality" and record["rows"] == rows
    assert [r["name"] for r in rows] == ["logistic", "default"]
    assert set(quality.COLUMNS) <= set(rows[0]) and set(record["columns"]) == set(quality.COLUMNS)
    assert record["environment"]["fastseg"] == fastseg.__version__
    table = capsys.readouterr().out
    assert "| `logistic` |" in table and "| 0.900 | 0.70 | 0.890 | 0.790 | 2.00 |" in table


def test_recipes_are_measured_as_the_shipped_configurations_are(quality, experiments):
    assert issubclass(experiments.Recipe, experiments.quality.Configuration)
    assert experiments.quality.CONFIGS.keys() == quality.CONFIGS.keys()
    assert experiments.CONFIGS["default"][1:] == quality.CONFIGS["default"][1:]  # the same default row
    # the package never imports the experiments (nor loads them by path)
    for module in (_ROOT / "fastseg").rglob("*.py"):
        text = module.read_text()
        assert not re.search(r"^\s*(from|import)\s+experiments\b", text, re.M), module
        assert "experiments/" not in text and "recipes.py" not in text, module


def _slice(seed, H=24, W=20, C=4):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(H, W, C)).astype(np.float32)
    b = np.zeros((H, W), dtype=bool)
    b[3:H - 2, 2:W - 3] = True
    b[5:8, 6:9] = False          # a hole: brain statistics must skip it
    return z, b


def test_list_names_every_row_and_unknown_names_are_refused(experiments, capsys):
    experiments.main(["--list"])
    names = capsys.readouterr().out.splitlines()
    assert names == list(experiments.CONFIGS) + list(experiments.RECIPES)
    assert {"+minmax", "+band-pass", "+dilated", "+rank", "+slice-area"} <= set(names)
    with pytest.raises(SystemExit, match="no-such-row"):
        experiments.main(["no-such-row"])


@pytest.mark.parametrize("seed", range(3))
def test_minmax_is_the_brain_extreme_of_each_box(experiments, seed):
    z, b = _slice(seed)
    maps = experiments._extra_maps(z, b, "minmax")
    H, W, C = z.shape
    assert maps.shape == (H, W, 4 * C)
    for (y, x) in zip(*np.nonzero(b)):
        for j, s in enumerate((5, 11)):
            r = s // 2
            box = z[max(y - r, 0):y + r + 1, max(x - r, 0):x + r + 1][b[max(y - r, 0):y + r + 1, max(x - r, 0):x + r + 1]]
            np.testing.assert_array_equal(maps[y, x, 2 * j * C:(2 * j + 1) * C], box.max(axis=0))
            np.testing.assert_array_equal(maps[y, x, (2 * j + 1) * C:(2 * j + 2) * C], box.min(axis=0))
    assert not maps[~b].any()


@pytest.mark.parametrize("seed", range(3))
def test_rank_orders_each_channel_within_the_brain(experiments, seed):
    z, b = _slice(seed)
    r = experiments._extra_maps(z, b, "rank")
    n = b.sum()
    for c in range(z.shape[-1]):
        order = np.argsort(z[..., c][b])
        np.testing.assert_allclose(r[..., c][b][order], (np.arange(n) + 0.5) / n, rtol=1e-6)
    assert not r[~b].any()


@pytest.mark.parametrize("seed", range(2))
def test_dilated_and_band_pass_from_brain_means(experiments, seed):
    z, b = _slice(seed)
    H, W, C = z.shape
    y, x = 12, 9  # 6 pixels from the neighbours the dilated family reads, all inside the image

    def box_mean(cy, cx):  # brain mean of the 5x5 box at (cy, cx), brute force
        rows, cols = slice(max(cy - 2, 0), cy + 3), slice(max(cx - 2, 0), cx + 3)
        return z[rows, cols][b[rows, cols]].mean(axis=0)

    dilated = experiments._extra_maps(z, b, "dilated")
    offsets = [(dy, dx) for dy in (-6, 0, 6) for dx in (-6, 0, 6) if dy or dx]
    assert dilated.shape == (H, W, 8 * C)
    for j, (dy, dx) in enumerate(offsets):
        np.testing.assert_allclose(dilated[y, x, j * C:(j + 1) * C], box_mean(y + dy, x + dx), rtol=1e-5, atol=1e-6)
    bands = experiments._extra_maps(z, b, "band-pass")
    assert bands.shape == (H, W, 3 * C) and not bands[~b].any()
    flat = np.ones_like(z) * np.array([1.0, -2.0, 0.5, 3.0], dtype=np.float32)
    assert np.abs(experiments._extra_maps(flat, b, "band-pass")[b]).max() < 1e-5  # no band in a flat image


def test_slice_area_and_unknown_family(experiments):
    z, b = _slice(0)
    area = experiments._extra_maps(z, b, "slice-area")
    assert area.shape == z.shape[:2] + (1,)
    np.testing.assert_allclose(area[b], b.sum() / 20000.0)
    assert not area[~b].any()
    with pytest.raises(ValueError, match="unknown family"):
        experiments._extra_maps(z, b, "fourier")


def test_extra_features_recipe_appends_the_family_and_predicts_masks(experiments):
    sample = load_sample()
    x, y, b = sample.images[:6], sample.masks[:6], sample.brain[:6]
    recipe = experiments.ExtraFeatures("rank", max_pixels=100).fit(x, y, b, np.arange(6))
    assert recipe.feature_names_ == fastseg.PixelSegmenter().fit(x, y, b).feature_names_  # the default's columns
    assert recipe.classifier_[-1].coefs_[0].shape[0] == len(recipe.feature_names_) + 4
    masks = recipe.predict(x, b)
    assert masks.dtype == bool and masks.shape == y.shape and not masks[~b].any()
    # predict_proba is the classifier's probability of the appended rows, pixel by pixel
    p = recipe.predict_proba(x[:1], b[:1])
    z = fastseg.normalize_brain(x[:1], b[:1])
    default_rows = fastseg.features.pixel_features(z, b[:1], 3, mask=b[:1])
    rows = np.hstack([default_rows, experiments._extra_maps(z[0], b[0], "rank")[b[0]]])
    np.testing.assert_allclose(p[0][b[0]], recipe.classifier_.predict_proba(rows)[:, 1], rtol=1e-6)


def test_multislice_cv_never_scores_a_patient_with_a_model_that_saw_it(experiments, monkeypatch):
    sample = load_sample()
    x, y, b = sample.images[:10], sample.masks[:10].astype(bool), sample.brain[:10]
    patients = np.array(sample.patients[:10])
    # the "multislice" slices: each patient's slice mirrored left-right, a different slice of the same patient
    extra = (x[:, :, ::-1].copy(), y[:, :, ::-1].copy(), b[:, :, ::-1].copy(), patients)
    key = {fp: p for fp, p in zip(np.round(x.sum(axis=(1, 2, 3)), 2), patients)}
    key.update({fp: p for fp, p in zip(np.round(extra[0].sum(axis=(1, 2, 3)), 2), patients)})
    scored = []

    class Spy(experiments.PixelSegmenter):
        def fit(self, images, masks, brain=None):
            self.seen_ = {key[fp] for fp in np.round(images.sum(axis=(1, 2, 3)), 2)}
            return super().fit(images, masks, brain)

        def predict(self, images, brain=None):
            mine = {key[fp] for fp in np.round(images.sum(axis=(1, 2, 3)), 2)}
            assert not mine & self.seen_
            scored.extend(mine)
            return super().predict(images, brain)

    monkeypatch.setattr(experiments, "PixelSegmenter", Spy)
    rows = experiments.multislice_cv(((x, y, b, patients), None, extra, None), dict(max_pixels=60))
    with pytest.raises(SystemExit, match="at most one"):
        experiments.main(["--multislice-cv", "default", "+flip"])
    assert sorted(scored) == sorted(patients)                    # every patient scored once
    assert [r[0] for r in rows] and sorted(r[0] for r in rows) == sorted(patients)
    assert [r[1] for r in rows] == sorted(r[1] for r in rows)    # worst first
    assert all(0 <= r[1] <= 1 and r[2] > 0 for r in rows)


def test_slice_adapted_is_a_linear_discriminant_on_the_confident_pixels(experiments):
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    sample = load_sample()
    x, y, b = sample.images, sample.masks.astype(bool), sample.brain
    recipe = experiments.SliceAdapted(max_pixels=100).fit(x[:14], y[:14], b[:14], np.arange(14))
    got = recipe.predict(x[14:], b[14:])
    seg = recipe.seg_
    p, z = seg.predict_proba(x[14:], b[14:]), fastseg.normalize_brain(x[14:], b[14:])
    expected = np.zeros(got.shape, dtype=bool)
    adapted = 0
    for i in range(len(p)):
        q = np.clip(p[i][b[14 + i]].astype(np.float64), 1e-4, 1 - 1e-4)
        v, logit = z[i][b[14 + i]], np.log(q / (1 - q))
        pos, neg = q >= 0.9, q <= 0.1
        if pos.sum() >= 20 and neg.sum() >= 20:  # scikit-learn's LDA, priors from the confident counts
            own = LinearDiscriminantAnalysis().fit(v[pos | neg], pos[pos | neg]).decision_function(v)
            expected[i][b[14 + i]] = 0.5 * logit + 0.5 * own > 0
            adapted += 1
        else:
            expected[i][b[14 + i]] = logit > 0
    assert adapted >= 3  # the comparison exercises the discriminant, not only the fallback
    expected = experiments.post_process(seg, expected)
    assert (got != expected).sum() <= 2  # the same model up to the last bits of two solvers
    # a slice without confident tumour keeps the segmenter's mask
    strict = experiments.SliceAdapted(high=1.0, max_pixels=100)
    strict.seg_ = seg
    np.testing.assert_array_equal(strict.predict(x[14:], b[14:]), seg.predict(x[14:], b[14:]))


@pytest.fixture(scope="module")
def render_results():
    return _load(_ROOT / "docs" / "render_results.py", "fastseg_render_results")


def test_results_pages_are_what_their_json_gives(render_results):
    # docs/quality.md and docs/performance.md are generated: never edited by hand
    for name, text in render_results.render().items():
        assert (_ROOT / "docs" / name).read_text() == text, f"docs/{name}: run python docs/render_results.py"
    quality = json.loads((_ROOT / "docs" / "results" / "quality.json").read_text())
    assert [r["name"] for r in quality["rows"]] == ["default", "linear-svm", "logistic"]
    page = (_ROOT / "docs" / "quality.md").read_text()
    assert f"| {quality['rows'][0]['cv']:.3f} |" in page and "Menze" in page  # figures and citations


def test_speed_pairs_take_their_medians_from_a_benchmark_run(render_results):
    record = {"sections": [{"title": "t", "rows": [
        {"task": "a", "group": "g", "fastseg_impl": "fastseg", "fastseg_s": 1.0, "baseline_impl": ["cv", "cv2"],
         "baseline_s": 9.0, "spread": "old runs"},
        {"task": "b", "group": "g", "fastseg_impl": "fastseg-2", "fastseg_s": 5.0},
        {"task": "c", "fastseg_s": 7.0},
        {"task": "d", "group": "missing", "fastseg_impl": "fastseg", "fastseg_s": 3.0}]}]}
    bench = {"benchmarks": [
        {"group": "g", "params": {"impl": "fastseg"}, "stats": {"median": 0.5}},
        {"group": "g", "params": {"impl": "cv"}, "stats": {"median": 4.0}},
        {"group": "g", "params": {"impl": "cv2"}, "stats": {"median": 3.0}},
        {"group": "g", "params": {"impl": "fastseg-2"}, "stats": {"median": 0.25}},
        {"group": "h", "params": None, "stats": {"median": 1.0}}]}
    assert render_results.update_speed(record, bench) == 2
    a, b, c, d = record["sections"][0]["rows"]
    assert (a["fastseg_s"], a["baseline_s"], "spread" in a) == (0.5, 3.0, False)  # the fastest baseline
    assert (b["fastseg_s"], c["fastseg_s"], d["fastseg_s"]) == (0.25, 7.0, 3.0)


# ----------------------------------------------------------------------------- experiments/volumes.py


@pytest.fixture(scope="module")
def volume_experiments():
    return _load(_ROOT / "experiments" / "volumes.py", "fastseg_volume_experiments_script")


def test_volume_rows_are_named_and_unknown_rows_refused(volume_experiments, capsys):
    with pytest.raises(SystemExit) as exc:
        volume_experiments.main(["proto-4d"])
    assert exc.value.code == 2 and "unknown rows ['proto-4d']" in capsys.readouterr().err


@pytest.mark.parametrize("seed", [0, 1])
def test_volume_brain_mean_is_the_mean_over_the_brain_voxels_of_each_box(volume_experiments, seed):
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((5, 6, 7)).astype(np.float32)
    b = rng.random((5, 6, 7)) < 0.6
    got, _ = volume_experiments.brain_mean(v, b.astype(np.float32), 3)
    for z, y, x in np.ndindex(v.shape):
        box = tuple(slice(max(i - 1, 0), i + 2) for i in (z, y, x))
        inside = b[box]
        expected = v[box][inside].mean() if inside.any() else 0.0
        assert got[z, y, x] == pytest.approx(expected, abs=1e-5)


def test_volume_adaptation_fits_the_volumes_own_confident_voxels(volume_experiments):
    rng = np.random.default_rng(0)
    b = np.ones((6, 20, 20), bool)
    truth = np.zeros_like(b)
    truth[:, 5:12, 5:12] = True
    x = rng.standard_normal((6, 20, 20, 4)).astype(np.float32) + 3.0 * truth[..., None]
    p = np.where(truth, 0.97, 0.02).astype(np.float32)
    p[:, 10:12, 5:12] = 0.5  # uncertain tumour: the discriminant pulls it up
    mixed = volume_experiments.adapted(p, x, b, np.random.default_rng(0))
    assert mixed[:, 10:12, 5:12].mean() > 0.6 and mixed[~truth].max() < 0.5
    too_few = np.full(p.shape, 0.5, np.float32)  # no confident voxels: the model's probability unchanged
    assert volume_experiments.adapted(too_few, x, b, np.random.default_rng(0)) is too_few
