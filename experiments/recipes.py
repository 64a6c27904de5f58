"""Research recipes for fastseg: the ablation rows and the training, post-processing and feature
changes that were measured against the default and did not become it (see README.md beside this file).

Every row is measured exactly as ``benchmarks/quality.py`` measures the shipped configurations (the
same data, folds, seeds and columns; this script imports that one's measurement code):

- **configurations** (``CONFIGS``): ``PixelSegmenter`` parameters (the ablation: the 0.1 default,
  families removed, network sizes, sampling, post-processing);
- **recipes** (``RECIPES``): changes outside those parameters (augmentation, sampling near the
  tumour border, hysteresis, ensembles, a second stage, prototype feature families, thresholds that
  depend on the slice, test-time adaptation), each trained and cross-validated with the same folds.

Two recipes use private parts of ``PixelSegmenter`` (border sampling overrides its sampler, the
ensemble folds its networks into one). Nothing in the ``fastseg`` package imports them.

Run from the repository root (needs ``../shared/data/brats2d``; the BraTS data are for research use:
cite Menze et al. 2015, Bakas et al. 2017 and 2018, and for TCIA cases the TCIA label collections):

    python experiments/recipes.py                     # every row, a Markdown table (about 40 minutes)
    python experiments/recipes.py default +flip       # only the named ones
    python experiments/recipes.py --json ablation.json   # also write the figures as JSON
    python experiments/recipes.py --list              # the names
    python experiments/recipes.py --multislice-cv [name]   # the default (or one row) on the training
                                                           # patients' multislice slices, patient by
                                                           # patient (5-fold CV)
"""
from __future__ import annotations

import copy
import dataclasses
import importlib.util
import json
import sys
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GroupKFold
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastseg import PixelSegmenter, clean_mask, normalize_brain, segmentation_report, tune_threshold
from fastseg.features import pixel_feature_names, pixel_features
from fastseg.segmenter import _fold_pipeline


def _benchmark_quality():
    """``benchmarks/quality.py``, the measurement these rows share with the shipped configurations."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "quality.py"
    spec = importlib.util.spec_from_file_location("fastseg_benchmarks_quality", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


quality = _benchmark_quality()

#: The pixel description of fastseg 0.1: 3x3 windows over the image plus box means and asymmetry as channels
#: approximated by the same families at the pixel (k = 3 window, means 7/15/31, asymmetry), a linear SVM.
V01 = dict(classifier="linear-svm", max_pixels=4000, max_iter=200, mean_sizes=(7, 15, 31), std_sizes=(),
           gradient_size=0, position=False)
RAW = dict(normalize="none", mean_sizes=(), std_sizes=(), asymmetry=False, gradient_size=0, position=False)
NO_POST = dict(min_size=0, min_relative_size=0, fill_holes=False)

#: name -> (what it is, PixelSegmenter parameters, train on the multislice slices too)
CONFIGS = {
    "seed-recipe": ("per-pixel linear SVM on the raw channels, every brain pixel, no post-processing (the textbook starting point)",
                    dict(k=1, classifier="linear-svm", max_pixels=10**6, max_iter=200, **RAW, **NO_POST), False),
    "v0.1-default": ("fastseg 0.1's default: linear SVM, k=3, brain normalisation, box means 7/15/31, asymmetry, "
                     "post-processing", V01, False),
    "v0.1+multislice": ("the same, trained on the multislice slices too", V01, True),
    "linear-all-families": ("linear SVM over the new families (k=3 window, std 7/15, asymmetry, gradient 5, "
                            "position), 300 px per slice", dict(classifier="linear-svm", max_iter=200), True),
    "default": ("**default**: the same features, MLP(32), 300 px per slice, multislice training",
                dict(), True),
    "default-seed1": ("default with `random_state=1` (its sample and initialisation; every other row uses 0)",
                      dict(random_state=1), True),
    "default-seed2": ("default with `random_state=2`", dict(random_state=2), True),
    "default-no-multislice": ("default trained on the one brats2d slice per patient only", dict(), False),
    "-std": ("default without the local standard deviations", dict(std_sizes=()), True),
    "-asymmetry": ("default without left-right asymmetry", dict(asymmetry=False), True),
    "-gradient": ("default without the box gradient", dict(gradient_size=0), True),
    "-position": ("default without the position family", dict(position=False), True),
    "-window (k=1)": ("default with the pixel's own values instead of the 3x3 window", dict(k=1), True),
    "+means": ("default plus box means 7/15/31", dict(mean_sizes=(7, 15, 31)), True),
    "mlp24": ("default with MLP(24) (a quarter less MLP work per pixel)", dict(hidden_layer_sizes=(24,)), True),
    "mlp16": ("default with MLP(16) (half the MLP work per pixel)", dict(hidden_layer_sizes=(16,)), True),
    "mlp64-600px": ("default with MLP(64), 600 px per slice, 100 epochs",
                    dict(hidden_layer_sizes=(64,), max_pixels=600, max_iter=100), True),
    "tumour-fraction-0.4": ("default with 40 % tumour pixels in the sample (50 % by default)",
                            dict(tumour_fraction=0.4), True),
    "post-rel0.5": ("default, components < 50 % of the slice's largest removed (0.2 by default)",
                    dict(min_relative_size=0.5), True),
}


# ---------------------------------------------------------------- recipes: changes outside the parameters

def post_process(seg, masks):
    """``seg``'s own clean-up of thresholded masks (small components removed, holes filled): its
    fitted model's ``postprocessing``."""
    return seg.model_.postprocessing.apply(masks)



