"""Segmentation quality of fastseg's shipped configurations on the real BraTS slices.

For each configuration (fixed seeds, so the figures are reproducible):

- **5-fold CV**: mean per-patient Dice over the 20 patients' brats2d slices, in
  5-fold patient-wise cross-validation (GroupKFold on patient ids); with
  multislice training, each fold also trains on the multislice slices of its
  training patients (never on those of the patients it validates);
- **worst**: the worst patient in that cross-validation;
- **test split**: mean per-patient Dice on the 3 test patients' brats2d slices,
  trained on the 17 training patients (plus their multislice slices);
- **test multislice**: the same model on the test patients' 36 multislice
  slices, Dice pooled per patient, then averaged;
- **ms/slice**: predict on 64 real slices, one thread, post-processing included
  (brain masks given), median of 3.

The shipped configurations are ``PixelSegmenter``'s built-in classifiers with
every other parameter at its default. Research recipes measured the same way
live in ``experiments/`` and are not part of this suite.

Run from the repository root (needs ``../shared/data/brats2d``; the BraTS data
are for research use: cite Menze et al. 2015, Bakas et al. 2017 and 2018, and
for TCIA cases the TCIA label collections, as the data's README says):

    python benchmarks/quality.py                        # every configuration, a Markdown table
    python benchmarks/quality.py default                # only the named ones
    python benchmarks/quality.py --json quality.json    # also write the figures as JSON
    python benchmarks/quality.py --list                 # the names
"""
from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import GroupKFold
from threadpoolctl import threadpool_limits

import fastseg
from fastseg import PixelSegmenter, cross_validate, segmentation_report

BRATS2D = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "brats2d"

#: name -> (what it is, PixelSegmenter parameters, train on the multislice slices too)
CONFIGS = {
    "default": ("the default: MLP(32) over the k=3 window and the context families, "
                "300 px per slice, multislice training", dict(), True),
    "linear-svm": ('`classifier="linear-svm"`, every other parameter at its default, multislice training',
                   dict(classifier="linear-svm"), True),
    "logistic": ('`classifier="logistic"`, every other parameter at its default, multislice training',
                 dict(classifier="logistic"), True),
}

#: What each figure of a row means, written into the JSON beside the rows.
COLUMNS = {
    "cv": "mean per-patient Dice, 5-fold patient-wise CV over the 20 patients' brats2d slices",
    "cv_worst": "the worst patient of that cross-validation",
    "test": "mean per-patient Dice on the 3 test patients' brats2d slices, trained on the 17 training patients",
    "test_multislice": "the same model on the test patients' 36 multislice slices, Dice pooled per patient",
    "ms_per_slice": "predict on 64 real slices, one thread, post-processing included, median of 3",
}


class Configuration:
    """A segmenter configuration trained on slices: ``fit(x, y, b, groups)``, then ``predict(x, b)``.

    The base class is ``PixelSegmenter(random_state=0, **params)``; the research recipes of
    ``experiments/`` subclass it to change the training data, the sample, the model or the
    post-processing."""

    def __init__(self, **params):
        self.params = params

    def segmenter(self):
        return PixelSegmenter(**{"random_state": 0, **self.params})

    def fit(self, x, y, b, groups):
        self.seg_ = self.segmenter().fit(x, y, b)
        return self

    def predict(self, x, b):
        return self.seg_.predict(x, b)


def load(root=BRATS2D):
    """(train, test, multislice train, multislice test), each (images, masks, brain, patients)."""
    root = Path(root)

    def part(split):
        x = np.load(root / f"{split}_x.npy")
        y = np.load(root / f"{split}_y.npy").astype(bool)
        b = np.load(root / f"{split}_brain.npy")
        p = np.array((root / f"{split}_patients.txt").read_text().split())
        return x, y, b, p

    def multi(split):
        with np.load(root / f"multislice_{split}.npz") as z:
            return z["x"], z["y"].astype(bool), z["brain"], z["patient"]
    return part("train"), part("test"), multi("train"), multi("test")


def _configuration_cv(entry, x, y, b, groups, extra):
    """``cross_validate`` for a configuration that is not plain parameters: the same folds, each fitting
    a fresh copy on its training patients' slices (and their extra slices, never those of the patients
    it validates)."""
    predictions = np.zeros(y.shape, dtype=bool)
    for train, test in GroupKFold(n_splits=5).split(x, groups=groups):
        fit = [x[train], y[train], b[train], groups[train]]
        if extra is not None:
            use = np.isin(extra[2], groups[train]) & ~np.isin(extra[2], groups[test])
            fit = [np.concatenate([f, e[use]]) for f, e in zip(fit, (extra[0], extra[1], extra[3], extra[2]))]
        predictions[test] = copy.deepcopy(entry).fit(*fit).predict(x[test], b[test])
    report = segmentation_report(y, predictions, groups)
    return {"mean_patient_dice": report.mean_group["dice"],
            "patient_dice": {row["group"]: row["dice"] for row in report.per_group}}


