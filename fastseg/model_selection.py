"""Patient-wise cross-validation of segmenters: no patient in both training and validation."""
from __future__ import annotations

import sys
import time

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import clone
from sklearn.model_selection import GroupKFold, KFold

from ._validation import check_images, check_masks
from .metrics import dice as _dice, segmentation_report
from .segmenter import _is_volume_list, _training_stacks

__all__ = ["cross_validate", "tune_threshold"]


def cross_validate(segmenter, images: ArrayLike, masks: ArrayLike, groups: ArrayLike, cv: int = 5,
                   *, brain: ArrayLike | None = None, extra=None, verbose: int = 0) -> dict:
    """Cross-validate a segmenter with folds split by patient (``GroupKFold``).

    Each fold fits a clone of ``segmenter`` on the other folds' patients and
    predicts its own; every patient is validated exactly once, by a model that
    never saw any of its slices.

    Parameters
    ----------
    segmenter : PixelSegmenter (or any estimator with fit(images, masks, brain) / predict(images, brain))
    images : array-like of shape (N, H, W, C), or a list of (Z, H, W, C) volumes
        Slices, or whole volumes.  For volumes, the folds are ``KFold(cv, shuffle=True,
        random_state=0)`` over the patients in order of first appearance; each held-out
        volume is predicted whole and cleaned in 3-D as ``fastseg predict`` cleans it
        (:func:`fastseg.components.clean_volume` with the model's ``min_relative_size``),
        and a patient's Dice pools its volumes; ``predictions`` is then a list.
    masks : array-like of shape (N, H, W), or a list of (Z, H, W) arrays
    groups : array-like of shape (N,)
        Patient id of each slice (of each volume, for volumes).
    cv : int, default=5
        Number of folds (at most the number of patients).
    brain : array-like of shape (N, H, W), optional
        Brain masks, passed to fit and predict.
    extra : tuple (images, masks, groups) or (images, masks, groups, brain), optional
        More slices for training only (e.g. other slices of the same patients):
        each fold trains also on the extra slices of its training patients, and
        never on those of the patients it validates.  They are never validated.
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
    if _is_volume_list(images):
        return _cross_validate_volumes(segmenter, images, masks, groups, cv, brain, extra, verbose)
    batch, y, b, groups = _check_folds(segmenter, images, masks, groups, cv, brain, ("fit", "predict", "get_params"))
    N, H, W, _ = batch.shape
    extra = _check_extra(extra, batch.shape[1:], brain is not None)
    predictions = np.zeros((N, H, W), dtype=bool)
    fold_dice, fold_patients = [], []
    for fold, (train, test) in enumerate(GroupKFold(n_splits=int(cv)).split(batch, groups=groups)):
        t0 = time.perf_counter()
        model = clone(segmenter)
        x_fit, y_fit, b_fit = batch[train], y[train], None if b is None else b[train]
        if extra is not None:
            use = np.isin(extra[2], groups[train]) & ~np.isin(extra[2], groups[test])
            x_fit, y_fit = np.concatenate([x_fit, extra[0][use]]), np.concatenate([y_fit, extra[1][use]])
            if b is not None:
                b_fit = np.concatenate([b_fit, extra[3][use]])
        model.fit(x_fit, y_fit, b_fit)
        predictions[test] = model.predict(batch[test], None if b is None else b[test])
        rep = segmentation_report(y[test], predictions[test], groups[test])
        fold_dice.append(rep.mean_group["dice"])
        fold_patients.append([g.item() for g in np.unique(groups[test])])
        if verbose:
            _log_fold("cross_validate", fold, cv, fold_patients[-1], t0, fold_dice[-1])
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


def _check_folds(segmenter, images, masks, groups, cv, brain, needs: tuple):
    """(batch, masks, brain or None, groups) validated for patient-wise folds, ``segmenter`` having ``needs``."""
    if not all(hasattr(segmenter, name) for name in needs):
        raise TypeError(f"segmenter must be an estimator with {', '.join(needs)}, got {type(segmenter).__name__}")
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
    return batch, y, b, groups


#: Candidate thresholds of :func:`tune_threshold` by score kind: probabilities, and the decision values
#: of linear classifiers (whose margins lie at -1 and 1).
DEFAULT_THRESHOLDS = {
    "proba": np.round(np.arange(0.05, 0.951, 0.05), 2),
    "decision": np.round(np.arange(-1.0, 1.001, 0.1), 2),
}


def tune_threshold(segmenter, images: ArrayLike, masks: ArrayLike, groups: ArrayLike, cv: int = 5, *,
                   brain: ArrayLike | None = None, thresholds: ArrayLike | None = None,
                   verbose: int = 0) -> dict:
    """Choose a segmenter's decision threshold by patient-wise cross-validation.

    Each fold fits a clone of ``segmenter`` on the other folds' patients and
    computes the score maps of its own patients' slices.  Every candidate
    threshold then turns these out-of-fold scores into masks (score above the
    threshold inside the brain, then the segmenter's post-processing) whose
    Dice is taken per patient, pooling all of a patient's slices, as
    :func:`cross_validate` does.  The threshold with the highest mean
    per-patient Dice is returned; no patient's slices ever score a model
    that was fitted on them.

    The best threshold depends on the slices it is tuned on: slices through
    the middle of tumours favour low thresholds, whole volumes (many slices
    with little or no tumour) higher ones.  Tune on slices like those you
    will segment.

    Parameters
    ----------
    segmenter : PixelSegmenter
        Not modified; its parameters (except ``threshold``) are those tuned for.
    images : array-like of shape (N, H, W, C), or a list of (Z, H, W, C) volumes
        Slices, or whole volumes (folds and the 3-D clean-up as in :func:`cross_validate`).
    masks : array-like of shape (N, H, W), or a list of (Z, H, W) arrays
    groups : array-like of shape (N,)
        Patient id of each slice (of each volume, for volumes).
    cv : int, default=5
        Number of folds (``GroupKFold``; at most the number of patients).
    brain : array-like of shape (N, H, W), optional
        Brain masks; None derives them as the segmenter does.
    thresholds : array-like of float, optional
        Candidates, tried in this order (the first of equal scores wins).
        Default: 0.05, 0.10, ..., 0.95 for probabilities, -1.0, -0.9, ..., 1.0
        for decision values (``DEFAULT_THRESHOLDS``).
    verbose : int, default=0
        Print one line per fold to stderr.

    Returns
    -------
    dict with keys
        ``threshold`` (the best candidate, a float), ``thresholds`` (the
        candidates), ``mean_patient_dice`` (the score of each candidate) and
        ``fold_patients`` (the patients of each fold).

    Raises
    ------
    TypeError
        If ``segmenter`` has no ``score_maps``, ``cv`` is not an integer, or
        ``thresholds`` holds something other than numbers.
    ValueError
        If shapes disagree, ``cv`` is out of range, or ``thresholds`` is
        empty or not finite.

    Examples
    --------
    >>> import numpy as np
    >>> from fastseg import PixelSegmenter
    >>> from fastseg.model_selection import tune_threshold
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((6, 24, 24, 4)).astype(np.float32)
    >>> y = np.zeros((6, 24, 24), bool); y[:, 6:16, 8:18] = True; x[y] += 2
    >>> seg = PixelSegmenter(k=3, classifier="logistic", min_size=5, random_state=0)
    >>> result = tune_threshold(seg, x, y, groups=[0, 0, 1, 1, 2, 2], cv=3, brain=np.ones_like(y),
    ...                         thresholds=[0.3, 0.5, 0.7])
    >>> result["threshold"] in (0.3, 0.5, 0.7), len(result["mean_patient_dice"])
    (True, 3)
    >>> seg = seg.set_params(threshold=result["threshold"]).fit(x, y, np.ones_like(y))
    """
    from .preprocessing import _brain_mask

    if thresholds is not None:
        try:
            thresholds = np.asarray(thresholds, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise TypeError(f"thresholds must be a sequence of numbers, got {thresholds!r}") from None
        if thresholds.size == 0 or not np.isfinite(thresholds).all():
            raise ValueError(f"thresholds must be a non-empty sequence of finite numbers, got {thresholds!r}")
    if _is_volume_list(images):
        return _tune_threshold_volumes(segmenter, images, masks, groups, cv, brain, thresholds, verbose)
    batch, y, b, groups = _check_folds(segmenter, images, masks, groups, cv, brain,
                                       ("fit", "score_maps", "get_params"))
    inside = _brain_mask(batch) if b is None else b
    scores = np.zeros(y.shape, dtype=np.float32)
    fold_patients = []
    for fold, (train, test) in enumerate(GroupKFold(n_splits=int(cv)).split(batch, groups=groups)):
        t0 = time.perf_counter()
        model = clone(segmenter).fit(batch[train], y[train], None if b is None else b[train])
        scores[test] = model.score_maps(batch[test], None if b is None else b[test])
        fold_patients.append([g.item() for g in np.unique(groups[test])])
        if verbose:
            _log_fold("tune_threshold", fold, cv, fold_patients[-1], t0)
    post = model.model_.postprocessing  # per slice, and set by the parameters: the same in every fold's clone
    return _best_threshold(model, thresholds, fold_patients, lambda t: segmentation_report(
        y, post._apply(np.greater(scores, t) & inside), groups).mean_group["dice"])


def _log_fold(caller: str, fold: int, cv: int, patients: list, t0: float, dice: float | None = None) -> None:
    """The progress line of one cross-validation fold, on stderr."""
    done = "" if dice is None else f", mean Dice {dice:.3f}"
    print(f"[{caller}] fold {fold + 1}/{cv}: {len(patients)} patients{done} ({time.perf_counter() - t0:.1f} s)",
          file=sys.stderr, flush=True)


def _best_threshold(model, thresholds, fold_patients: list, mean_patient_dice) -> dict:
    """:func:`tune_threshold`'s result: ``mean_patient_dice(t)`` at each threshold (the fitted model's
    default grid if None) and the threshold that maximises it (the first of equals)."""
    if thresholds is None:
        thresholds = DEFAULT_THRESHOLDS[model.model_.score_kind]
    dice = np.array([mean_patient_dice(t) for t in thresholds], dtype=np.float64)
    return {
        "threshold": float(thresholds[int(np.argmax(dice))]),
        "thresholds": thresholds,
        "mean_patient_dice": dice,
        "fold_patients": fold_patients,
    }


def _check_extra(extra, hwc, with_brain: bool):
    """(images, masks, groups, brain or None) of the extra training slices, validated."""
    if extra is None:
        return None
    if not isinstance(extra, (tuple, list)) or len(extra) not in (3, 4):
        raise TypeError(f"extra must be a tuple (images, masks, groups[, brain]), got {type(extra).__name__}")
    batch, _ = check_images(extra[0], "extra images")
    n, hw = batch.shape[0], hwc[:2]
    if batch.shape[1:] != hwc:
        raise ValueError(f"extra images must have the images' (H, W, C) = {hwc}, got {batch.shape[1:]}")
    masks = check_masks(extra[1], "extra masks", shape=(n,) + hw).view(bool)
    groups = np.asarray(extra[2])
    if groups.shape != (n,):
        raise ValueError(f"extra groups must have one entry per extra slice, shape ({n},), got shape {groups.shape}")
    brain = None
    if with_brain:
        if len(extra) != 4:
            raise ValueError("extra needs brain masks (a 4th entry) when brain is given")
        brain = check_masks(extra[3], "extra brain", shape=(n,) + hw).view(bool)
    return batch, masks, groups, brain


# ---------------------------------------------------------------------------- volumes


def _volume_folds(segmenter, images, masks, groups, cv, brain, needs: tuple):
    """Checked volumes and their patient-wise folds: (stacks, groups, [(train, test) volume indices])."""
    if not all(hasattr(segmenter, name) for name in needs):
        raise TypeError(f"segmenter must be an estimator with {', '.join(needs)}, got {type(segmenter).__name__}")
    stacks = _training_stacks(images, masks, brain)
    groups = np.asarray(groups)
    if groups.shape != (len(stacks),):
        raise ValueError(f"groups must have one entry per volume, shape ({len(stacks)},), got shape {groups.shape}")
    patients = list(dict.fromkeys(groups.tolist()))  # in order of first appearance
    if isinstance(cv, bool) or not isinstance(cv, (int, np.integer)):
        raise TypeError(f"cv must be an integer from 2 to the number of patients ({len(patients)}), got {cv!r}")
    if not 2 <= cv <= len(patients):
        raise ValueError(f"cv must be an integer from 2 to the number of patients ({len(patients)}), got {cv!r}")
    index = np.array([patients.index(g) for g in groups.tolist()])
    folds = [(np.flatnonzero(~np.isin(index, test)), np.flatnonzero(np.isin(index, test)))
             for _, test in KFold(int(cv), shuffle=True, random_state=0).split(patients)]
    return stacks, groups, folds


def _fit_volumes(segmenter, stacks, train, with_brain: bool):
    return clone(segmenter).fit([stacks[i][0] for i in train], [stacks[i][1] for i in train],
                                [stacks[i][2] for i in train] if with_brain else None)


def _clean_volume_of(model, masks: np.ndarray) -> np.ndarray:
    """The 3-D clean-up ``fastseg predict`` applies to a volume: components smaller than the model's
    ``min_relative_size`` of the largest 26-connected one removed."""
    from .components import clean_volume

    fraction = getattr(getattr(getattr(model, "model_", None), "postprocessing", None), "min_relative_size", None)
    return masks if fraction is None else clean_volume(masks, fraction)


def _patient_dice(stacks, predictions, groups) -> dict:
    """Dice of each patient's volumes pooled."""
    out = {}
    for g in dict.fromkeys(groups.tolist()):
        mine = np.flatnonzero(groups == g)
        truth = np.concatenate([stacks[i][1] for i in mine])
        out[g] = _dice(truth, np.concatenate([predictions[i] for i in mine]))
    return out