# ---------------------------------------------------------------- recipes: changes outside the parameters

class Recipe(quality.Configuration):
    """The default segmenter (or ``params``) trained on the given slices: ``fit(x, y, b, groups)``, then
    ``predict(x, b)``.  Subclasses change the training data, the sample, the model or the post-processing."""

    def segmenter(self):
        return PixelSegmenter(**{"random_state": 0, **self.params})

    def out_of_fold(self, x, y, b, groups):
        """Probabilities of the training slices, each from a segmenter fitted without its patient (5 folds)."""
        oof = np.zeros(y.shape, dtype=np.float32)
        for train, test in GroupKFold(n_splits=5).split(x, groups=groups):
            oof[test] = self.segmenter().fit(x[train], y[train], b[train]).predict_proba(x[test], b[test])
        return oof


def _rotated(x, y, b, degrees):
    """Slices rotated about their centre: images linearly interpolated, each channel's outside filled with
    its own background value; masks and brain masks rotated as fractions, then cut at 1/2."""
    xr = np.empty_like(x)
    for i in range(x.shape[0]):
        outside = ~b[i]
        for c in range(x.shape[3]):
            fill = float(x[i, ..., c][outside][0]) if outside.any() else 0.0
            xr[i, ..., c] = ndimage.rotate(x[i, ..., c], degrees, reshape=False, order=1, cval=fill)

    def turn(masks):
        return ndimage.rotate(masks.astype(np.float32), degrees, axes=(1, 2), reshape=False, order=1) > 0.5

    return xr, turn(y), turn(b)


class Tuned(Recipe):
    """The threshold first chosen by 5-fold patient-wise CV over the training slices (``tune_threshold``),
    so inside every CV fold on that fold's training patients only (nested)."""

    def fit(self, x, y, b, groups):
        seg = self.segmenter()
        seg.set_params(threshold=tune_threshold(seg, x, y, groups, cv=5, brain=b)["threshold"])
        self.seg_ = seg.fit(x, y, b)
        return self


class AreaThreshold(Recipe):
    """A threshold per slice that depends on how much tumour the slice holds: slices whose mask at 0.5
    covers at least ``area`` pixels are cut at ``low``, the others at ``high``.  The three are chosen
    together on out-of-fold probabilities of the training patients (5-fold, by patient), for the best
    mean per-patient Dice over every training slice (``tune_threshold``'s objective), so inside every CV
    fold on that fold's training patients only (nested)."""

    grid = [(low, high, area) for low in (0.3, 0.4, 0.5) for high in (0.5, 0.6, 0.7, 0.8, 0.9)
            for area in (1000, 2000, 3000, 4000, 5000)]

    def _masks(self, p, b, rule):
        low, high, area = rule
        large = (p > 0.5).sum(axis=(1, 2)) >= area
        return post_process(self.seg_, (p > np.where(large, low, high)[:, None, None]) & b)

    def fit(self, x, y, b, groups):
        oof = self.out_of_fold(x, y, b, groups)
        self.seg_ = self.segmenter().fit(x, y, b)
        dice = [segmentation_report(y, self._masks(oof, b, r), groups).mean_group["dice"] for r in self.grid]
        self.rule_ = self.grid[int(np.argmax(dice))]
        return self

    def predict(self, x, b):
        return self._masks(self.seg_.predict_proba(x, b), b, self.rule_)


