"""Segmentation metrics: Dice, precision, recall, specificity, confusion matrix, and reports.

All metrics compare binary masks pixel by pixel (non-zero = tumour).  Pooled
metrics count every pixel of the arrays given; :func:`segmentation_report`
also gives per-slice and per-patient figures, a patient's slices pooled.

Empty masks follow the BraTS convention: when both the truth and the
prediction are empty, Dice (and precision, recall, specificity) is 1.0; when the
denominator is zero but the masks differ, it is 0.0.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from ._validation import check_masks

__all__ = [
    "confusion_matrix",
    "dice",
    "precision",
    "recall",
    "specificity",
    "segmentation_report",
    "SegmentationReport",
]


def _pair(y_true, y_pred):
    t = check_masks(y_true, "y_true", ndims=(2, 3)).astype(bool)
    p = check_masks(y_pred, "y_pred", shape=t.shape)
    return t, p.astype(bool)


def _counts(t: np.ndarray, p: np.ndarray) -> tuple[int, int, int, int]:
    tp = int(np.count_nonzero(t & p))
    fp = int(np.count_nonzero(p)) - tp
    fn = int(np.count_nonzero(t)) - tp
    tn = int(t.size) - tp - fp - fn
    return tn, fp, fn, tp


def _ratio(num: int, den: int, both_empty: bool) -> float:
    if den == 0:
        return 1.0 if both_empty else 0.0
    return num / den


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    """Pixel confusion matrix ``[[TN, FP], [FN, TP]]`` (scikit-learn's layout).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (H, W) or (N, H, W)
        Binary masks (bool, or integers with non-zero = tumour).

    Returns
    -------
    ndarray of shape (2, 2), dtype=int64

    Examples
    --------
    >>> import numpy as np
    >>> from fastseg.metrics import confusion_matrix
    >>> confusion_matrix(np.array([[1, 1, 0, 0]]), np.array([[1, 0, 1, 0]])).tolist()
    [[1, 1], [1, 1]]
    """
    tn, fp, fn, tp = _counts(*_pair(y_true, y_pred))
    return np.array([[tn, fp], [fn, tp]], dtype=np.int64)


def dice(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Dice coefficient ``2 |T & P| / (|T| + |P|)`` over all pixels given (1.0 when both are empty).

    Examples
    --------
    >>> import numpy as np
    >>> from fastseg.metrics import dice
    >>> dice(np.array([[1, 1, 0, 0]]), np.array([[1, 0, 1, 0]]))
    0.5
    >>> dice(np.zeros((2, 2)), np.zeros((2, 2)))
    1.0
    """
    tn, fp, fn, tp = _counts(*_pair(y_true, y_pred))
    return _ratio(2 * tp, 2 * tp + fp + fn, fp + fn + tp == 0)


def precision(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Precision ``TP / (TP + FP)``: the fraction of predicted tumour pixels that are tumour.

    Examples
    --------
    >>> import numpy as np
    >>> from fastseg.metrics import precision
    >>> precision(np.array([[1, 1, 0, 0]]), np.array([[1, 0, 1, 1]]))
    0.3333333333333333
    """
    tn, fp, fn, tp = _counts(*_pair(y_true, y_pred))
    return _ratio(tp, tp + fp, fp + fn + tp == 0)


def recall(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Recall (sensitivity) ``TP / (TP + FN)``: the fraction of tumour pixels found.

    Examples
    --------
    >>> import numpy as np
    >>> from fastseg.metrics import recall
    >>> recall(np.array([[1, 1, 0, 0]]), np.array([[1, 0, 1, 1]]))
    0.5
    """
    tn, fp, fn, tp = _counts(*_pair(y_true, y_pred))
    return _ratio(tp, tp + fn, fp + fn + tp == 0)


def specificity(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Specificity ``TN / (TN + FP)``: the fraction of non-tumour pixels left out.

    Examples
    --------
    >>> import numpy as np
    >>> from fastseg.metrics import specificity
    >>> specificity(np.array([[1, 1, 0, 0]]), np.array([[1, 0, 1, 0]]))
    0.5
    """
    tn, fp, fn, tp = _counts(*_pair(y_true, y_pred))
    return _ratio(tn, tn + fp, fp + fn + tn == 0)


_METRICS = ("dice", "precision", "recall", "specificity")


def _row(t: np.ndarray, p: np.ndarray) -> dict:
    tn, fp, fn, tp = _counts(t, p)
    same = fp + fn == 0
    return {
        "dice": _ratio(2 * tp, 2 * tp + fp + fn, same),
        "precision": _ratio(tp, tp + fp, same),
        "recall": _ratio(tp, tp + fn, same),
        "specificity": _ratio(tn, tn + fp, same),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


@dataclass
class SegmentationReport:
    """Per-slice, per-group and pooled segmentation figures.

    Attributes
    ----------
    per_slice : list of dict
        One row per slice: ``slice``, ``group`` and the metrics.
    per_group : list of dict
        One row per group (patient), its slices pooled: ``group``, ``n_slices`` and the metrics.
    mean_slice : dict
        Mean of each metric over slices.
    mean_group : dict
        Mean of each metric over groups: the figure to quote for patient-wise quality.
    pooled : dict
        Every pixel of every slice pooled together.
    """

    per_slice: list = field(default_factory=list)
    per_group: list = field(default_factory=list)
    mean_slice: dict = field(default_factory=dict)
    mean_group: dict = field(default_factory=dict)
    pooled: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain-Python form (JSON-serialisable)."""
        return {
            "per_slice": self.per_slice,
            "per_group": self.per_group,
            "mean_slice": self.mean_slice,
            "mean_group": self.mean_group,
            "pooled": self.pooled,
        }

    def format(self) -> str:
        """A text table: one line per group, then the means and the pooled figures."""
        lines = [f"{'group':<24} {'slices':>6} " + " ".join(f"{m:>11}" for m in _METRICS)]
        for row in self.per_group:
            lines.append(
                f"{str(row['group']):<24} {row['n_slices']:>6} " + " ".join(f"{row[m]:>11.3f}" for m in _METRICS)
            )
        lines.append(f"{'mean over groups':<24} {len(self.per_group):>6} " + " ".join(f"{self.mean_group[m]:>11.3f}" for m in _METRICS))
        lines.append(f"{'mean over slices':<24} {len(self.per_slice):>6} " + " ".join(f"{self.mean_slice[m]:>11.3f}" for m in _METRICS))
        lines.append(f"{'pooled pixels':<24} {len(self.per_slice):>6} " + " ".join(f"{self.pooled[m]:>11.3f}" for m in _METRICS))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def segmentation_report(y_true: ArrayLike, y_pred: ArrayLike, groups: ArrayLike | None = None) -> SegmentationReport:
    """Dice, precision, recall and specificity per slice, per group (patient) and pooled.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (N, H, W) or (H, W)
        Ground-truth and predicted binary masks.
    groups : array-like of shape (N,), optional
        The group (patient id) of each slice; a group's slices are pooled into
        one figure.  Without it each slice is its own group.

    Returns
    -------
    SegmentationReport

    Examples
    --------
    >>> import numpy as np
    >>> from fastseg.metrics import segmentation_report
    >>> truth = np.zeros((3, 4, 4), bool); truth[:, 1:3, 1:3] = True
    >>> pred = truth.copy(); pred[2] = False
    >>> report = segmentation_report(truth, pred, groups=["a", "a", "b"])
    >>> [(row["group"], row["dice"]) for row in report.per_group]
    [('a', 1.0), ('b', 0.0)]
    >>> report.mean_group["dice"], report.mean_slice["dice"]
    (0.5, 0.6666666666666666)
    """
    t, p = _pair(y_true, y_pred)
    if t.ndim == 2:
        t, p = t[None], p[None]
    n = t.shape[0]
    if groups is None:
        groups = np.arange(n)
    groups = np.asarray(groups)
    if groups.shape != (n,):
        raise ValueError(f"groups must have one entry per slice, shape ({n},), got shape {groups.shape}")
    if groups.dtype == object:
        if any(g is None for g in groups):
            raise TypeError("groups must hold patient ids (str or int), got None")
        try:
            groups = np.asarray(groups.tolist())  # a plain str/int array, so ids sort and compare
        except (TypeError, ValueError) as exc:
            raise TypeError(f"groups must hold patient ids (str or int): {exc}") from None
        if groups.dtype == object or groups.shape != (n,):
            raise TypeError("groups must hold patient ids of one kind (str or int)")
    report = SegmentationReport()
    for i in range(n):
        report.per_slice.append({"slice": i, "group": groups[i].item(), **_row(t[i], p[i])})
    _, first = np.unique(groups, return_index=True)
    for g in groups[np.sort(first)]:  # groups in order of first appearance
        sel = groups == g
        report.per_group.append({"group": g.item(), "n_slices": int(sel.sum()), **_row(t[sel], p[sel])})
    report.mean_slice = {m: float(np.mean([r[m] for r in report.per_slice])) for m in _METRICS}
    report.mean_group = {m: float(np.mean([r[m] for r in report.per_group])) for m in _METRICS}
    report.pooled = {m: v for m, v in _row(t, p).items()}
    return report