def _cross_validate_volumes(segmenter, images, masks, groups, cv, brain, extra, verbose) -> dict:
    """:func:`cross_validate` on a list of volumes: folds of patients (``KFold(cv, shuffle=True,
    random_state=0)`` over the patients in order of first appearance), each held-out volume predicted
    whole and cleaned in 3-D as ``fastseg predict`` cleans it, Dice per patient over its volumes."""
    if extra is not None:
        raise TypeError("extra is for slices; pass more volumes in images instead")
    stacks, groups, folds = _volume_folds(segmenter, images, masks, groups, cv, brain, ("fit", "predict", "get_params"))
    predictions = [None] * len(stacks)
    fold_dice, fold_patients = [], []
    for fold, (train, test) in enumerate(folds):
        t0 = time.perf_counter()
        model = _fit_volumes(segmenter, stacks, train, brain is not None)
        for i in test:
            x, _, b, _ = stacks[i]
            predictions[i] = _clean_volume_of(model, model.predict(x, b if brain is not None else None))
        fold_patients.append(list(dict.fromkeys(groups[test].tolist())))
        mine = _patient_dice([stacks[i] for i in test], [predictions[i] for i in test], groups[test])
        fold_dice.append(float(np.mean(list(mine.values()))))
        if verbose:
            _log_fold("cross_validate", fold, cv, fold_patients[-1], t0, fold_dice[-1])
    slice_groups = np.concatenate([np.repeat(groups[i:i + 1], len(stacks[i][0])) for i in range(len(stacks))])
    report = segmentation_report(np.concatenate([s[1] for s in stacks]), np.concatenate(predictions), slice_groups)
    patient_dice = _patient_dice(stacks, predictions, groups)
    return {
        "patient_dice": patient_dice,
        "mean_patient_dice": float(np.mean(list(patient_dice.values()))),
        "fold_dice": fold_dice,
        "fold_patients": fold_patients,
        "predictions": predictions,
        "report": report,
    }