class Augmented(Recipe):
    """Training slices plus transformed copies: left-right mirror images (``flip``), rotations by each
    of ``angles`` degrees, and copies with a random linear intensity ramp added to each channel inside
    the brain (``ramp``: its largest size, reached at the image's corners, in the data's z units; an
    affine change of a channel is undone by the per-slice brain normalisation, a ramp is not).  Copies
    keep their patient."""

    def __init__(self, flip=False, angles=(), ramp=0.0, **params):
        super().__init__(**params)
        self.flip, self.angles, self.ramp = flip, angles, ramp

    def fit(self, x, y, b, groups):
        parts = [(x, y, b)]
        if self.flip:
            parts.append((x[:, :, ::-1], y[:, :, ::-1], b[:, :, ::-1]))
        parts += [_rotated(x, y, b, a) for a in self.angles]
        if self.ramp:
            rng = np.random.default_rng(0)
            N, H, W, C = x.shape
            rows, cols = np.mgrid[-1:1:H * 1j, -1:1:W * 1j]
            u, v = rng.uniform(-1, 1, size=(2, N, 1, 1, C))
            field = self.ramp * (u * rows[None, :, :, None] + v * cols[None, :, :, None]) / 2
            parts.append((np.where(b[..., None], x + field, x).astype(np.float32), y, b))
        x, y, b = (np.concatenate(a) for a in zip(*parts))
        self.seg_ = self.segmenter().fit(x, y, b)
        return self


class _RingSampler(PixelSegmenter):
    """PixelSegmenter whose non-tumour sample takes ``share`` of its pixels from the ring of brain
    pixels within ``ring`` pixels (chessboard distance) of the tumour, the rest from anywhere."""
    ring, share = 10, 0.3

    def _sample(self, y, brain, rng, max_pixels, tumour_fraction):
        sample = np.zeros(y.shape, dtype=bool)
        for i in range(y.shape[0]):
            inside, t = brain[i].ravel(), y[i].ravel()
            near = ndimage.binary_dilation(y[i], np.ones((3, 3), bool), iterations=self.ring).ravel()
            pos, neg, ring = (np.flatnonzero(inside & t), np.flatnonzero(inside & ~t),
                              np.flatnonzero(inside & ~t & near))
            n_total = min(max_pixels, pos.size + neg.size)
            n_pos = min(pos.size, int(round(tumour_fraction * n_total)))
            n_neg = min(neg.size, n_total - n_pos)
            n_pos = min(pos.size, n_total - n_neg)
            n_ring = min(ring.size, int(round(self.share * n_neg)))
            from_ring = rng.choice(ring, n_ring, replace=False)
            rest = rng.choice(np.setdiff1d(neg, from_ring), n_neg - n_ring, replace=False)
            sample[i].ravel()[np.concatenate([rng.choice(pos, n_pos, replace=False), from_ring, rest])] = True
        return sample


class BorderSampled(Recipe):
    """Non-tumour training pixels drawn partly from a ring around the tumour (``_RingSampler``)."""

    def __init__(self, ring=10, share=0.3, **params):
        super().__init__(**params)
        self.ring, self.share = ring, share

    def segmenter(self):
        seg = _RingSampler(**{"random_state": 0, **self.params})
        seg.ring, seg.share = self.ring, self.share
        return seg


class Hysteresis(Recipe):
    """Post-processing that keeps only the components of the thresholded mask that hold a pixel of
    probability >= ``high`` (the most confident region), then the default clean-up."""

    def __init__(self, high=0.9, **params):
        super().__init__(**params)
        self.high = high

    def predict(self, x, b):
        p = self.seg_.predict_proba(x, b)
        masks = p > self.seg_.threshold_
        for i in range(len(masks)):
            labels, n = ndimage.label(masks[i], np.ones((3, 3), bool))
            keep = np.zeros(n + 1, dtype=bool)
            keep[np.unique(labels[p[i] >= self.high])] = True
            keep[0] = False
            masks[i] = keep[labels]
        return post_process(self.seg_, masks)


