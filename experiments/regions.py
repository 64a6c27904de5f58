"""The three BraTS regions: the cascade against one multi-class MLP, by 5-fold patient-wise CV.

Every row trains on the training folds' volumes (every brain slice, as ``fastseg train --data``
reads cases) and segments each held-out volume whole; Dice and HD95 of the whole tumour (WT),
tumour core (TC) and enhancing tumour (ET) per case.  Folds are those of
:func:`fastseg.cross_validate_regions` (``KFold(5, shuffle=True, random_state=0)`` over the cases).

Rows:

- ``cascade``: :class:`fastseg.RegionSegmenter` as ``fastseg train --regions`` builds it (WT in the
  brain, TC inside the WT, ET inside the TC; the ET stage's clean-up keeps components of 10 pixels
  or more and fills no holes);
- ``cascade-one-cleanup``: the same with the whole tumour's clean-up for every stage
  (``enhancing={}``);
- ``multiclass``: one MLP(32) over the same pixel features with four classes (rest of the brain,
  oedema, non-enhancing core, enhancing), trained on the same class-aware sample (300 pixels a
  slice, half tumour); WT, TC and ET are the summed probabilities of their classes above 0.5, each
  inside the one before, cleaned as the cascade cleans them.  Scored by scikit-learn here; in
  fastseg it would score every brain pixel with four outputs, where the cascade scores the later
  stages inside the tumour only.

Run from the repository root (reads ``../shared/data/brats_volumes``; the BraTS data are for research
use: cite Menze et al. 2015, Bakas et al. 2017 and 2018, and for TCIA cases the TCIA label
collections)::

    python experiments/regions.py                          # every row (about 30 minutes on 2 cores)
    python experiments/regions.py cascade multiclass       # some rows
    python experiments/regions.py --json regions.json      # also the figures per case, as JSON
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.model_selection import KFold
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastseg import PixelSegmenter, RegionSegmenter, cross_validate_regions
from fastseg.components import clean_volume
from fastseg.features import _pixel_rows
from fastseg.io import find_cases, label_map, read_case, regions
from fastseg.metrics import case_metrics, summarize
from fastseg.model import PostProcessing, _parts
from fastseg.preprocessing import _normalize_brain_into
from fastseg.regions import ENHANCING_DEFAULTS, REGIONS

DATA = Path("../shared/data/brats_volumes")


def read(root: Path):
    """Each case's brain slices, brain masks, brats2018 label map, spacing and name."""
    out = []
    for found in find_cases(root):
        case = read_case(found)
        held = np.flatnonzero(case.brain.any(axis=(1, 2)))
        span = slice(held[0], held[-1] + 1)
        labels = label_map(regions(case.labels[span], case.convention), "brats2018")
        out.append((np.ascontiguousarray(case.images[span]), case.brain[span], labels,
                    tuple(case.spacing[::-1]), case.name))
    return out


def cascade(cases, **stages):
    seg = RegionSegmenter(PixelSegmenter(random_state=0), **stages)
    result = cross_validate_regions(seg, [c[0] for c in cases], [c[2] for c in cases], [c[4] for c in cases],
                                    cv=5, brain=[c[1] for c in cases], spacing=[c[3] for c in cases])
    return result["cases"]


def _sample(brain, classes, rng, max_pixels=300, tumour_fraction=0.5):
    """PixelSegmenter's class-aware sample of one chunk: half tumour (any tumour class) per slice."""
    sample = np.zeros(brain.shape, dtype=bool)
    for i in range(len(brain)):
        inside, tumour = brain[i].ravel(), classes[i].ravel() > 0
        pos, neg = np.flatnonzero(inside & tumour), np.flatnonzero(inside & ~tumour)
        total = min(max_pixels, pos.size + neg.size)
        n_pos = min(pos.size, int(round(tumour_fraction * total)))
        n_neg = min(neg.size, total - n_pos)
        n_pos = min(pos.size, total - n_neg)
        sample[i].ravel()[np.concatenate([rng.choice(pos, n_pos, replace=False),
                                          rng.choice(neg, n_neg, replace=False)])] = True
    return sample


