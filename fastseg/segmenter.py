"""PixelSegmenter: the scikit-learn style estimator that ties fastseg together.

fit:      brain mask -> per-slice brain normalisation -> class-aware pixel
          sample per image (brain pixels only) -> pixel features at those
          pixels (k x k window + context: local std, asymmetry, gradient,
          position) -> StandardScaler + classifier (default a small MLP)
predict:  brain mask -> normalisation -> pixel features of the brain pixels
          -> scoring kernel (MLP or linear, scaler folded into the weights; other
          classifiers: their own method) -> threshold -> small and relatively
          small components removed, holes filled
"""
from __future__ import annotations

import sys
import time
import warnings

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted

from ._validation import SEGMENTER_PARAMETERS, check_images, check_k_fits, check_masks, check_params
from .features import _pixel_rows
from .model import PixelModel, _parts
from .preprocessing import _brain_mask, _normalize_brain_into
from .scoring import Network

__all__ = ["PixelSegmenter"]


def _fold_pipeline(pipe) -> Network:
    """The network of a fitted StandardScaler + linear/MLP pipeline, the scaler folded into layer 1
    (in float64)."""
    scaler, clf = pipe[0], pipe[-1]
    mean = scaler.mean_.astype(np.float64)
    scale = scaler.scale_.astype(np.float64)
    if isinstance(clf, MLPClassifier):
        coefs = [np.asarray(w, dtype=np.float64) for w in clf.coefs_]
        intercepts = [np.asarray(b, dtype=np.float64) for b in clf.intercepts_]
        coefs[0] = coefs[0] / scale[:, None]
        intercepts[0] = intercepts[0] - mean @ coefs[0]
        return Network.mlp(coefs, intercepts, clf.activation)
    coef = np.asarray(clf.coef_, dtype=np.float64).ravel() / scale
    intercept = float(np.ravel(clf.intercept_)[0]) - float(mean @ coef)
    return Network.linear(coef, intercept)


#: Slices normalised and described together by fit (bounds its memory beyond the images).
_FIT_CHUNK = 64


def _is_volume_list(images) -> bool:
    """Whether ``images`` is several volumes: a non-empty list or tuple of 4-D numpy arrays."""
    return (isinstance(images, (list, tuple)) and len(images) > 0
            and all(isinstance(v, np.ndarray) and v.ndim == 4 for v in images))


def _training_stacks(images, masks, brain, within=None) -> list:
    """fit's input as checked (images (N, H, W, C) float32, masks, brain and the pixels that may be
    sampled (N, H, W) bool) stacks: one for an array of slices, one per volume for a list of volumes."""
    if not _is_volume_list(images):
        batch, single = check_images(images)
        N, H, W, _ = batch.shape
        shape = (H, W) if single else (N, H, W)
        b = _brain_mask(batch) if brain is None else check_masks(brain, "brain", shape=shape).reshape(N, H, W).view(bool)
        y = check_masks(masks, "masks", shape=shape).reshape(N, H, W).view(bool)
        w = b if within is None else b & check_masks(within, "within", shape=shape).reshape(N, H, W).view(bool)
        return [(batch, y, b, w)]
    n = len(images)
    for name, value in (("masks", masks), ("brain", brain), ("within", within)):
        if value is None and name != "masks":
            continue
        if not isinstance(value, (list, tuple)) or len(value) != n:
            raise TypeError(f"{name} must be a list of {n} arrays, one per volume of images, got "
                            f"{type(value).__name__}" + (f" of length {len(value)}" if isinstance(value, (list, tuple)) else ""))
    stacks = []
    for i, volume in enumerate(images):
        batch, _ = check_images(volume, f"images[{i}]")
        if stacks and batch.shape[1:] != stacks[0][0].shape[1:]:
            raise ValueError(f"images[{i}] has slices of shape {batch.shape[1:]}, but images[0] has "
                             f"{stacks[0][0].shape[1:]}")
        shape = batch.shape[:3]
        y = check_masks(masks[i], f"masks[{i}]", shape=shape).view(bool)
        b = _brain_mask(batch) if brain is None else check_masks(brain[i], f"brain[{i}]", shape=shape).view(bool)
        w = b if within is None else b & check_masks(within[i], f"within[{i}]", shape=shape).view(bool)
        stacks.append((batch, y, b, w))
    return stacks


