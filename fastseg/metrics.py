"""Segmentation metrics: Dice, HD95, precision, recall, specificity, volume difference, and reports.

All metrics compare binary masks pixel by pixel (non-zero = tumour).  Pooled
metrics count every pixel of the arrays given; :func:`segmentation_report`
also gives per-slice and per-patient figures, a patient's slices pooled.

Empty masks follow the BraTS convention: when both the truth and the
prediction are empty, Dice (and precision, recall, specificity) is 1.0; when the
denominator is zero but the masks differ, it is 0.0.

The 95th-percentile Hausdorff distance (:func:`hausdorff95`) and the volume
difference (:func:`volume_difference`) are computed in millimetres with the
voxel spacing; :func:`case_metrics` gives a case's row of a leaderboard table,
:func:`region_metrics` that row for each BraTS region of a label map, and
:func:`summarize` the summary of such a table.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from ._validation import _as_array, check_masks
from .io import LABEL_CONVENTIONS, _check_convention

__all__ = [
    "confusion_matrix",
    "dice",
    "precision",
    "recall",
    "specificity",
    "segmentation_report",
    "SegmentationReport",
    "hausdorff95",
    "surface",
    "volume_difference",
    "case_metrics",
    "region_metrics",
    "summarize",
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


# ----------------------------------------------------------------------------- surface metrics

def _spacing(spacing, ndim: int) -> tuple:
    if spacing is None:
        return (1.0,) * ndim
    try:
        values = tuple(float(s) for s in spacing)
    except (TypeError, ValueError):
        raise TypeError(f"spacing must be a sequence of {ndim} positive numbers, got {spacing!r}") from None
    if len(values) != ndim or not all(np.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"spacing must be {ndim} positive finite numbers (one per axis), got {spacing!r}")
    return values


def surface(mask: ArrayLike) -> np.ndarray:
    """The surface voxels of a mask: those with a face neighbour outside it.

    A voxel of the mask is on its surface when at least one of its ``2 * ndim``
    face neighbours (4 in 2-D, 6 in 3-D) is not in the mask; beyond the array's
    edge counts as outside.  This is the mask minus its erosion by the
    face-connected cross (``scipy.ndimage.generate_binary_structure(ndim, 1)``,
    ``border_value=0``).

    Examples
    --------
    >>> import numpy as np
    >>> from fastseg.metrics import surface
    >>> m = np.zeros((5, 5), bool); m[1:4, 1:4] = True
    >>> surface(m).astype(int)
    array([[0, 0, 0, 0, 0],
           [0, 1, 1, 1, 0],
           [0, 1, 0, 1, 0],
           [0, 1, 1, 1, 0],
           [0, 0, 0, 0, 0]])
    """
    m = check_masks(mask, "mask", ndims=(2, 3)).astype(bool)
    return _surface(m)


def _surface(m: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return m & ~ndimage.binary_erosion(m, ndimage.generate_binary_structure(m.ndim, 1), border_value=0)


def hausdorff95(y_true: ArrayLike, y_pred: ArrayLike, spacing=None) -> float:
    """95th-percentile Hausdorff distance between two masks' surfaces, in the units of ``spacing``.

    Definition (that of the BraTS evaluations):

    1. the surfaces ``S_T`` and ``S_P`` of the truth and the prediction are their
       voxels with a face neighbour outside them (:func:`surface`);
    2. each voxel of ``S_T`` gets its Euclidean distance to the nearest voxel of
       ``S_P``, between voxel centres, with the voxel size ``spacing``
       (``scipy.ndimage.distance_transform_edt(..., sampling=spacing)``), and each voxel of
       ``S_P`` its distance to the nearest voxel of ``S_T``;
    3. HD95 is the larger of the two directed 95th percentiles (``numpy.percentile``,
       linear interpolation): ``max(P95(d(S_T, S_P)), P95(d(S_P, S_T)))``.  (Pooling both
       directions' distances before taking one percentile, as some packages do, gives
       other values.)

    Empty masks: both empty gives 0.0; exactly one empty gives the length of the
    volume's diagonal, ``sqrt(sum((shape * spacing) ** 2))``: the largest distance two
    voxels of the volume can have, 373.13 mm for BraTS's 240 x 240 x 155 volumes of 1 mm,
    the value BraTS assigns.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (H, W) or (D, H, W)
        Binary masks of one shape.
    spacing : sequence of float, optional
        Voxel size along each axis (default 1).

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from fastseg.metrics import hausdorff95
    >>> t = np.zeros((1, 8, 8), bool); t[0, 2:5, 2:5] = True
    >>> p = np.zeros((1, 8, 8), bool); p[0, 2:5, 3:6] = True
    >>> hausdorff95(t, p), hausdorff95(t, p, spacing=(1, 1, 2))
    (1.0, 2.0)
    >>> round(hausdorff95(np.zeros((240, 240, 155), bool), np.ones((240, 240, 155), bool)), 2)
    373.13
    """
    t, p = _pair(y_true, y_pred)
    return _hausdorff95(t, p, _spacing(spacing, t.ndim))


def _hausdorff95(t: np.ndarray, p: np.ndarray, spacing: tuple) -> float:
    from scipy import ndimage

    has_t, has_p = bool(t.any()), bool(p.any())
    if not has_t and not has_p:
        return 0.0
    if not has_t or not has_p:
        return float(np.sqrt(sum((n * s) ** 2 for n, s in zip(t.shape, spacing))))
    # the bounding box of both masks and one voxel around it holds every surface voxel and all that
    # the erosion looks at (beyond it is outside both masks, as beyond the array)
    both = np.argwhere(t | p)
    lo = np.maximum(both.min(axis=0) - 1, 0)
    hi = np.minimum(both.max(axis=0) + 2, t.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    st, sp = _surface(t[box]), _surface(p[box])
    to_p = ndimage.distance_transform_edt(~sp, sampling=spacing)[st]
    to_t = ndimage.distance_transform_edt(~st, sampling=spacing)[sp]
    return float(max(np.percentile(to_p, 95), np.percentile(to_t, 95)))


def volume_difference(y_true: ArrayLike, y_pred: ArrayLike, spacing=None) -> float:
    """Predicted minus true volume, ``(|P| - |T|) * prod(spacing)`` (mm^3 for spacing in mm).

    Examples
    --------
    >>> import numpy as np
    >>> from fastseg.metrics import volume_difference
    >>> volume_difference(np.array([[1, 1, 0]]), np.array([[1, 1, 1]]), spacing=(2.0, 0.5))
    1.0
    """
    t, p = _pair(y_true, y_pred)
    s = _spacing(spacing, t.ndim)
    return float((int(np.count_nonzero(p)) - int(np.count_nonzero(t))) * float(np.prod(s)))


#: The columns of :func:`case_metrics`, and whether a larger value is better.
CASE_METRICS = {"dice": True, "hd95": False, "precision": True, "recall": True, "volume_difference_ml": None}


def case_metrics(y_true: ArrayLike, y_pred: ArrayLike, spacing=None) -> dict:
    """One case's leaderboard row: Dice, HD95 (mm), precision, recall and volume difference (mL).

    Empty masks follow BraTS's rule (that of :func:`dice` and :func:`hausdorff95`): when the truth
    and the prediction are both empty, Dice, precision and recall are 1 and HD95 is 0; when exactly
    one is empty, Dice, precision and recall are 0 and HD95 is the length of the volume's diagonal
    (373.13 mm for BraTS's 240 x 240 x 155 volumes of 1 mm).  A region that may be absent, such as
    the enhancing tumour, is scored by this rule (:func:`region_metrics`).  The volume difference
    is :func:`volume_difference` / 1000 (mm^3 -> mL).

    Examples
    --------
    >>> import numpy as np
    >>> from fastseg.metrics import case_metrics
    >>> t = np.zeros((4, 8, 8), bool); t[1:3, 2:6, 2:6] = True
    >>> case_metrics(t, t)
    {'dice': 1.0, 'hd95': 0.0, 'precision': 1.0, 'recall': 1.0, 'volume_difference_ml': 0.0}
    """
    t, p = _pair(y_true, y_pred)
    s = _spacing(spacing, t.ndim)
    tn, fp, fn, tp = _counts(t, p)
    same = fp + fn == 0
    return {
        "dice": _ratio(2 * tp, 2 * tp + fp + fn, same),
        "hd95": _hausdorff95(t, p, s),
        "precision": _ratio(tp, tp + fp, same),
        "recall": _ratio(tp, tp + fn, same),
        "volume_difference_ml": (fp - fn) * float(np.prod(s)) / 1000.0,
    }


def _check_label_map(labels, name: str, convention: str, *, shape=None) -> np.ndarray:
    """A 2-D or 3-D integer label map whose labels are all 0 or a label of ``convention``.

    Floating maps are taken when every value is a whole number; booleans are refused (a binary mask
    is not a label map: :func:`case_metrics` scores it).
    """
    arr = _as_array(labels, name)
    if arr.dtype.kind not in "iuf":
        hint = " (a binary mask: score it with case_metrics)" if arr.dtype.kind == "b" else ""
        raise TypeError(f"{name} must be an integer label map, got dtype {arr.dtype}{hint}")
    if shape is not None:
        if arr.shape != tuple(shape):
            raise ValueError(f"{name} must have shape {tuple(shape)}, got shape {arr.shape}")
    elif arr.ndim not in (2, 3):
        raise ValueError(f"{name} must have 2 or 3 dimensions, got shape {arr.shape}")
    if 0 in arr.shape:
        raise ValueError(f"{name} must not have zero-size axes, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        whole = np.isfinite(arr) & (arr == np.round(arr))
        if not whole.all():
            raise ValueError(f"{name} must hold whole-number labels, got value {arr[~whole].ravel()[0].item()!r}")
    known = (0,) + LABEL_CONVENTIONS[convention]["whole tumour"]
    other = ~np.isin(arr, known)
    if other.any():
        found = ", ".join(f"{v:g}" for v in np.unique(arr[other]).tolist())
        raise ValueError(f"{name}: labels {{{found}}} are not in the {convention} convention "
                         f"(its labels: {', '.join(str(v) for v in known)})")
    return arr


def region_metrics(truth_labels: ArrayLike, pred_labels: ArrayLike, convention: str, spacing=None) -> dict:
    """:func:`case_metrics` of each BraTS region of two label maps: whole tumour, tumour core, enhancing tumour.

    Each region is the voxels whose label is one of the region's labels in ``convention``
    (:data:`fastseg.io.LABEL_CONVENTIONS`), in the truth and in the prediction alike:

    ==============  ================  ===============  ==================
    convention      whole tumour      tumour core      enhancing tumour
    ==============  ================  ===============  ==================
    ``brats2018``   1, 2, 4           1, 4             4
    ``brats2023``   1, 2, 3           1, 3             3
    ``msd``         1, 2, 3           2, 3             3
    ==============  ================  ===============  ==================

    An empty region (no enhancing tumour, say) is scored by BraTS's rule, as :func:`case_metrics`
    says: both empty gives Dice 1 and HD95 0; exactly one empty gives Dice 0 and HD95 the
    volume's diagonal.

    Parameters
    ----------
    truth_labels, pred_labels : array-like of shape (H, W) or (D, H, W)
        Integer label maps of one shape (floating ones whose values are whole numbers are taken).
    convention : {"brats2018", "brats2023", "msd"}
        The label convention of both maps.
    spacing : sequence of float, optional
        Voxel size along each axis (default 1), as for :func:`case_metrics`.

    Returns
    -------
    dict
        ``{"whole tumour": row, "tumour core": row, "enhancing tumour": row}``, each ``row`` the
        dict of :func:`case_metrics`.

    Raises
    ------
    TypeError
        If a map is not an integer (or whole-number) array, or ``convention`` is not a string.
    ValueError
        If ``convention`` is unknown, the maps differ in shape, or a map holds a label that is
        neither 0 nor one of the convention's (the message lists them).

    Examples
    --------
    >>> import numpy as np
    >>> from fastseg.metrics import region_metrics
    >>> truth = np.zeros((1, 6, 6), int)
    >>> truth[0, 1:5, 1:5] = 2; truth[0, 2:4, 2:4] = 1  # oedema around a core, no enhancing tumour
    >>> pred = truth.copy(); pred[0, 2, 2] = 4          # one voxel of the core predicted enhancing
    >>> scores = region_metrics(truth, pred, "brats2018")
    >>> {region: row["dice"] for region, row in scores.items()}
    {'whole tumour': 1.0, 'tumour core': 1.0, 'enhancing tumour': 0.0}
    >>> round(scores["enhancing tumour"]["hd95"], 2)  # absent from the truth only: the diagonal
    8.54
    """
    convention = _check_convention(convention)
    t = _check_label_map(truth_labels, "truth_labels", convention)
    p = _check_label_map(pred_labels, "pred_labels", convention, shape=t.shape)
    return _region_metrics(t, p, convention, spacing)


def _region_metrics(t: np.ndarray, p: np.ndarray, convention: str, spacing=None) -> dict:
    """:func:`region_metrics` of label maps already checked (by :func:`_check_label_map`)."""
    return {region: case_metrics(np.isin(t, values), np.isin(p, values), spacing)
            for region, values in LABEL_CONVENTIONS[convention].items()}


def summarize(rows: list, metrics=None) -> dict:
    """Mean, median, standard deviation (``ddof=0``) and worst value of each metric over cases.

    The worst is the smallest for Dice, precision and recall, the largest for HD95, and the
    largest in absolute value for the volume difference.

    Examples
    --------
    >>> from fastseg.metrics import summarize
    >>> table = summarize([{"dice": 0.5, "hd95": 3.0}, {"dice": 1.0, "hd95": 1.0}], ["dice", "hd95"])
    >>> table["dice"], table["hd95"]["worst"]
    ({'mean': 0.75, 'median': 0.75, 'std': 0.25, 'worst': 0.5}, 3.0)
    """
    metrics = list(CASE_METRICS) if metrics is None else list(metrics)
    out = {}
    for m in metrics:
        values = np.array([float(r[m]) for r in rows], dtype=np.float64)
        if values.size == 0:
            out[m] = {"mean": float("nan"), "median": float("nan"), "std": float("nan"), "worst": float("nan")}
            continue
        better = CASE_METRICS.get(m, True)
        worst = values.min() if better else values.max() if better is False else values[np.argmax(np.abs(values))]
        out[m] = {"mean": float(values.mean()), "median": float(np.median(values)),
                  "std": float(values.std()), "worst": float(worst)}
    return out