def evaluate(entry, multislice, data):
    """The figures of one row (a dict with the keys of ``COLUMNS`` plus ``cv_patients``) for
    PixelSegmenter parameters (cross-validated by ``fastseg.cross_validate``) or a ``Configuration``."""
    train, test, m_train, m_test = data
    config = entry if isinstance(entry, Configuration) else Configuration(**entry)
    fit = train
    if multislice:
        fit = tuple(np.concatenate([a, b]) for a, b in zip(train, m_train))
    model = copy.deepcopy(config).fit(*fit)
    test_dice = segmentation_report(test[1], model.predict(test[0], test[2]), test[3]).mean_group["dice"]
    m_dice = segmentation_report(m_test[1], model.predict(m_test[0], m_test[2]), m_test[3]).mean_group["dice"]
    timing = m_train[0][:64], m_train[2][:64]
    with threadpool_limits(1):
        model.predict(*timing)
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            model.predict(*timing)
            times.append(time.perf_counter() - t0)
    ms = float(np.median(times)) / len(timing[0]) * 1e3
    x, y, b = (np.concatenate([a, c]) for a, c in zip(train[:3], test[:3]))
    groups = np.concatenate([train[3], test[3]])
    extra = None
    if multislice:
        extra = tuple(np.concatenate([a, c]) for a, c in zip((m_train[0], m_train[1], m_train[3], m_train[2]),
                                                           (m_test[0], m_test[1], m_test[3], m_test[2])))
    if isinstance(entry, Configuration):
        cv = _configuration_cv(entry, x, y, b, groups, extra)
    else:
        cv = cross_validate(config.segmenter(), x, y, groups, cv=5, brain=b, extra=extra)
    return {"cv": float(cv["mean_patient_dice"]), "cv_worst": float(min(cv["patient_dice"].values())),
            "test": float(test_dice), "test_multislice": float(m_dice), "ms_per_slice": ms,
            "cv_patients": {str(k): float(v) for k, v in cv["patient_dice"].items()}}


def environment():
    """The versions and machine a run's figures come from."""
    import scipy
    import sklearn

    return {"fastseg": fastseg.__version__, "python": platform.python_version(), "numpy": np.__version__,
            "scipy": scipy.__version__, "scikit-learn": sklearn.__version__,
            "machine": f"{platform.machine()}, {_cores()} cores"}


def _cores():
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def markdown_row(name, what, r):
    return (f"| `{name}` | {what} | {r['cv']:.3f} | {r['cv_worst']:.2f} | {r['test']:.3f} | "
            f"{r['test_multislice']:.3f} | {r['ms_per_slice']:.2f} |")


MARKDOWN_HEADER = ("| configuration | what | 5-fold CV (20 patients) | worst CV patient | test split | "
                   "test multislice | ms/slice |\n|---|---|---|---|---|---|---|")


def run(names, known, data, json_path=None, command="python benchmarks/quality.py"):
    """Measure the named rows of ``known`` (all when ``names`` is empty), print a Markdown table as
    they finish and, with ``json_path``, write every figure as JSON."""
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown configuration(s) {unknown}; --list names them")
    print(MARKDOWN_HEADER)
    rows = []
    for name in names or list(known):
        what, entry, multislice = known[name]
        r = evaluate(entry, multislice, data)
        rows.append({"name": name, "what": what, "multislice_training": multislice, **r})
        print(markdown_row(name, what, r), flush=True)
    if json_path is not None:
        record = {"benchmark": "quality", "command": command, "environment": environment(),
                  "data": "brats2d: 20 patients (17 train / 3 test), one slice each, and up to 12 "
                          "multislice slices per patient (BraTS 2018/2019)",
                  "columns": COLUMNS, "rows": rows}
        Path(json_path).write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {json_path}")
    return rows


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("names", nargs="*", help="configurations to measure (all by default)")
    p.add_argument("--list", action="store_true", help="print the configurations' names and exit")
    p.add_argument("--json", metavar="OUT", help="also write the figures to this JSON file")
    return p


def main(argv):
    args = parser("Segmentation quality of fastseg's shipped configurations on real BraTS slices.").parse_args(argv)
    if args.list:
        print("\n".join(CONFIGS))
        return
    run(args.names, CONFIGS, load(), args.json,
        command="python benchmarks/quality.py" + (" --json OUT" if args.json else ""))


if __name__ == "__main__":
    main(sys.argv[1:])
