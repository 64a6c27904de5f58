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