class Ensemble(Recipe):
    """``members`` MLP(32)s trained on the same sample from different initialisations, their output
    units' inputs (logits) averaged: exactly one MLP with ``32 members`` hidden units (the output
    weights divided by ``members``), which fastseg's kernels then run like any other."""

    def __init__(self, members=3, **params):
        super().__init__(**params)
        self.members = members

    def fit(self, x, y, b, groups):
        nets = []
        with warnings.catch_warnings():  # the built-in budget is deliberate
            warnings.filterwarnings("ignore", category=ConvergenceWarning)
            for m in range(self.members):
                clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=60, random_state=m)
                nets.append(self.segmenter().set_params(classifier=clf).fit(x, y, b))
        seg, n = nets[0], self.members
        first = [s.classifier_[-1] for s in nets]
        merged = seg.classifier_[-1]  # the same sample, so the same scaler: only the networks differ
        merged.coefs_ = [np.hstack([f.coefs_[0] for f in first]), np.vstack([f.coefs_[1] for f in first]) / n]
        merged.intercepts_ = [np.hstack([f.intercepts_[0] for f in first]),
                              np.mean([f.intercepts_[1] for f in first], axis=0)]
        # the fitted model is immutable: a new one, with the merged network
        seg.model_ = dataclasses.replace(seg.model_, network=_fold_pipeline(seg.classifier_))
        self.seg_ = seg
        return self


class AutoContext(Recipe):
    """Two stages: the default segmenter, then a small MLP over its probability map's context at the
    pixel (its logit, the brain-normalised box means of the probabilities over 7, 15 and 31 pixels and
    their maxima over 15 and 31), trained on out-of-fold probabilities of the training patients
    (5-fold, by patient), so the second stage sees first-stage errors as they are on new patients."""

    sizes = (7, 15, 31)

    def _context(self, p, b):
        q = np.clip(p, 1e-4, 1 - 1e-4)
        cols = [np.log(q / (1 - q))]
        share = [ndimage.uniform_filter(b.astype(np.float32), size=(1, s, s), mode="constant")
                 for s in self.sizes]
        cols += [ndimage.uniform_filter(p, size=(1, s, s), mode="constant") / np.maximum(f, 1e-3)
                 for s, f in zip(self.sizes, share)]
        cols += [ndimage.maximum_filter(p, size=(1, s, s)) for s in self.sizes[1:]]
        return np.stack(cols, axis=-1).astype(np.float32)

    def fit(self, x, y, b, groups):
        oof = self.out_of_fold(x, y, b, groups)
        self.seg_ = self.segmenter().fit(x, y, b)
        p = self.seg_.get_params()
        sample = _class_aware_sample(y, b, np.random.default_rng(0), p["max_pixels"], p["tumour_fraction"])
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=ConvergenceWarning)
            self.second_ = make_pipeline(StandardScaler(), MLPClassifier((8,), max_iter=200, random_state=0))
            self.second_.fit(self._context(oof, b)[sample], y[sample])
        return self

    def predict(self, x, b):
        features = self._context(self.seg_.predict_proba(x, b), b)
        masks = np.zeros(b.shape, dtype=bool)
        masks[b] = self.second_.predict_proba(features[b])[:, 1] > 0.5
        return post_process(self.seg_, masks)


def _brain_mean(z, b, size=None, sigma=None):
    """Mean of each channel of one slice ``z`` (H, W, C) over the brain pixels of a box of side ``size``
    or a Gaussian window of ``sigma`` around every pixel."""
    if size is not None:
        def smooth(a):
            return ndimage.uniform_filter(a, size=size, mode="constant")
    else:
        def smooth(a):
            return ndimage.gaussian_filter(a, sigma=sigma, mode="constant")
    bf = b.astype(np.float32)
    share = np.maximum(smooth(bf), 1e-3)
    return np.stack([smooth(z[..., c] * bf) / share for c in range(z.shape[-1])], axis=-1)