class PixelSegmenter(ClassifierMixin, BaseEstimator):
    """Per-pixel tumour segmenter: window features, a linear SVM or small MLP, post-processing.

    Parameters
    ----------
    k : int, default=3
        Odd window size: each pixel is described by the k x k window of the
        (normalised) image channels around it, plus its context features.
    classifier : {"mlp", "linear-svm", "logistic"} or estimator, default="mlp"
        ``"mlp"``: ``MLPClassifier(hidden_layer_sizes)``; ``"linear-svm"``:
        ``LinearSVC(C)``; ``"logistic"``: ``LogisticRegression(C)``; or any
        scikit-learn binary classifier instance (cloned before fitting).  Linear
        and MLP classifiers are scored by fastseg's fused kernels; any other
        estimator through window features and its own method.
    C : float, default=0.1
        Inverse regularisation strength of ``"linear-svm"`` and ``"logistic"``.
    hidden_layer_sizes : tuple of int, default=(32,)
        Hidden layers of ``"mlp"``.
    alpha : float, default=1e-4
        L2 penalty of ``"mlp"``.
    max_iter : int, default=60
        Iteration budget of the built-in classifiers (``"mlp"``: epochs; a
        deliberately short budget, so its ``ConvergenceWarning`` is silenced;
        ``"linear-svm"`` and ``"logistic"``: five times this).
    max_pixels : int, default=300
        Training pixels sampled per image (all of them when the brain is smaller).
        Many slices with few pixels each generalise better than few slices
        with many: train on every slice you have (e.g. several per patient).
    tumour_fraction : float in (0, 1), default=0.5
        Share of tumour pixels in each image's sample (class-aware sampling: the
        tumour is a small part of the brain).  When an image has too few pixels
        of one class, the rest of its sample comes from the other.
    class_weight : dict, "balanced" or None, default=None
        Passed to classifiers that accept it.
    threshold : float, optional
        Decision threshold on the score: default 0.5 for probabilities
        (``"mlp"``, ``"logistic"``, estimators with ``predict_proba``), 0.0 for
        decision values (``"linear-svm"``).
    mean_sizes : tuple of odd int, default=()
        Context features (:func:`fastseg.features.pixel_features`): each
        channel's local mean over these box sizes.
    std_sizes : tuple of odd int, default=(7, 15)
        Context: each channel's local standard deviation over these box sizes.
    asymmetry : bool, default=True
        Context: each pixel's difference from its mirror image across the
        brain's midline, and the 15 x 15 mean of that difference.
    gradient_size : int, default=5
        Context: each channel's box-gradient magnitude at this size (0: none).
    position : bool, default=True
        Context: the pixel's place in the brain's bounding box and the brain's
        share of the 15 x 15 and 31 x 31 boxes around it.
    min_size : int, default=50
        Predicted components smaller than this (pixels) are removed.
    min_relative_size : float in [0, 1], default=0.2
        Predicted components smaller than this fraction of the slice's largest
        predicted component are removed (isolated false detections are usually
        much smaller than the tumour).
    fill_holes : bool, default=True
        Fill holes in the predicted masks (tumours have none).
    connectivity : {1, 2}, default=2
        Connectivity of the predicted components for ``min_size``.
    mode : {"reflect", "constant", "edge"}, default="reflect"
        Border handling of the windows.
    normalize : {"brain", "none"}, default="brain"
        ``"brain"``: standardise each channel of each slice over its brain
        pixels (:func:`fastseg.normalize_brain`) before anything else.
    n_jobs : int, optional
        Threads for prediction over the images of a batch (None: 1, -1: all cores).
    random_state : int, RandomState or None, default=None
        Seeds pixel sampling and the classifier.
    verbose : int, default=0
        Print progress of fit and predict to stderr.
    box_sizes : tuple of odd int
        Deprecated alias of ``mean_sizes`` (removed in 0.4).

    Attributes
    ----------
    model_ : PixelModel
        The fitted model, immutable: features, network, threshold, post-processing
        (:class:`fastseg.model.PixelModel`).  Everything predict does, it does.
    classifier_ : Pipeline or None
        The fitted ``StandardScaler`` + classifier (None for a loaded model).
    classes_ : ndarray of shape (2,)
        ``[False, True]``.
    n_channels_ : int
        Channels seen in fit.
    score_kind_ : {"proba", "decision"}
        What :meth:`score_maps` returns and ``threshold`` applies to.
    threshold_ : float
        The threshold in use.
    n_training_pixels_ : int
        Pixels the classifier was trained on.
    feature_names_ : list of str
        The classifier's input columns (:func:`fastseg.features.pixel_feature_names`).

    Notes
    -----
    Every parameter is checked by :meth:`fit` (a ``TypeError`` or ``ValueError``
    naming it).  A fitted segmenter predicts with its fitted ``model_``:
    ``set_params`` changes nothing it predicts until it is fitted again, except
    ``n_jobs`` and ``verbose``, which are read at every call.

    Examples
    --------
    >>> import numpy as np
    >>> from fastseg import PixelSegmenter
    >>> rng = np.random.default_rng(0)
    >>> images = rng.standard_normal((4, 40, 40, 4)).astype(np.float32)
    >>> masks = np.zeros((4, 40, 40), bool); masks[:, 10:25, 12:30] = True
    >>> images[masks] += 2.0                    # the "tumour" is brighter
    >>> seg = PixelSegmenter(k=3, classifier="linear-svm", min_size=10, random_state=0)
    >>> seg = seg.fit(images, masks, brain=np.ones_like(masks))
    >>> pred = seg.predict(images, brain=np.ones_like(masks))
    >>> pred.shape, pred.dtype
    ((4, 40, 40), dtype('bool'))
    >>> bool((pred == masks).mean() > 0.95)
    True
    """

    def __init__(
        self,
        k: int = 3,
        classifier="mlp",
        *,
        C: float = 0.1,
        hidden_layer_sizes=(32,),
        alpha: float = 1e-4,
        max_iter: int = 60,
        max_pixels: int = 300,
        tumour_fraction: float = 0.5,
        class_weight=None,
        threshold: float | None = None,
        mean_sizes=(),
        std_sizes=(7, 15),
        asymmetry: bool = True,
        gradient_size: int = 5,
        position: bool = True,
        min_size: int = 50,
        min_relative_size: float = 0.2,
        fill_holes: bool = True,
        connectivity: int = 2,
        mode: str = "reflect",
        normalize: str = "brain",
        n_jobs: int | None = None,
        random_state=None,
        verbose: int = 0,
        box_sizes="deprecated",
    ):
        self.k = k
        self.classifier = classifier
        self.C = C
        self.hidden_layer_sizes = hidden_layer_sizes
        self.alpha = alpha
        self.max_iter = max_iter
        self.max_pixels = max_pixels
        self.tumour_fraction = tumour_fraction
        self.class_weight = class_weight
        self.threshold = threshold
        self.mean_sizes = mean_sizes
        self.std_sizes = std_sizes
        self.asymmetry = asymmetry
        self.gradient_size = gradient_size
        self.position = position
        self.min_size = min_size
        self.min_relative_size = min_relative_size
        self.fill_holes = fill_holes
        self.connectivity = connectivity
        self.mode = mode
        self.normalize = normalize
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.box_sizes = box_sizes

    # ------------------------------------------------------------------ fitted state

    n_channels_ = property(lambda self: self.model_.n_channels, doc="Channels seen in fit.")
    threshold_ = property(lambda self: self.model_.threshold, doc="The threshold in use.")
    score_kind_ = property(lambda self: self.model_.score_kind,
                           doc="What :meth:`score_maps` returns and the threshold applies to.")
    feature_names_ = property(lambda self: self.model_.feature_names, doc="The classifier's input columns.")
    n_training_pixels_ = property(lambda self: self.model_.n_training_pixels,
                                  doc="Pixels the classifier was trained on.")

    def _fitted_model(self) -> PixelModel:
        check_is_fitted(self, "model_")
        return self.model_

    def _checked_params(self) -> dict:
        """Every parameter checked (:data:`fastseg._validation.SEGMENTER_PARAMETERS`), the deprecated
        ``box_sizes`` resolved into ``mean_sizes``."""
        params = self.get_params(deep=False)
        box_sizes = params.pop("box_sizes")
        if not (isinstance(box_sizes, str) and box_sizes == "deprecated"):
            warnings.warn("PixelSegmenter's box_sizes was renamed mean_sizes in fastseg 0.3; box_sizes will be "
                          "removed in 0.4", FutureWarning, stacklevel=3)
            params["mean_sizes"] = box_sizes
        return check_params(params, SEGMENTER_PARAMETERS)

    # ------------------------------------------------------------------ helpers

    def _make_classifier(self, params: dict):
        seed = params["random_state"]
        if isinstance(seed, np.random.RandomState):
            seed = seed.randint(np.iinfo(np.int32).max)
        classifier, max_iter, C, class_weight = params["classifier"], params["max_iter"], params["C"], params["class_weight"]
        if classifier == "mlp":
            clf = MLPClassifier(
                hidden_layer_sizes=tuple(params["hidden_layer_sizes"]), alpha=params["alpha"],
                max_iter=max_iter, random_state=seed,
            )
        elif classifier == "linear-svm":
            clf = LinearSVC(C=C, class_weight=class_weight, dual=False, max_iter=max_iter * 5, random_state=seed)
        elif classifier == "logistic":
            clf = LogisticRegression(C=C, class_weight=class_weight, max_iter=max_iter * 5)
        else:
            clf = clone(classifier)
            clf_params = clf.get_params()
            if "random_state" in clf_params and clf_params["random_state"] is None and seed is not None:
                clf.set_params(random_state=seed)
            if "class_weight" in clf_params and class_weight is not None:
                clf.set_params(class_weight=class_weight)
        return make_pipeline(StandardScaler(), clf)

    @staticmethod
    def _sample(y: np.ndarray, brain: np.ndarray, rng: np.random.Generator, max_pixels: int,
                tumour_fraction: float) -> np.ndarray:
        """Class-aware sample of brain pixels, per image: (N, H, W) bool."""
        N = y.shape[0]
        sample = np.zeros(y.shape, dtype=bool)
        for i in range(N):
            inside = brain[i].ravel()
            pos = np.flatnonzero(inside & y[i].ravel())
            neg = np.flatnonzero(inside & ~y[i].ravel())
            n_total = min(max_pixels, pos.size + neg.size)
            n_pos = min(pos.size, int(round(tumour_fraction * n_total)))
            n_neg = min(neg.size, n_total - n_pos)
            n_pos = min(pos.size, n_total - n_neg)  # top up from tumour when the brain is mostly tumour
            chosen = np.concatenate([rng.choice(pos, n_pos, replace=False), rng.choice(neg, n_neg, replace=False)])
            sample[i].ravel()[chosen] = True
        return sample

    def _log(self, message: str) -> None:
        if self.verbose:
            print(f"[PixelSegmenter] {message}", file=sys.stderr, flush=True)

    # ------------------------------------------------------------------ fit

    def fit(self, images, masks, brain=None, *, within=None) -> "PixelSegmenter":
        """Train on brain pixels of the given slices or volumes.

        Parameters
        ----------
        images : array-like of shape (N, H, W, C) or (H, W, C), or a list of (Z, H, W, C) arrays
            Slices, or volumes (each a stack of axial slices; a list or tuple of
            4-D numpy arrays is taken as several volumes, of any depths).
            Pixels are sampled slice by slice (``max_pixels`` each), tumour-free
            slices included, and features are made a chunk of slices at a time,
            so memory beyond the images stays small.
        masks : array-like of shape (N, H, W) or (H, W), or a list of (Z, H, W) arrays
            Ground truth (non-zero = tumour), one per image (per volume).
        brain : array-like, a list of them, or None
            Brain masks shaped as ``masks``; None derives them with
            :func:`fastseg.brain_mask`.  Background pixels are never sampled.
        within : array-like, a list of them, or None
            Masks shaped as ``masks``: sample only these pixels of the brain (None: the whole
            brain).  The normalisation and the context features still see the whole brain.  A
            cascade's second stage learns this way to tell its region from the rest of the first
            stage's (tumour core inside the whole tumour, for example), and
            :meth:`fastseg.model.PixelModel.predict` scores such a region with ``within``.

        Returns
        -------
        self

        Examples
        --------
        Two volumes of different depths:

        >>> import numpy as np
        >>> from fastseg import PixelSegmenter
        >>> rng = np.random.default_rng(0)
        >>> vols = [rng.standard_normal((z, 32, 32, 4)).astype(np.float32) for z in (5, 7)]
        >>> truth = [np.zeros(v.shape[:3], bool) for v in vols]
        >>> for v, t in zip(vols, truth):
        ...     t[1:4, 8:20, 10:22] = True; v[t] += 2.0
        >>> seg = PixelSegmenter(classifier="linear-svm", min_size=5, random_state=0)
        >>> seg = seg.fit(vols, truth, [np.ones_like(t) for t in truth])
        >>> [m.shape for m in seg.predict(vols, [np.ones_like(t) for t in truth])]
        [(5, 32, 32), (7, 32, 32)]
        """
        p = self._checked_params()
        t0 = time.perf_counter()
        stacks = _training_stacks(images, masks, brain, within)
        H, W, C = stacks[0][0].shape[1:]
        spec, postprocessing = _parts(p, C)
        check_k_fits(spec.k, spec.mode, H, W)
        if not any((y & w).any() for _, y, _, w in stacks) or not any((~y & w).any() for _, y, _, w in stacks):
            raise ValueError("masks must contain both tumour and non-tumour pixels inside the brain"
                             + ("" if within is None else " (and within)"))
        seed = p["random_state"]
        rng = np.random.default_rng(seed if not isinstance(seed, np.random.RandomState)
                                    else seed.randint(np.iinfo(np.int32).max))
        rows, targets = [], []
        for batch, y, b, w in stacks:  # a chunk of slices at a time: normalised, sampled, described
            for start in range(0, len(batch), _FIT_CHUNK):
                x, yc, bc = batch[start:start + _FIT_CHUNK], y[start:start + _FIT_CHUNK], b[start:start + _FIT_CHUNK]
                wc = w[start:start + _FIT_CHUNK]
                if p["normalize"] == "brain":
                    normalized = np.empty_like(x)
                    _normalize_brain_into(x, bc, normalized)  # finite: checked above
                    x = normalized
                sample = self._sample(yc, wc, rng, p["max_pixels"], p["tumour_fraction"])
                rows.append(_pixel_rows(x, bc.view(np.uint8), sample.view(np.uint8), spec))
                targets.append(yc[sample])
        X = rows[0] if len(rows) == 1 else np.concatenate(rows)
        target = targets[0] if len(targets) == 1 else np.concatenate(targets)
        del rows
        self._log(f"sampled {X.shape[0]} brain pixels from {sum(len(s[0]) for s in stacks)} images "
                  f"({target.mean():.0%} tumour), {X.shape[1]} features each")
        pipe = self._make_classifier(p)
        with warnings.catch_warnings():
            if isinstance(p["classifier"], str):  # the built-in budgets are deliberate
                warnings.filterwarnings("ignore", category=ConvergenceWarning)
            pipe.fit(X, target)
        clf = pipe[-1]
        classes = getattr(clf, "classes_", None)
        if classes is None or len(classes) != 2:
            raise ValueError("the classifier must be binary (tumour / not tumour)")
        is_linear = hasattr(clf, "coef_") and np.ravel(getattr(clf, "intercept_", [0])).size == 1
        network = _fold_pipeline(pipe) if isinstance(clf, MLPClassifier) or is_linear else None
        if isinstance(clf, (MLPClassifier, LogisticRegression)) or (network is None and hasattr(clf, "predict_proba")):
            score_kind = "proba"
        else:
            score_kind = "decision"
        threshold = p["threshold"]
        if threshold is None:
            threshold = 0.5 if score_kind == "proba" else 0.0
        self.model_ = PixelModel(spec, network, threshold, score_kind, postprocessing, p["normalize"],
                                 estimator=pipe if network is None else None, n_training_pixels=X.shape[0])
        self.classifier_ = pipe
        self.classes_ = np.array([False, True])
        self._log(f"fitted {type(clf).__name__} in {time.perf_counter() - t0:.1f} s")
        return self

    # ------------------------------------------------------------------ predict (the model's)

    @staticmethod
    def _each(method, images, brain):
        """``method(images, brain)``, or for a list of volumes the list of its results, one per volume."""
        if not _is_volume_list(images):
            return method(images, brain)
        if brain is not None and (not isinstance(brain, (list, tuple)) or len(brain) != len(images)):
            raise TypeError(f"brain must be None or a list of {len(images)} arrays, one per volume of images, "
                            f"got {type(brain).__name__}")
        return [method(v, None if brain is None else brain[i]) for i, v in enumerate(images)]

    def predict(self, images: ArrayLike, brain: ArrayLike | None = None) -> NDArray[np.bool_]:
        """Tumour masks: score above the threshold inside the brain, then small components removed
        and holes filled (:meth:`fastseg.model.PixelModel.predict`).

        Parameters
        ----------
        images : array-like of shape (N, H, W, C) or (H, W, C), or a list of (Z, H, W, C) arrays
            Slices, or several volumes (a list or tuple of 4-D numpy arrays).
        brain : array-like of shape (N, H, W) or (H, W), a list of them, or None
            Brain masks; None derives them with :func:`fastseg.brain_mask`.

        Returns
        -------
        ndarray of shape (N, H, W) or (H, W), dtype=bool; a list of them for a list of volumes

        Notes
        -----
        Slices are processed 16 at a time, each chunk end to end by one thread
        (``n_jobs`` threads share the chunks), through scratch buffers the thread
        keeps for its next call: about 40 MiB for 240 x 240 x 4 slices with the
        default features (fresh memory would cost a page fault per 4 KB on every
        call).
        """
        model = self._fitted_model()
        return self._each(lambda x, b: model.predict(x, b, n_jobs=self.n_jobs, verbose=self.verbose), images, brain)

    def predict_proba(self, images: ArrayLike, brain: ArrayLike | None = None) -> NDArray[np.float32]:
        """Tumour probability of every pixel, shape (N, H, W) or (H, W); 0 outside the brain.

        Available when the classifier gives probabilities (``score_kind_ == "proba"``:
        the MLP, logistic regression, estimators with ``predict_proba``).
        """
        model = self._fitted_model()
        return self._each(lambda x, b: model.predict_proba(x, b, n_jobs=self.n_jobs), images, brain)

    def decision_function(self, images: ArrayLike, brain: ArrayLike | None = None) -> NDArray[np.float32]:
        """The output unit's input at every pixel, 0 outside the brain: the logit of the MLP and of
        logistic regression, the margin of the linear SVM (as scikit-learn's ``decision_function``)."""
        model = self._fitted_model()
        return self._each(lambda x, b: model.decision_function(x, b, n_jobs=self.n_jobs), images, brain)

    def score_maps(self, images: ArrayLike, brain: ArrayLike | None = None) -> NDArray[np.float32]:
        """The per-pixel scores the threshold applies to (see ``score_kind_``), 0 outside the brain."""
        model = self._fitted_model()
        return self._each(lambda x, b: model.score_maps(x, b, n_jobs=self.n_jobs), images, brain)

    def score(self, images, masks, brain=None) -> float:
        """Mean per-slice Dice of :meth:`predict` against ``masks`` (both-empty slices count 1)."""
        from .metrics import segmentation_report

        return segmentation_report(masks, self.predict(images, brain)).mean_slice["dice"]
