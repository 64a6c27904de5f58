"""Metrics against scikit-learn's and hand counts; the report's per-slice / per-patient pooling."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from fastseg.metrics import confusion_matrix, dice, precision, recall, segmentation_report, specificity


@pytest.fixture
def pair(rng):
    t = rng.random((5, 17, 13)) < 0.3
    p = t ^ (rng.random((5, 17, 13)) < 0.2)
    return t, p


def test_against_scikit_learn(pair):
    t, p = pair
    tf, pf = t.ravel(), p.ravel()
    assert confusion_matrix(t, p).tolist() == skm.confusion_matrix(tf, pf).tolist()
    assert dice(t, p) == pytest.approx(skm.f1_score(tf, pf))
    assert precision(t, p) == pytest.approx(skm.precision_score(tf, pf))
    assert recall(t, p) == pytest.approx(skm.recall_score(tf, pf))
    assert specificity(t, p) == pytest.approx(skm.recall_score(~tf, ~pf))


def test_empty_conventions():
    empty = np.zeros((4, 4), bool)
    full = np.ones((4, 4), bool)
    for metric in (dice, precision, recall):
        assert metric(empty, empty) == 1.0
        assert metric(full, empty) == 0.0
    assert precision(empty, full) == 0.0 and recall(empty, full) == 0.0 and dice(empty, full) == 0.0
    assert specificity(full, full) == 1.0 and specificity(empty, full) == 0.0


def test_dtypes_and_inputs_unchanged(pair):
    t, p = pair
    t8, p8 = t.astype(np.uint8) * 7, p.astype(np.int64)
    before = (t8.copy(), p8.copy())
    assert dice(t8, p8) == dice(t, p)
    np.testing.assert_array_equal(t8, before[0])
    np.testing.assert_array_equal(p8, before[1])


def test_report_pools_slices_per_group(pair):
    t, p = pair
    groups = np.array(["a", "b", "a", "c", "b"])
    rep = segmentation_report(t, p, groups)
    assert [r["group"] for r in rep.per_group] == ["a", "b", "c"]
    for row in rep.per_group:
        sel = groups == row["group"]
        assert row["dice"] == pytest.approx(dice(t[sel], p[sel]))
        assert row["n_slices"] == sel.sum()
    assert [r["dice"] for r in rep.per_slice] == pytest.approx([dice(t[i], p[i]) for i in range(5)])
    assert rep.mean_group["dice"] == pytest.approx(np.mean([r["dice"] for r in rep.per_group]))
    assert rep.mean_slice["dice"] == pytest.approx(np.mean([dice(t[i], p[i]) for i in range(5)]))
    assert rep.pooled["dice"] == pytest.approx(dice(t, p))
    text = rep.format()
    lines = text.splitlines()
    assert len(lines) == 1 + 3 + 3  # header, one line per group, three summary lines
    assert lines[-3].startswith("mean over groups") and lines[-1].startswith("pooled pixels")


def test_report_without_groups_and_single_slice(pair):
    t, p = pair
    rep = segmentation_report(t, p)
    assert len(rep.per_group) == 5 and rep.mean_group == rep.mean_slice
    rep1 = segmentation_report(t[0], p[0])
    assert rep1.pooled["dice"] == pytest.approx(dice(t[0], p[0]))
    assert set(rep1.to_dict()) == {"per_slice", "per_group", "mean_slice", "mean_group", "pooled"}


def test_bad_input(pair):
    t, p = pair
    with pytest.raises(ValueError, match=r"y_pred must have shape \(5, 17, 13\), got shape \(5, 17, 12\)"):
        dice(t, p[..., :12])
    with pytest.raises(ValueError, match=r"groups must have one entry per slice, shape \(5,\), got shape \(4,\)"):
        segmentation_report(t, p, groups=[1, 2, 3, 4])
    with pytest.raises(TypeError, match="y_true must be a boolean or integer mask"):
        dice(t.astype(complex), p)
    with pytest.raises(ValueError, match="y_true must have 2 or 3 dimensions"):
        dice(t.ravel(), p.ravel())


# ----------------------------------------------------------------------------- HD95, volume difference, case rows

from hypothesis import given, strategies as st  # noqa: E402

from fastseg import _reference  # noqa: E402
from fastseg.metrics import case_metrics, hausdorff95, summarize, surface, volume_difference  # noqa: E402


@given(seed=st.integers(0, 2**32 - 1), shape=st.tuples(st.integers(1, 7), st.integers(1, 9), st.integers(1, 8)),
       density=st.floats(0.05, 0.9), spacing=st.tuples(*[st.floats(0.3, 4.0)] * 3))
def test_hausdorff95_equals_the_brute_force_reference_hypothesis(seed, shape, density, spacing):
    rng = np.random.default_rng(seed)
    t = rng.random(shape) < density
    p = rng.random(shape) < density * rng.random()
    np.testing.assert_array_equal(surface(t), _reference.surface(t))
    assert hausdorff95(t, p, spacing) == pytest.approx(_reference.hausdorff95(t, p, spacing), rel=1e-12, abs=1e-12)
    assert hausdorff95(p, t, spacing) == pytest.approx(_reference.hausdorff95(p, t, spacing), rel=1e-12, abs=1e-12)


@given(seed=st.integers(0, 2**32 - 1), spacing=st.tuples(st.floats(0.3, 4.0), st.floats(0.3, 4.0)))
def test_hausdorff95_2d_equals_the_reference_hypothesis(seed, spacing):
    rng = np.random.default_rng(seed)
    t, p = rng.random((11, 13)) < 0.3, rng.random((11, 13)) < 0.2
    assert hausdorff95(t, p, spacing) == pytest.approx(_reference.hausdorff95(t, p, spacing), rel=1e-12, abs=1e-12)


def test_hausdorff95_by_hand():
    t = np.zeros((9, 9), bool)
    t[2:5, 2:5] = True
    # shifted by 2 columns: every surface voxel of either is 0 or 2 voxels from the other's surface
    p = np.roll(t, 2, axis=1)
    # surface of t: its 8 border voxels (the centre is interior); distances from t's surface to p's:
    # columns 2 -> 2 (to column 4), column 3 -> 1, column 4 -> 0 => sorted [0,0,0,1,1,2,2,2]
    d = np.array([0, 0, 0, 1, 1, 2, 2, 2], float)
    assert hausdorff95(t, p) == pytest.approx(np.percentile(d, 95))
    # anisotropic: columns 3 mm apart, rows 1 mm: the same voxel distances scaled by 3
    assert hausdorff95(t, p, spacing=(1.0, 3.0)) == pytest.approx(3 * np.percentile(d, 95))
    # in 3-D, a single slice is all surface (beyond the array is outside): the centre counts too
    d3 = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2], float)
    assert hausdorff95(t[None], p[None], spacing=(5.0, 1.0, 3.0)) == pytest.approx(3 * np.percentile(d3, 95))
    # the single-voxel masks: the distance between them
    a, b = np.zeros((4, 5, 6), bool), np.zeros((4, 5, 6), bool)
    a[0, 0, 0], b[3, 4, 5] = True, True
    assert hausdorff95(a, b, spacing=(2.0, 1.0, 0.5)) == pytest.approx(np.sqrt(6.0**2 + 4.0**2 + 2.5**2))
    assert hausdorff95(a, a) == 0.0


def test_hausdorff95_empty_masks():
    empty, one = np.zeros((240, 240, 155), bool), np.zeros((240, 240, 155), bool)
    one[100, 100, 70] = True
    assert hausdorff95(empty, empty) == 0.0
    assert hausdorff95(empty, one) == hausdorff95(one, empty) == pytest.approx(373.1287, abs=1e-4)  # BraTS's value
    assert hausdorff95(empty[:2, :3, :4], one[:2, :3, :4] | True, spacing=(1, 2, 3)) == pytest.approx(np.sqrt(4 + 36 + 144))


def test_hausdorff95_takes_the_larger_directed_percentile_not_the_pooled_one():
    t = np.zeros((40, 40), bool)
    t[5:25, 5:25] = True  # 76 surface voxels
    p = t.copy()
    p[35, [1, 8, 15, 22, 29, 36]] = True  # 6 stray voxels: 7 % of the prediction's 82 surface voxels
    hd = hausdorff95(t, p)
    assert hd == hausdorff95(p, t) == pytest.approx(_reference.hausdorff95(t, p))
    assert hd >= 10.0  # the strays (>= 11 voxels from t) reach the prediction's 95th percentile
    st_, sp_ = np.argwhere(surface(t)), np.argwhere(surface(p))
    d = np.sqrt(((st_[:, None] - sp_[None]) ** 2).sum(-1))
    pooled = np.percentile(np.concatenate([d.min(1), d.min(0)]), 95)
    assert pooled == 0.0  # the pooled variant (4 % strays) does not see them


def test_volume_difference_and_case_metrics():
    t = np.zeros((3, 4, 5), bool)
    t[1, 1:3, 1:4] = True  # 6 voxels
    p = t.copy()
    p[2, 0, 0] = True  # 7 voxels
    assert volume_difference(t, p, spacing=(1.0, 2.0, 3.0)) == 6.0
    assert volume_difference(p, t) == -1.0
    row = case_metrics(t, p, spacing=(1.0, 2.0, 3.0))
    assert row["dice"] == pytest.approx(12 / 13) and row["recall"] == 1.0 and row["precision"] == pytest.approx(6 / 7)
    assert row["volume_difference_ml"] == pytest.approx(0.006)
    assert row["hd95"] == pytest.approx(_reference.hausdorff95(t, p, (1.0, 2.0, 3.0)))
    both_empty = case_metrics(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))
    assert both_empty == {"dice": 1.0, "hd95": 0.0, "precision": 1.0, "recall": 1.0, "volume_difference_ml": 0.0}


def test_summarize():
    rows = [{"dice": 0.2, "hd95": 10.0, "volume_difference_ml": -3.0}, {"dice": 0.8, "hd95": 2.0,
            "volume_difference_ml": 1.0}, {"dice": 0.5, "hd95": 4.0, "volume_difference_ml": 2.0}]
    s = summarize(rows, ["dice", "hd95", "volume_difference_ml"])
    assert s["dice"]["worst"] == 0.2 and s["hd95"]["worst"] == 10.0 and s["volume_difference_ml"]["worst"] == -3.0
    assert s["dice"]["median"] == 0.5 and s["dice"]["mean"] == pytest.approx(0.5)
    assert s["hd95"]["std"] == pytest.approx(np.std([10.0, 2.0, 4.0]))


@pytest.mark.parametrize("spacing, error, match", [
    ((1.0, 1.0), ValueError, r"spacing must be 3 positive finite numbers"),
    ((1.0, 0.0, 1.0), ValueError, r"spacing must be 3 positive"),
    ((1.0, float("nan"), 1.0), ValueError, r"spacing must be 3 positive"),
    ("abc", TypeError, r"spacing must be a sequence of 3 positive numbers, got 'abc'"),
    (3.0, TypeError, r"spacing must be a sequence"),
])
def test_hausdorff95_bad_spacing(spacing, error, match):
    m = np.ones((2, 2, 2), bool)
    with pytest.raises(error, match=match):
        hausdorff95(m, m, spacing)


def test_hausdorff95_bad_masks():
    with pytest.raises(ValueError, match=r"y_pred must have shape \(2, 2, 2\), got shape \(2, 2\)"):
        hausdorff95(np.ones((2, 2, 2)), np.ones((2, 2)))
    with pytest.raises(TypeError, match="y_true must be an array, got None"):
        hausdorff95(None, np.ones((2, 2)))


# ----------------------------------------------------------------------------- BraTS regions of label maps

from fastseg.metrics import region_metrics  # noqa: E402

#: Each convention's regions, written out here rather than read from fastseg.io.
REGION_LABELS = {
    "brats2018": {"whole tumour": [1, 2, 4], "tumour core": [1, 4], "enhancing tumour": [4]},
    "brats2023": {"whole tumour": [1, 2, 3], "tumour core": [1, 3], "enhancing tumour": [3]},
    "msd": {"whole tumour": [1, 2, 3], "tumour core": [2, 3], "enhancing tumour": [3]},
}


@pytest.mark.parametrize("convention", sorted(REGION_LABELS))
def test_region_metrics_equal_case_metrics_of_each_region_mask(convention, rng):
    values = [0, *REGION_LABELS[convention]["whole tumour"]]
    truth = rng.choice(values, size=(6, 11, 9), p=[0.55, 0.15, 0.15, 0.15]).astype(np.int16)
    pred = np.where(rng.random(truth.shape) < 0.25, rng.choice(values, size=truth.shape), truth)
    spacing = (2.0, 0.5, 1.5)
    scores = region_metrics(truth, pred, convention, spacing)
    assert list(scores) == ["whole tumour", "tumour core", "enhancing tumour"]
    for region, labels in REGION_LABELS[convention].items():
        assert scores[region] == case_metrics(np.isin(truth, labels), np.isin(pred, labels), spacing), region
    # the regions differ: the comparison above is not of one mask three times
    assert len({row["dice"] for row in scores.values()}) == 3


def test_region_metrics_of_nested_regions():
    """BraTS 2018 labels: a prediction that calls the core oedema keeps its whole tumour and loses the rest."""
    truth = np.zeros((3, 10, 10), np.uint8)
    truth[:, 2:8, 2:8] = 2  # oedema
    truth[1, 3:7, 3:7] = 1  # necrotic core
    truth[1, 4:6, 4:6] = 4  # enhancing, inside the core
    as_oedema = np.where(truth > 0, 2, 0)
    scores = region_metrics(truth, as_oedema, "brats2018")
    assert scores["whole tumour"]["dice"] == 1.0 and scores["whole tumour"]["hd95"] == 0.0
    for region in ("tumour core", "enhancing tumour"):
        assert scores[region]["dice"] == scores[region]["recall"] == 0.0
        assert scores[region]["hd95"] == pytest.approx(np.sqrt(3**2 + 10**2 + 10**2))
    # enhancing predicted as core: tumour core right, enhancing tumour missed
    scores = region_metrics(truth, np.where(truth == 4, 1, truth), "brats2018")
    assert scores["whole tumour"]["dice"] == scores["tumour core"]["dice"] == 1.0
    assert scores["enhancing tumour"]["dice"] == 0.0
    assert scores["enhancing tumour"]["volume_difference_ml"] == pytest.approx(-4 / 1000)


def test_region_metrics_without_enhancing_tumour_in_the_truth_follow_brats():
    """No enhancing tumour in the truth: Dice 1 and HD95 0 when none is predicted; Dice 0 and HD95 the
    diagonal of the volume, 373.13 mm for 240 x 240 x 155 voxels of 1 mm, when some is."""
    truth = np.zeros((155, 240, 240), np.uint8)
    truth[70:80, 100:130, 100:130] = 2
    truth[73:77, 110:120, 110:120] = 1
    scores = region_metrics(truth, truth, "brats2018")
    assert scores["enhancing tumour"] == {"dice": 1.0, "hd95": 0.0, "precision": 1.0, "recall": 1.0,
                                          "volume_difference_ml": 0.0}
    pred = truth.copy()
    pred[75, 115, 115] = 4
    scores = region_metrics(truth, pred, "brats2018")
    et = scores["enhancing tumour"]
    assert et["dice"] == et["precision"] == et["recall"] == 0.0
    assert et["hd95"] == pytest.approx(373.1287, abs=1e-4)
    assert et["volume_difference_ml"] == pytest.approx(0.001)
    # the voxel turned from core to enhancing stays in the core and the whole tumour
    assert scores["whole tumour"]["dice"] == scores["tumour core"]["dice"] == 1.0
    # and the other way round: enhancing tumour in the truth only
    scores = region_metrics(pred, truth, "brats2018")
    assert scores["enhancing tumour"]["dice"] == 0.0
    assert scores["enhancing tumour"]["hd95"] == pytest.approx(373.1287, abs=1e-4)


@pytest.mark.parametrize("convention, label", [("brats2018", 3), ("brats2023", 4), ("msd", 4)])
def test_region_metrics_refuse_labels_outside_the_convention(convention, label):
    good = np.zeros((2, 4, 4), np.int32)
    good[0, 1, 1] = 1
    bad = good.copy()
    bad[1, 2, 2] = label
    with pytest.raises(ValueError, match=rf"truth_labels: labels \{{{label}\}} are not in the {convention} convention"):
        region_metrics(bad, good, convention)
    with pytest.raises(ValueError, match=rf"pred_labels: labels \{{{label}\}} are not in the {convention} convention"):
        region_metrics(good, bad, convention)
    bad[0, 0, 0] = 7
    with pytest.raises(ValueError, match=rf"labels \{{{min(label, 7)}, {max(label, 7)}\}} are not in"):
        region_metrics(good, bad, convention)


def test_region_metrics_bad_input():
    m = np.zeros((2, 3, 3), np.int32)
    with pytest.raises(TypeError, match=r"convention must be one of \['brats2018', 'brats2023', 'msd'\], got 2018"):
        region_metrics(m, m, 2018)
    with pytest.raises(ValueError, match=r"convention must be one of .*, got 'brats2021'"):
        region_metrics(m, m, "brats2021")
    with pytest.raises(TypeError, match=r"truth_labels must be an integer label map, got dtype bool"):
        region_metrics(m > 0, m, "brats2018")
    with pytest.raises(TypeError, match=r"pred_labels must be an array, got None"):
        region_metrics(m, None, "brats2018")
    with pytest.raises(ValueError, match=r"pred_labels must have shape \(2, 3, 3\), got shape \(3, 3\)"):
        region_metrics(m, m[0], "brats2018")
    with pytest.raises(ValueError, match=r"truth_labels must have 2 or 3 dimensions, got shape \(3,\)"):
        region_metrics(m[0, 0], m[0, 0], "brats2018")
    with pytest.raises(ValueError, match=r"truth_labels must hold whole-number labels, got value 1.5"):
        region_metrics(m + 1.5, m, "brats2018")
    with pytest.raises(ValueError, match=r"spacing must be 3 positive finite numbers"):
        region_metrics(m, m, "brats2018", spacing=(1.0, 1.0))
    # whole-number floats are label maps too
    assert region_metrics(m.astype(np.float32), m, "msd") == region_metrics(m, m, "msd")