def _extra_maps(z, b, family):
    """(H, W, E) per-pixel maps of a feature family not in PixelSegmenter, for one brain-normalised slice
    ``z`` (H, W, C) with brain mask ``b``; 0 outside the brain."""
    H, W, C = z.shape
    maps = []
    if family == "minmax":        # local maximum and minimum of each channel over brain pixels, 5x5 and 11x11
        for s in (5, 11):
            maps.append(ndimage.maximum_filter(np.where(b[..., None], z, -np.inf), size=(s, s, 1), mode="nearest"))
            maps.append(ndimage.minimum_filter(np.where(b[..., None], z, np.inf), size=(s, s, 1), mode="nearest"))
    elif family == "band-pass":   # difference-of-Gaussians bands (a wavelet-like split of the spectrum)
        g = {s: _brain_mean(z, b, sigma=s) for s in (1, 2, 4, 8)}
        maps += [g[1] - g[2], g[2] - g[4], g[4] - g[8]]
    elif family == "dilated":     # 5x5 brain means at the 8 neighbours 6 pixels away (a dilated window)
        pad = np.pad(_brain_mean(z, b, size=5), ((6, 6), (6, 6), (0, 0)), mode="edge")
        maps += [pad[6 + dy:6 + dy + H, 6 + dx:6 + dx + W]
                 for dy in (-6, 0, 6) for dx in (-6, 0, 6) if dy or dx]
    elif family == "rank":        # each channel's rank among the slice's brain pixels, in (0, 1)
        r = np.zeros(z.shape, dtype=np.float32)
        for c in range(C):
            v = z[..., c][b]
            r[..., c][b] = (np.argsort(np.argsort(v, kind="stable"), kind="stable") + 0.5) / v.size
        maps.append(r)
    elif family == "slice-area":  # the slice's brain area (a proxy for the axial level), the same at every pixel
        maps.append(np.full((H, W, 1), b.sum() / 20000.0, dtype=np.float32))
    else:
        raise ValueError(f"unknown family {family!r}")
    out = np.concatenate(maps, axis=-1).astype(np.float32)
    out[~b] = 0.0
    return out


def _class_aware_sample(y, b, rng, max_pixels, tumour_fraction):
    """PixelSegmenter's class-aware sample of brain pixels, per image ((N, H, W) bool): the same draws
    from the same generator, so the same pixels."""
    sample = np.zeros(y.shape, dtype=bool)
    for i in range(y.shape[0]):
        inside = b[i].ravel()
        pos, neg = np.flatnonzero(inside & y[i].ravel()), np.flatnonzero(inside & ~y[i].ravel())
        n_total = min(max_pixels, pos.size + neg.size)
        n_pos = min(pos.size, int(round(tumour_fraction * n_total)))
        n_neg = min(neg.size, n_total - n_pos)
        n_pos = min(pos.size, n_total - n_neg)
        chosen = np.concatenate([rng.choice(pos, n_pos, replace=False), rng.choice(neg, n_neg, replace=False)])
        sample[i].ravel()[chosen] = True
    return sample


class ExtraFeatures(Recipe):
    """The default features plus a family measured as a prototype before any kernel is written for it:
    the default MLP trained on the segmenter's feature rows (``fastseg.features.pixel_features``) with the
    family's maps (``_extra_maps``, numpy / scipy) appended, and applied through scikit-learn (the kernels
    know only the built-in families).  Public functions only, with the segmenter's sample, network and
    post-processing."""

    def __init__(self, family, **params):
        super().__init__(**params)
        self.family = family

    def _params(self):
        return self.segmenter().get_params()

    def rows(self, z, b, mask):
        """Feature rows of the ``mask`` pixels of brain-normalised slices ``z``: the segmenter's columns,
        then the family's."""
        p = self._params()
        base = pixel_features(z, b, p["k"], mask=mask, mode=p["mode"], std_sizes=p["std_sizes"],
                              asymmetry=p["asymmetry"], gradient_size=p["gradient_size"], position=p["position"])
        extra = np.concatenate([_extra_maps(z[i], b[i], self.family)[mask[i]] for i in range(len(z))])
        return np.hstack([base, extra])

    def fit(self, x, y, b, groups):
        p = self._params()
        sample = _class_aware_sample(y, b, np.random.default_rng(p["random_state"]), p["max_pixels"],
                                     p["tumour_fraction"])
        self.feature_names_ = pixel_feature_names(
            x.shape[-1], p["k"], std_sizes=p["std_sizes"], asymmetry=p["asymmetry"],
            gradient_size=p["gradient_size"], position=p["position"])
        self.classifier_ = make_pipeline(StandardScaler(), MLPClassifier(
            hidden_layer_sizes=tuple(p["hidden_layer_sizes"]), alpha=p["alpha"], max_iter=p["max_iter"],
            random_state=p["random_state"]))
        with warnings.catch_warnings():  # the built-in budget is deliberate
            warnings.filterwarnings("ignore", category=ConvergenceWarning)
            self.classifier_.fit(self.rows(normalize_brain(x, b), b, sample), y[sample])
        return self

    def predict_proba(self, x, b):
        p = np.zeros(b.shape, dtype=np.float32)
        p[b] = self.classifier_.predict_proba(self.rows(normalize_brain(x, b), b, b))[:, 1]
        return p

    def predict(self, x, b):
        p = self._params()
        return clean_mask((self.predict_proba(x, b) > 0.5) & b, p["min_size"], p["fill_holes"],
                          p["connectivity"], min_relative_size=p["min_relative_size"])


