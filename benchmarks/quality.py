"""Segmentation quality of PixelSegmenter configurations on the real BraTS slices: the ablation table.

For each configuration (fixed seeds, so the table is reproducible):

- **5-fold CV**: mean per-patient Dice over the 20 patients' brats2d slices, in
  5-fold patient-wise cross-validation (GroupKFold on patient ids); with
  ``multislice``, each fold also trains on the multislice slices of its
  training patients (never on those of the patients it validates);
- **worst**: the worst patient in that cross-validation;
- **test split**: mean per-patient Dice on the 3 test patients' brats2d slices,
  trained on the 17 training patients (plus their multislice slices);
- **test multislice**: the same model on the test patients' 36 multislice
  slices, Dice pooled per patient, then averaged;
- **ms/slice**: predict on 64 real slices, one thread, post-processing included
  (brain masks given), median of 3.

Run from the repository root (needs ../shared/data/brats2d):

    python benchmarks/quality.py            # every configuration, a Markdown table
    python benchmarks/quality.py default    # only the named ones
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import GroupKFold
from threadpoolctl import threadpool_limits

from fastseg import PixelSegmenter, cross_validate, segmentation_report, tune_threshold

BRATS2D = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "brats2d"

#: The pixel description of fastseg 0.1: 3x3 windows over the image plus box means and asymmetry as channels
#: approximated by the same families at the pixel (k = 3 window, means 7/15/31, asymmetry), a linear SVM.
V01 = dict(classifier="linear-svm", max_pixels=4000, max_iter=200, box_sizes=(7, 15, 31), std_sizes=(),
           gradient_size=0, position=False)
RAW = dict(normalize="none", box_sizes=(), std_sizes=(), asymmetry=False, gradient_size=0, position=False)
NO_POST = dict(min_size=0, min_relative_size=0, fill_holes=False)

#: name -> (what it is, PixelSegmenter parameters, train on the multislice slices too)
CONFIGS = {
    "seed-recipe": ("per-pixel linear SVM on the raw channels, every brain pixel, no post-processing (the course)",
                    dict(k=1, classifier="linear-svm", max_pixels=10**6, max_iter=200, **RAW, **NO_POST), False),
    "v0.1-default": ("fastseg 0.1's default: linear SVM, k=3, brain normalisation, box means 7/15/31, asymmetry, "
                     "post-processing", V01, False),
    "v0.1+multislice": ("the same, trained on the multislice slices too", V01, True),
    "linear-all-families": ("linear SVM over the new families (k=3 window, std 7/15, asymmetry, gradient 5, "
                            "position), 300 px per slice", dict(classifier="linear-svm", max_iter=200), True),
    "default": ("**default**: the same features, MLP(32), 300 px per slice, multislice training",
                dict(), True),
    "default-no-multislice": ("default trained on the one brats2d slice per patient only", dict(), False),
    "-std": ("default without the local standard deviations", dict(std_sizes=()), True),
    "-asymmetry": ("default without left-right asymmetry", dict(asymmetry=False), True),
    "-gradient": ("default without the box gradient", dict(gradient_size=0), True),
    "-position": ("default without the position family", dict(position=False), True),
    "-window (k=1)": ("default with the pixel's own values instead of the 3x3 window", dict(k=1), True),
    "+means": ("default plus box means 7/15/31", dict(box_sizes=(7, 15, 31)), True),
    "mlp24": ("default with MLP(24) (a quarter less MLP work per pixel)", dict(hidden_layer_sizes=(24,)), True),
    "mlp16": ("default with MLP(16) (half the MLP work per pixel)", dict(hidden_layer_sizes=(16,)), True),
    "mlp64-600px": ("default with MLP(64), 600 px per slice, 100 epochs",
                    dict(hidden_layer_sizes=(64,), max_pixels=600, max_iter=100), True),
    "post-rel0.5": ("default, components < 50 % of the slice's largest removed (0.2 by default)",
                    dict(min_relative_size=0.5), True),
    "tuned-threshold": ("default, threshold chosen by 5-fold patient-wise CV over the training patients' "
                        "slices (`tune_threshold`; nested inside each CV fold)", dict(tune=True), True),
}


def load():
    def part(split):
        x = np.load(BRATS2D / f"{split}_x.npy")
        y = np.load(BRATS2D / f"{split}_y.npy").astype(bool)
        b = np.load(BRATS2D / f"{split}_brain.npy")
        p = np.array((BRATS2D / f"{split}_patients.txt").read_text().split())
        return x, y, b, p

    def multi(split):
        with np.load(BRATS2D / f"multislice_{split}.npz") as z:
            return z["x"], z["y"].astype(bool), z["brain"], z["patient"]
    return part("train"), part("test"), multi("train"), multi("test")


def _fit(params, tune, x, y, b, groups):
    """A fitted segmenter; with ``tune``, its threshold first chosen by patient-wise CV on these slices."""
    seg = PixelSegmenter(random_state=0, **params)
    if tune:
        seg.set_params(threshold=tune_threshold(seg, x, y, groups, cv=5, brain=b)["threshold"])
    return seg.fit(x, y, b)


def _nested_cv(params, x, y, b, groups, extra):
    """``cross_validate`` with the threshold tuned inside every fold, on that fold's training patients only."""
    predictions = np.zeros(y.shape, dtype=bool)
    for train, test in GroupKFold(n_splits=5).split(x, groups=groups):
        fit = [x[train], y[train], b[train], groups[train]]
        if extra is not None:
            use = np.isin(extra[2], groups[train]) & ~np.isin(extra[2], groups[test])
            fit = [np.concatenate([f, e[use]]) for f, e in zip(fit, (extra[0], extra[1], extra[3], extra[2]))]
        predictions[test] = _fit(params, True, *fit).predict(x[test], b[test])
    report = segmentation_report(y, predictions, groups)
    return {"mean_patient_dice": report.mean_group["dice"],
            "patient_dice": {row["group"]: row["dice"] for row in report.per_group}}