def _classes(labels):
    """0 rest of the brain, 1 oedema, 2 non-enhancing core, 3 enhancing (from brats2018 labels)."""
    return np.select([labels == 2, labels == 1, labels == 4], [1, 2, 3], 0).astype(np.uint8)


def multiclass(cases):
    params = PixelSegmenter(random_state=0)._checked_params()
    spec, post = _parts(params, cases[0][0].shape[-1])
    enhancing_post = PostProcessing(**{k: ENHANCING_DEFAULTS[k] for k in ("min_size", "min_relative_size",
                                                                           "fill_holes")})
    rng = np.random.default_rng(0)
    rows = []
    for x, b, labels, _, _ in cases:  # each case's training rows, sampled once
        X, y = [], []
        for start in range(0, len(x), 64):
            xc, bc, cc = x[start:start + 64], b[start:start + 64], _classes(labels[start:start + 64])
            normalized = np.empty_like(xc)
            _normalize_brain_into(xc, bc, normalized)
            sample = _sample(bc, cc, rng)
            X.append(_pixel_rows(normalized, bc.view(np.uint8), sample.view(np.uint8), spec))
            y.append(cc[sample])
        rows.append((np.concatenate(X), np.concatenate(y)))
    out = [None] * len(cases)
    for train, test in KFold(5, shuffle=True, random_state=0).split(cases):
        clf = make_pipeline(StandardScaler(), MLPClassifier((32,), max_iter=60, random_state=0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(np.concatenate([rows[i][0] for i in train]), np.concatenate([rows[i][1] for i in train]))
        for i in test:
            x, b, labels, spacing, name = cases[i]
            proba = np.zeros(b.shape + (4,), dtype=np.float32)
            for start in range(0, len(x), 16):
                xc, bc = x[start:start + 16], b[start:start + 16]
                normalized = np.empty_like(xc)
                _normalize_brain_into(xc, bc, normalized)
                features = _pixel_rows(normalized, bc.view(np.uint8), bc.view(np.uint8), spec)
                if len(features):
                    proba[start:start + 16][bc] = clf.predict_proba(features)
            truth = regions(labels, "brats2018")
            found, inside = {}, b
            for name_, first, cleanup in zip(REGIONS, (1, 2, 3), (post, post, enhancing_post)):
                m = cleanup.apply((proba[..., first:].sum(axis=-1) > 0.5) & inside) & inside
                if cleanup.min_relative_size > 0:
                    m = clean_volume(m, cleanup.min_relative_size)
                found[name_] = inside = m
            out[i] = {"case": name, **{r: case_metrics(truth[r], found[r], spacing) for r in REGIONS}}
    return out


ROWS = {
    "cascade": lambda cases: cascade(cases),
    "cascade-one-cleanup": lambda cases: cascade(cases, enhancing={}),
    "multiclass": multiclass,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="*", help=f"rows to run, of {', '.join(ROWS)} (default: all)")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--json", help="write every case's figures here")
    args = parser.parse_args()
    unknown = [r for r in args.rows if r not in ROWS]
    if unknown:
        parser.error(f"unknown rows {unknown}; the rows are {', '.join(ROWS)}")
    cases = read(Path(args.data))
    results = {}
    short = {"whole tumour": "WT", "tumour core": "TC", "enhancing tumour": "ET"}
    print(f"{'row (Dice)':<22}" + "".join(f"{short[r] + ' ' + s:>10}" for r in REGIONS for s in ("mean", "worst"))
          + f"{'time':>9}")
    for row in args.rows or list(ROWS):
        t0 = time.perf_counter()
        cases_out = ROWS[row](cases)
        summary = {r: summarize([c[r] for c in cases_out], ["dice", "hd95"]) for r in REGIONS}
        results[row] = {"cases": cases_out, "summary": summary}
        print(f"{row:<22}" + "".join(f"{summary[r]['dice'][s]:>10.3f}" for r in REGIONS for s in ("mean", "worst"))
              + f"{time.perf_counter() - t0:>8.0f}s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