class SliceAdapted(Recipe):
    """Test-time adaptation to each slice's intensities: a linear discriminant over the slice's four
    brain-normalised channels, fitted to the slice's own confident pixels (probability >= ``high`` as
    tumour, <= ``low`` as not; no label is used), its log-odds mixed with the segmenter's logit
    (``mix`` of the segmenter's), cut at 0, then the default post-processing.  A slice with fewer than
    20 confident pixels of either kind keeps the segmenter's mask.  ``high``, ``low`` and ``mix`` were
    chosen on the training patients' multislice slices in patient-wise CV (0.5 of 0.3-0.8)."""

    def __init__(self, high=0.9, low=0.1, mix=0.5, **params):
        super().__init__(**params)
        self.high, self.low, self.mix = high, low, mix

    def predict(self, x, b):
        p = self.seg_.predict_proba(x, b)
        z = normalize_brain(x, b)
        masks = np.zeros(b.shape, dtype=bool)
        for i in range(len(x)):
            q, v = np.clip(p[i][b[i]], 1e-4, 1 - 1e-4).astype(np.float64), z[i][b[i]].astype(np.float64)
            logit = np.log(q / (1 - q))
            pos, neg = q >= self.high, q <= self.low
            n1, n0 = int(pos.sum()), int(neg.sum())
            if n1 < 20 or n0 < 20:
                masks[i][b[i]] = logit > 0
                continue
            # two Gaussians with a shared covariance: the classes' means, the pooled covariance
            m1, m0 = v[pos].mean(axis=0), v[neg].mean(axis=0)
            d1, d0 = v[pos] - m1, v[neg] - m0
            pooled = (d1.T @ d1 + d0.T @ d0) / (n1 + n0 - 2)
            w = np.linalg.solve(pooled + 1e-6 * np.eye(len(m1)), m1 - m0)
            own = v @ w - 0.5 * w @ (m1 + m0) + np.log(n1 / n0)
            masks[i][b[i]] = self.mix * logit + (1 - self.mix) * own > 0
        return post_process(self.seg_, masks)


#: name -> (what it is, the recipe; all train on the multislice slices too)
RECIPES = {
    "tuned-threshold": ("default, threshold chosen by 5-fold patient-wise CV over the training patients' "
                        "slices (`tune_threshold`; nested inside each CV fold)", Tuned()),
    "area-threshold": ("default, threshold 0.3-0.5 on slices with much tumour and 0.5-0.9 on the others, "
                       "the two and the area between them chosen by patient-wise CV (nested)", AreaThreshold()),
    "+flip": ("default, training slices plus their left-right mirror images", Augmented(flip=True)),
    "+rotate": ("default, training slices plus copies rotated by -10 and +10 degrees",
                Augmented(angles=(-10, 10))),
    "+intensity-ramp": ("default, training slices plus copies with a random linear intensity ramp per "
                        "channel (at most 0.5 z, at the image's corners)", Augmented(ramp=0.5)),
    "border-sampling": ("default, 30 % of the non-tumour sample from within 10 pixels of the tumour",
                        BorderSampled(ring=10, share=0.3)),
    "hysteresis": ("default, only components holding a pixel of probability >= 0.9 kept", Hysteresis(0.9)),
    "ensemble-3": ("3 MLP(32)s from 3 initialisations, logits averaged (= one MLP(96))", Ensemble(3)),
    "auto-context": ("default, then a second MLP(8) over the first's probability context (out-of-fold "
                     "training)", AutoContext()),
    "+minmax": ("default plus the local maximum and minimum of each channel over 5x5 and 11x11 (prototype)",
                ExtraFeatures("minmax")),
    "+band-pass": ("default plus difference-of-Gaussians bands of each channel, sigma 1-2, 2-4, 4-8 "
                   "(prototype)", ExtraFeatures("band-pass")),
    "+dilated": ("default plus the 5x5 means of each channel at the 8 neighbours 6 pixels away (prototype)",
                 ExtraFeatures("dilated")),
    "+rank": ("default plus each channel's rank among the slice's brain pixels (prototype)",
              ExtraFeatures("rank")),
    "+slice-area": ("default plus the slice's brain area, a proxy for its axial level (prototype)",
                    ExtraFeatures("slice-area")),
    "slice-adapted": ("default, then each slice's decision adapted to its own intensities: a linear discriminant "
                      "over its channels fitted to its confident pixels (p >= 0.9 / <= 0.1), log-odds averaged "
                      "with the segmenter's logit (prototype)", SliceAdapted()),
}


