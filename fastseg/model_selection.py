"""Patient-wise cross-validation of segmenters: no patient in both training and validation."""
from __future__ import annotations

import sys
import time

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import clone
from sklearn.model_selection import GroupKFold

from ._validation import check_images, check_masks
from .metrics import segmentation_report

__all__ = ["cross_validate"]


def cross_validate(segmenter, images: ArrayLike, masks: ArrayLike, groups: ArrayLike, cv: int = 5,
                   *, brain: ArrayLike | None = None, verbose: int = 0) -> dict:
    """Cross-validate a segmenter with folds split by patient (``GroupKFold``).

    Each fold fits a clone of ``segmenter`` on the other folds' patients and
    predicts its own; every patient is validated exactly once, by a model that
    never saw any of its slices.

    Parameters
    ----------
    segmenter : PixelSegmenter (or any estimator with fit(images, masks, brain) / predict(images, brain))
    images : array-like of shape (N, H, W, C)
    masks : array-like of shape (N, H, W)
    groups : array-like of shape (N,)
        Patient id of each slice.
    cv : int, default=5
        Number of folds (at most the number of patients).
    brain : array-like of shape (N, H, W), optional
        Brain masks, passed to fit and predict.
    verbose : int, default=0
        Print one line per fold to stderr.

    Returns
    -------
    dict with keys
        ``patient_dice`` (dict patient -> Dice of its pooled slices),
        ``mean_patient_dice``, ``fold_dice`` (mean per-patient Dice of each fold),
        ``fold_patients`` (patients of each fold), ``predictions`` ((N, H, W) bool, each
        slice predicted by the fold that held it out) and ``report`` (a
        :class:`~fastseg.metrics.SegmentationReport` over all slices).

    Examples
    --------
    >>> import numpy as np
    >>> from fastseg import PixelSegmenter, cross_validate
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((6, 24, 24, 4)).astype(np.float32)
    >>> y = np.zeros((6, 24, 24), bool); y[:, 6:16, 8:18] = True; x[y] += 2
    >>> seg = PixelSegmenter(k=3, classifier="linear-svm", min_size=5, random_state=0)
    >>> result = cross_validate(seg, x, y, groups=[0, 0, 1, 1, 2, 2], cv=3, brain=np.ones_like(y))
    >>> sorted(result["patient_dice"]), len(result["fold_dice"])
    ([0, 1, 2], 3)
    >>> bool(result["mean_patient_dice"] > 0.9)
    True
    """
    if not (hasattr(segmenter, "fit") and hasattr(segmenter, "predict") and hasattr(segmenter, "get_params")):
        raise TypeError(f"segmenter must be an estimator with fit, predict and get_params, "
                        f"got {type(segmenter).__name__}")
    batch, _ = check_images(images)
    N, H, W, _ = batch.shape
    y = check_masks(masks, "masks", shape=(N, H, W)).view(bool)
    b = None if brain is None else check_masks(brain, "brain", shape=(N, H, W)).view(bool)
    groups = np.asarray(groups)
    if groups.shape != (N,):
        raise ValueError(f"groups must have one entry per slice, shape ({N},), got shape {groups.shape}")
    n_groups = np.unique(groups).size
    if isinstance(cv, bool) or not isinstance(cv, (int, np.integer)):
        raise TypeError(f"cv must be an integer from 2 to the number of patients ({n_groups}), got {cv!r}")
    if not 2 <= cv <= n_groups:
        raise ValueError(f"cv must be an integer from 2 to the number of patients ({n_groups}), got {cv!r}")
    predictions = np.zeros((N, H, W), dtype=bool)
    fold_dice, fold_patients = [], []
    for fold, (train, test) in enumerate(GroupKFold(n_splits=int(cv)).split(batch, groups=groups)):
        t0 = time.perf_counter()
        model = clone(segmenter)
        model.fit(batch[train], y[train], None if b is None else b[train])
        predictions[test] = model.predict(batch[test], None if b is None else b[test])
        rep = segmentation_report(y[test], predictions[test], groups[test])
        fold_dice.append(rep.mean_group["dice"])
        fold_patients.append([g.item() for g in np.unique(groups[test])])
        if verbose:
            print(f"[cross_validate] fold {fold + 1}/{cv}: {len(fold_patients[-1])} patients, "
                  f"mean Dice {fold_dice[-1]:.3f} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)
    report = segmentation_report(y, predictions, groups)
    patient_dice = {row["group"]: row["dice"] for row in report.per_group}
    return {
        "patient_dice": patient_dice,
        "mean_patient_dice": report.mean_group["dice"],
        "fold_dice": fold_dice,
        "fold_patients": fold_patients,
        "predictions": predictions,
        "report": report,
    }