def evaluate(params, multislice, data):
    train, test, m_train, m_test = data
    params = dict(params)
    tune = params.pop("tune", False)
    fit_x, fit_y, fit_b, fit_p = train
    if multislice:
        fit_x, fit_y, fit_b, fit_p = (np.concatenate([a, b]) for a, b in zip(train, m_train))
    seg = _fit(params, tune, fit_x, fit_y, fit_b, fit_p)
    test_dice = segmentation_report(test[1], seg.predict(test[0], test[2]), test[3]).mean_group["dice"]
    m_dice = segmentation_report(m_test[1], seg.predict(m_test[0], m_test[2]), m_test[3]).mean_group["dice"]
    timing = m_train[0][:64], m_train[2][:64]
    with threadpool_limits(1):
        seg.predict(*timing)
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            seg.predict(*timing)
            times.append(time.perf_counter() - t0)
    ms = float(np.median(times)) / len(timing[0]) * 1e3
    x, y, b = (np.concatenate([a, c]) for a, c in zip(train[:3], test[:3]))
    groups = np.concatenate([train[3], test[3]])
    extra = None
    if multislice:
        extra = tuple(np.concatenate([a, c]) for a, c in zip((m_train[0], m_train[1], m_train[3], m_train[2]),
                                                           (m_test[0], m_test[1], m_test[3], m_test[2])))
    if tune:
        cv = _nested_cv(params, x, y, b, groups, extra)
    else:
        cv = cross_validate(PixelSegmenter(random_state=0, **params), x, y, groups, cv=5, brain=b, extra=extra)
    worst = min(cv["patient_dice"].values())
    return cv["mean_patient_dice"], worst, test_dice, m_dice, ms


def main(names):
    data = load()
    print("| configuration | what | 5-fold CV (20 patients) | worst CV patient | test split | "
          "test multislice | ms/slice |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        what, params, multislice = CONFIGS[name]
        cv, worst, test_dice, m_dice, ms = evaluate(params, multislice, data)
        print(f"| `{name}` | {what} | {cv:.3f} | {worst:.2f} | {test_dice:.3f} | {m_dice:.3f} | {ms:.2f} |",
              flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or list(CONFIGS))