def multislice_cv(data, entry=None):
    """Per-patient Dice of the default (or ``entry``: PixelSegmenter parameters or a recipe) on the 17
    training patients' own multislice slices, each predicted by a segmenter fitted in 5-fold
    patient-wise CV (GroupKFold on the brats2d slices) without that patient: the test multislice
    column's question asked of more patients.  Returns the (patient, Dice, predicted / true area) rows,
    worst first."""
    train, _, m_train, _ = data
    recipe = entry if isinstance(entry, Recipe) else Recipe(**(entry or {}))
    patients = train[3]
    predictions = np.zeros(m_train[1].shape, dtype=bool)
    for fit, held in GroupKFold(n_splits=5).split(train[0], groups=patients):
        use = np.isin(m_train[3], patients[fit])
        x, y, b, g = (np.concatenate([a[fit], c[use]]) for a, c in zip(train, m_train))
        model = copy.deepcopy(recipe).fit(x, y, b, g)
        scored = np.isin(m_train[3], patients[held])
        predictions[scored] = model.predict(m_train[0][scored], m_train[2][scored])
    report = segmentation_report(m_train[1], predictions, m_train[3])
    rows = []
    for row in report.per_group:
        mine = m_train[3] == row["group"]
        rows.append((row["group"], row["dice"], predictions[mine].sum() / m_train[1][mine].sum()))
    return sorted(rows, key=lambda r: r[1])




def write_multislice_json(path, name, rows):
    """Add ``name``'s ``multislice_cv`` rows to the JSON file at ``path`` (created if missing; the rows
    of other names already there are kept, so one file can hold the default and a recipe)."""
    path = Path(path)
    record = json.loads(path.read_text()) if path.exists() else {}
    record.update(benchmark="multislice_cv", environment=quality.environment(),
                  command="python experiments/recipes.py --multislice-cv [name] --json OUT",
                  what="Dice of each training patient's own multislice slices, predicted by a model fitted "
                       "in 5-fold patient-wise CV without that patient, and its predicted / true tumour area")
    record.setdefault("rows", {})[name] = [
        {"patient": str(p), "dice": float(d), "area_ratio": float(r)} for p, d, r in rows]
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {path}")


def main(argv):
    known = {**CONFIGS, **{n: (what, r, True) for n, (what, r) in RECIPES.items()}}
    p = quality.parser("Research recipes and ablation rows, measured as benchmarks/quality.py measures "
                       "the shipped configurations.")
    p.add_argument("--multislice-cv", action="store_true",
                   help="score the default (or the one named row) on the training patients' multislice "
                        "slices, patient by patient, in 5-fold patient-wise CV")
    args = p.parse_args(argv)
    if args.list:
        print("\n".join(known))
        return
    if args.multislice_cv:
        if len(args.names) > 1 or (args.names and args.names[0] not in known):
            raise SystemExit(f"--multislice-cv takes at most one configuration, got {args.names}; "
                             "--list names them")
        name = args.names[0] if args.names else "default"
        rows = multislice_cv(quality.load(), known[name][1] if args.names else None)
        print("| training patient | Dice on its multislice slices (5-fold CV) | predicted / true area |")
        print("|---|---|---|")
        for patient, dice, ratio in rows:
            print(f"| {patient} | {dice:.3f} | {ratio:.2f} |")
        print(f"| mean | {np.mean([r[1] for r in rows]):.3f} | |")
        if args.json:
            write_multislice_json(args.json, name, rows)
        return
    quality.run(args.names, known, quality.load(), args.json,
                command="python experiments/recipes.py" + (" --json OUT" if args.json else ""))


if __name__ == "__main__":
    main(sys.argv[1:])
