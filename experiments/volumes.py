"""Whole-volume recipes: prototypes measured by 5-fold patient-wise cross-validation over BraTS cases.

Each row trains on the training folds' volumes and predicts every brain voxel of each held-out volume,
then thresholds, removes 3-D components smaller than 20 % of the largest
(:func:`fastseg.components.clean_volume`) and takes the whole-tumour Dice of the volume.  Folds are
``KFold(5, shuffle=True, random_state=0)`` over the cases in the order of ``manifest.json``, as
:func:`fastseg.cross_validate` makes them for volumes.

Rows:

- ``default``: ``PixelSegmenter(random_state=0)`` through :func:`fastseg.cross_validate` on
  volumes (every brain slice, per-slice features and normalisation): what ``fastseg train --data``
  builds.
- ``proto-3d``: prototype features in numpy/scipy, computed on the whole volume standardised over
  its brain voxels: the four values, brain-masked 3-D box means (3, 9, 21), 3-D standard deviations
  (9), 3-D left-right asymmetry of the 9-box means across the brain's mid-column, Gaussian gradient
  magnitudes (sigma 1.5), distance to the brain's edge, relative axial position and the brain's share
  of 15- and 31-boxes; an MLP(32) on 8,000 tumour and 8,000 other brain voxels per training volume.
- ``proto-3d+auto-context``: a second MLP over the same features plus the first stage's probability,
  its 3-D box means (5, 11, 21) and its left-right asymmetry.  The first-stage maps of the training
  volumes are those of the ``proto-3d`` row, each from the fold that held that volume out.
- ``...+adapted``: test-time adaptation per volume: a linear discriminant fitted to the volume's own
  confident voxels (probability >= 0.95 against <= 0.05; the four values and their 5-box means),
  its posterior averaged with the model's.

The threshold of each row is chosen over a grid on the same folds (optimistic; the ``oracle``
column picks the best threshold per volume, an upper bound on any per-volume calibration).

Run from the repository root (reads ``../shared/data/brats_volumes``; the BraTS data are for research
use: cite Menze et al. 2015, Bakas et al. 2017 and 2018, and for TCIA cases the TCIA label
collections)::

    python experiments/volumes.py                         # every row (about an hour on 2 cores)
    python experiments/volumes.py default proto-3d        # some rows
    python experiments/volumes.py --json volumes.json     # also the figures per case, as JSON
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastseg import PixelSegmenter, cross_validate
from fastseg.components import clean_volume
from fastseg.datasets import load_case
from fastseg.metrics import dice

DATA = Path("../shared/data/brats_volumes")
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def cases(root: Path) -> list[str]:
    return [c["patient"] for c in json.loads((root / "manifest.json").read_text())["cases"]]


def folds(names):
    return list(KFold(5, shuffle=True, random_state=0).split(names))


def read(root: Path, name: str):
    """The case's images, brain and truth, cut to the brain's bounding box."""
    case = load_case(root / name)
    box = tuple(slice(int(np.argmax(a)), len(a) - int(np.argmax(a[::-1])))
                for a in (case.brain.any(axis=(1, 2)), case.brain.any(axis=(0, 2)), case.brain.any(axis=(0, 1))))
    return case.images[box], case.brain[box], case.seg[box]


def brain_mean(v, bf, size, count=None):
    """Mean of ``v`` over the brain voxels of the size-``size`` box around each voxel."""
    if count is None:
        count = ndimage.uniform_filter(bf, size, mode="constant")
    return ndimage.uniform_filter(v * bf, size, mode="constant") / np.maximum(count, 1e-6), count


def features(x, b, first_stage=None):
    """Prototype feature volumes of ``proto-3d`` (and the auto-context maps when ``first_stage`` is given)."""
    x = x.copy()
    for c in range(x.shape[-1]):
        v = x[..., c][b]
        x[..., c] = np.where(b, (x[..., c] - v.mean()) / max(v.std(), 1e-6), 0)
    bf = b.astype(np.float32)
    cols = np.flatnonzero(b.any(axis=(0, 1)))
    mirror = np.clip(cols[0] + cols[-1] - np.arange(b.shape[2]), 0, b.shape[2] - 1)
    out = [x[..., c] for c in range(4)]
    counts = {}
    for size in (3, 9, 21):
        for c in range(4):
            m, counts[size] = brain_mean(x[..., c], bf, size, counts.get(size))
            out.append(m)
            if size == 9:
                out.append(m - m[:, :, mirror])
    for c in range(4):
        m, _ = brain_mean(x[..., c], bf, 9, counts[9])
        m2, _ = brain_mean(x[..., c] ** 2, bf, 9, counts[9])
        out.append(np.sqrt(np.maximum(m2 - m * m, 0)))
        out.append(ndimage.gaussian_gradient_magnitude(x[..., c], 1.5))
    out.append(np.minimum(ndimage.distance_transform_edt(b), 30).astype(np.float32))
    z = np.flatnonzero(b.any(axis=(1, 2)))
    out.append(np.broadcast_to(((np.arange(b.shape[0]) - z[0]) / max(z[-1] - z[0], 1))[:, None, None], b.shape))
    for size in (15, 31):
        out.append(ndimage.uniform_filter(bf, size, mode="constant"))
    if first_stage is not None:
        out.append(first_stage)
        for size in (5, 11, 21):
            out.append(brain_mean(first_stage, bf, size)[0])
        out.append(first_stage - first_stage[:, :, mirror])
    return out, x


def rows(maps, where):
    return np.stack([m[where] for m in maps], axis=1).astype(np.float32)


def adapted(p, x, b, rng):
    """The model's probability averaged with a linear discriminant fitted to the volume's confident voxels."""
    bf = b.astype(np.float32)
    X = rows([x[..., c] for c in range(4)] + [brain_mean(x[..., c], bf, 5)[0] for c in range(4)], b)
    pb = p[b]
    pos, neg = np.flatnonzero(pb >= 0.95), np.flatnonzero(pb <= 0.05)
    if pos.size < 50 or neg.size < 50:
        return p
    pos = rng.choice(pos, min(pos.size, 20000), replace=False)
    neg = rng.choice(neg, min(neg.size, 60000), replace=False)
    lda = LinearDiscriminantAnalysis().fit(X[np.r_[pos, neg]], np.r_[np.ones(pos.size), np.zeros(neg.size)])
    q = np.zeros_like(p)
    q[b] = lda.predict_proba(X)[:, 1]
    return 0.5 * p + 0.5 * q


def score(truth, p):
    """Dice of the cleaned masks at every threshold, and the best over a finer grid (the oracle)."""
    out = {str(t): dice(truth, clean_volume(p >= t, 0.2)) for t in THRESHOLDS}
    out["oracle"] = max(dice(truth, clean_volume(p >= t, 0.2)) for t in np.arange(0.05, 1.0, 0.05))
    return out


def prototype(root, names, maps=None, adapt=False):
    """Per-case scores of the prototype MLP (a second stage over ``maps`` when given); the maps it made."""
    rng = np.random.default_rng(0)
    sampled = {}
    for name in names:
        x, b, y = read(root, name)
        feats, _ = features(x, b, None if maps is None else maps[name])
        tumour, other = np.flatnonzero((b & y).ravel()), np.flatnonzero((b & ~y).ravel())
        pick = np.concatenate([rng.choice(tumour, min(8000, tumour.size), replace=False),
                               rng.choice(other, min(8000, other.size), replace=False)])
        sampled[name] = (np.stack([f.ravel()[pick] for f in feats], axis=1).astype(np.float32), y.ravel()[pick])
    scores, made = {}, {}
    for train, test in folds(names):
        clf = make_pipeline(StandardScaler(), MLPClassifier((32,), max_iter=60, random_state=0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(np.concatenate([sampled[names[i]][0] for i in train]),
                    np.concatenate([sampled[names[i]][1] for i in train]))
        for i in test:
            x, b, y = read(root, names[i])
            feats, standardised = features(x, b, None if maps is None else maps[names[i]])
            p = np.zeros(b.shape, np.float32)
            p[b] = clf.predict_proba(rows(feats, b))[:, 1]
            made[names[i]] = p
            scores[names[i]] = score(y, adapted(p, standardised, b, rng) if adapt else p)
    return scores, made


def default(root, names):
    volumes = []
    for name in names:  # whole slices (the segmenter's features see the slice as it is), brain slices only
        case = load_case(root / name)
        keep = case.brain.any(axis=(1, 2))
        z = slice(int(np.argmax(keep)), len(keep) - int(np.argmax(keep[::-1])))
        volumes.append((np.ascontiguousarray(case.images[z]), case.brain[z], case.seg[z]))
    result = cross_validate(PixelSegmenter(random_state=0), [v[0] for v in volumes], [v[2] for v in volumes],
                            names, cv=5, brain=[v[1] for v in volumes])
    return {n: {"0.5": result["patient_dice"][n]} for n in names}


ROWS = ("default", "proto-3d", "proto-3d+adapted", "proto-3d+auto-context", "proto-3d+auto-context+adapted")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("rows", nargs="*", help=f"rows to run (default: all of {', '.join(ROWS)})")
    parser.add_argument("--data", default=str(DATA), help="folder of BraTS cases with manifest.json")
    parser.add_argument("--json", help="write every case's figures here")
    args = parser.parse_args(argv)
    wanted = args.rows or list(ROWS)
    unknown = sorted(set(wanted) - set(ROWS))
    if unknown:
        parser.error(f"unknown rows {unknown}; choose from {list(ROWS)}")
    root = Path(args.data)
    names = cases(root)
    results, maps = {}, None
    needs_maps = any("auto-context" in row for row in wanted)  # the second stages read proto-3d's maps
    for row in ROWS:
        if row not in wanted and not (row == "proto-3d" and needs_maps):
            continue
        t0 = time.perf_counter()
        if row == "default":
            results[row] = default(root, names)
        elif row == "proto-3d":
            results[row], maps = prototype(root, names)
        elif row == "proto-3d+adapted":
            results[row], _ = prototype(root, names, adapt=True)
        elif row == "proto-3d+auto-context":
            results[row], _ = prototype(root, names, maps)
        else:
            results[row], _ = prototype(root, names, maps, adapt=True)
        print(f"{row}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    print("| row | threshold | mean Dice | worst case | oracle mean |")
    print("|---|---|---|---|---|")
    for row, per in results.items():
        keys = [k for k in per[names[0]] if k != "oracle"]
        best = max(keys, key=lambda k: np.mean([per[n][k] for n in names]))
        d = [per[n][best] for n in names]
        oracle = f"{np.mean([per[n]['oracle'] for n in names]):.3f}" if "oracle" in per[names[0]] else "-"
        print(f"| {row} | {best} | {np.mean(d):.3f} | {min(d):.3f} ({names[int(np.argmin(d))]}) | {oracle} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
