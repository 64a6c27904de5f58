"""Segmentation quality of PixelSegmenter configurations on the real BraTS slices.

For each configuration: mean per-patient Dice on the fixed test split (trained
on the 17 training patients) and in 5-fold patient-wise cross-validation over
all 20 patients (GroupKFold on patient ids), plus the prediction cost in ms
per slice.  Fixed seeds: the table is reproducible.

Run from the repository root (needs ../shared/data/brats2d):

    python benchmarks/quality.py            # all configurations, a Markdown table
    python benchmarks/quality.py default    # only the named ones
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from fastseg import PixelSegmenter, cross_validate, segmentation_report

BRATS2D = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "brats2d"

RAW = dict(normalize="none", box_sizes=(), asymmetry=False, min_relative_size=0)
NO_POST = dict(min_size=0, min_relative_size=0, fill_holes=False)

#: name -> (what it is, PixelSegmenter parameters)
CONFIGS = {
    "seed-recipe": ("per-pixel linear SVM, raw channels, every brain pixel, no post-processing (the course's recipe)",
                    dict(k=1, max_pixels=10**6, **{**RAW, **NO_POST})),
    "k1-raw-sampled": ("k=1 linear SVM, raw channels, 4000 class-balanced pixels per slice, no post-processing",
                       dict(k=1, **{**RAW, **NO_POST})),
    "k5-raw-post": ("5x5 windows, linear SVM, raw channels; components < 50 px removed, holes filled",
                    dict(k=5, **RAW)),
    "k5-brainnorm-post": ("as above + per-slice brain normalisation", dict(k=5, box_sizes=(), asymmetry=False,
                                                                         min_relative_size=0)),
    "k3-context-post": ("3x3 windows over brain-normalised channels + box means 7/15/31 + asymmetry; < 50 px removed",
                        dict(k=3, min_relative_size=0)),
    "default": ("as above + components < 20 % of the slice's largest removed (PixelSegmenter())", dict()),
    "k1-context": ("default with k=1", dict(k=1)),
    "k5-context": ("default with k=5", dict(k=5)),
    "mlp32-k5-raw": ("5x5 windows, MLP(32), brain normalisation, no context; < 50 px removed",
                     dict(k=5, classifier="mlp", box_sizes=(), asymmetry=False, min_relative_size=0)),
}


def load():
    def part(split):
        x = np.load(BRATS2D / f"{split}_x.npy")
        y = np.load(BRATS2D / f"{split}_y.npy").astype(bool)
        b = np.load(BRATS2D / f"{split}_brain.npy")
        p = (BRATS2D / f"{split}_patients.txt").read_text().split()
        return x, y, b, p
    return part("train"), part("test")


def evaluate(params, train, test):
    (tx, ty, tb, _), (vx, vy, vb, vp) = train, test
    seg = PixelSegmenter(random_state=0, **params).fit(tx, ty, tb)
    seg.predict(vx, vb)  # warm up
    t0 = time.perf_counter()
    pred = seg.predict(vx, vb)
    ms = (time.perf_counter() - t0) / len(vx) * 1e3
    test_dice = segmentation_report(vy, pred, vp).mean_group["dice"]
    x, y, b = (np.concatenate([a, c]) for a, c in zip(train[:3], test[:3]))
    cv = cross_validate(PixelSegmenter(random_state=0, **params), x, y, train[3] + test[3], cv=5, brain=b)
    worst = min(cv["patient_dice"].values())
    return test_dice, cv["mean_patient_dice"], worst, ms


def main(names):
    train, test = load()
    print("| configuration | what | test split (3 patients) | 5-fold CV (20 patients) | worst CV patient | ms/slice |")
    print("|---|---|---|---|---|---|")
    for name in names:
        what, params = CONFIGS[name]
        test_dice, cv_dice, worst, ms = evaluate(params, train, test)
        print(f"| `{name}` | {what} | {test_dice:.3f} | {cv_dice:.3f} | {worst:.2f} | {ms:.2f} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or list(CONFIGS))