def _tune_threshold_volumes(segmenter, images, masks, groups, cv, brain, thresholds, verbose) -> dict:
    """:func:`tune_threshold` on a list of volumes: out-of-fold score maps of every volume (folds as
    :func:`cross_validate` makes them), each candidate's masks cleaned per slice and then in 3-D."""
    stacks, groups, folds = _volume_folds(segmenter, images, masks, groups, cv, brain,
                                          ("fit", "score_maps", "get_params"))
    scores = [None] * len(stacks)
    fold_patients = []
    for fold, (train, test) in enumerate(folds):
        t0 = time.perf_counter()
        model = _fit_volumes(segmenter, stacks, train, brain is not None)
        for i in test:
            x, _, b, _ = stacks[i]
            scores[i] = model.score_maps(x, b if brain is not None else None)
        fold_patients.append(list(dict.fromkeys(groups[test].tolist())))
        if verbose:
            _log_fold("tune_threshold", fold, cv, fold_patients[-1], t0)
    post = model.model_.postprocessing

    def mean_patient_dice(t):
        predictions = [_clean_volume_of(model, post._apply(np.greater(s, t) & stack[2]))
                       for s, stack in zip(scores, stacks)]
        return np.mean(list(_patient_dice(stacks, predictions, groups).values()))

    return _best_threshold(model, thresholds, fold_patients, mean_patient_dice)
