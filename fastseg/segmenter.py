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

import numbers
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

from ._validation import assume_finite, check_bool, check_connectivity, check_fraction, check_images, check_k, check_k_fits, check_masks, check_min_size, check_mode, check_n_jobs
from ._parallel import run_chunks, thread_buffer
from .components import _clean_into
from .features import _check_box_sizes, _check_gradient_size, _context_rows, pixel_feature_names, pixel_features
from .preprocessing import _normalize_brain_into, brain_mask, normalize_brain
from .scoring import MLPWeights, linear_scores, mlp_row_scores, mlp_scores

__all__ = ["PixelSegmenter"]

_CLASSIFIERS = ("mlp", "linear-svm", "logistic")

#: Slices prepared and scored together in predict (a thread's unit of work): the
#: normalised chunk (16 x 240 x 240 x 4 float32 = 15 MB) stays bounded whatever the
#: batch size, and each thread reuses its buffers from chunk to chunk.
_CHUNK = 16

#: The asymmetry family's box: pixel_features' default, which the segmenter keeps.
_ASYMMETRY_BOX = 15
_NORMALIZE = ("brain", "none")


def _fold_pipeline(pipe):
    """(kind, arrays) of a fitted StandardScaler + linear/MLP pipeline, scaler folded into layer 1.

    kind is "linear" (arrays: coef (F,), intercept ()) or "mlp" (coefs, intercepts
    lists, activation).  Folding is done in float64.
    """
    scaler, clf = pipe[0], pipe[-1]
    mean = scaler.mean_.astype(np.float64)
    scale = scaler.scale_.astype(np.float64)
    if isinstance(clf, MLPClassifier):
        coefs = [np.asarray(w, dtype=np.float64) for w in clf.coefs_]
        intercepts = [np.asarray(b, dtype=np.float64) for b in clf.intercepts_]
        coefs[0] = coefs[0] / scale[:, None]
        intercepts[0] = intercepts[0] - mean @ coefs[0]
        return "mlp", {"coefs": coefs, "intercepts": intercepts, "activation": clf.activation}
    coef = np.asarray(clf.coef_, dtype=np.float64).ravel() / scale
    intercept = float(np.ravel(clf.intercept_)[0]) - float(mean @ coef)
    return "linear", {"coef": coef, "intercept": intercept}


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
    box_sizes : tuple of odd int, default=()
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

    Attributes
    ----------
    classifier_ : Pipeline
        The fitted ``StandardScaler`` + classifier.
    n_channels_ : int
        Channels seen in fit.
    score_kind_ : {"proba", "decision"}
        What :meth:`score_maps` returns and ``threshold`` applies to.
    threshold_ : float
        The threshold in use.
    scorer_ : tuple or None
        ``("linear", {...})`` or ``("mlp", {...})``: the folded weights the fused
        kernels use (None for other estimators).
    n_training_pixels_ : int
        Pixels the classifier was trained on.
    feature_names_ : list of str
        The classifier's input columns (:func:`fastseg.features.pixel_feature_names`).

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
        box_sizes=(),
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
        self.box_sizes = box_sizes
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

    # ------------------------------------------------------------------ helpers

    def _log(self, message: str) -> None:
        if self.verbose:
            print(f"[PixelSegmenter] {message}", file=sys.stderr, flush=True)

    def _check_params(self) -> None:
        check_k(self.k)
        check_mode(self.mode)
        check_min_size(self.min_size)
        check_connectivity(self.connectivity)
        check_n_jobs(self.n_jobs)
        _check_box_sizes(self.box_sizes, "box_sizes")
        _check_box_sizes(self.std_sizes, "std_sizes")
        _check_gradient_size(self.gradient_size)
        check_bool(self.asymmetry, "asymmetry")
        check_bool(self.position, "position")
        if self.normalize not in _NORMALIZE:
            raise ValueError(f"normalize must be one of {_NORMALIZE}, got {self.normalize!r}")
        if isinstance(self.classifier, str) and self.classifier not in _CLASSIFIERS:
            raise ValueError(f"classifier must be one of {_CLASSIFIERS} or an estimator, got {self.classifier!r}")
        if not isinstance(self.classifier, str) and not hasattr(self.classifier, "fit"):
            raise TypeError(f"classifier must be one of {_CLASSIFIERS} or an estimator, got {type(self.classifier).__name__}")
        if isinstance(self.max_pixels, bool) or not isinstance(self.max_pixels, numbers.Integral) or self.max_pixels < 2:
            raise ValueError(f"max_pixels must be an integer >= 2, got {self.max_pixels!r}")
        if not (isinstance(self.tumour_fraction, numbers.Real) and 0 < self.tumour_fraction < 1):
            raise ValueError(f"tumour_fraction must be a number in (0, 1), got {self.tumour_fraction!r}")
        if not (isinstance(self.min_relative_size, numbers.Real) and 0 <= self.min_relative_size <= 1):
            raise ValueError(f"min_relative_size must be a number in [0, 1], got {self.min_relative_size!r}")
        if isinstance(self.C, bool) or not (isinstance(self.C, numbers.Real) and np.isfinite(self.C) and self.C > 0):
            raise ValueError(f"C must be a positive number, got {self.C!r}")
        if self.threshold is not None and not (isinstance(self.threshold, numbers.Real) and np.isfinite(self.threshold)):
            raise ValueError(f"threshold must be a finite number or None, got {self.threshold!r}")

    def _make_classifier(self):
        seed = self.random_state
        if isinstance(seed, np.random.RandomState):
            seed = seed.randint(np.iinfo(np.int32).max)
        if self.classifier == "mlp":
            clf = MLPClassifier(
                hidden_layer_sizes=tuple(self.hidden_layer_sizes), alpha=self.alpha,
                max_iter=self.max_iter, random_state=seed,
            )
        elif self.classifier == "linear-svm":
            clf = LinearSVC(C=self.C, class_weight=self.class_weight, dual=False, max_iter=self.max_iter * 5, random_state=seed)
        elif self.classifier == "logistic":
            clf = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter * 5)
        else:
            clf = clone(self.classifier)
            params = clf.get_params()
            if "random_state" in params and params["random_state"] is None and seed is not None:
                clf.set_params(random_state=seed)
            if "class_weight" in params and self.class_weight is not None:
                clf.set_params(class_weight=self.class_weight)
        return make_pipeline(StandardScaler(), clf)

    def _prepare(self, images, brain, out=None):
        """(image, brain mask, single, input channels): validated and normalised (into ``out`` if given)."""
        batch, single = check_images(images)
        N, H, W, C = batch.shape
        if brain is not None:
            b = check_masks(brain, "brain", shape=(H, W) if single else (N, H, W)).reshape(N, H, W).view(bool)
        with assume_finite():  # checked just above; everything below is computed from it
            if brain is None:
                b = brain_mask(batch)
            if self.normalize != "brain":
                x = batch
            else:
                x = normalize_brain(batch, b) if out is None else _normalize_brain_into(batch, b, out)
        return x, b, single, C

    def _has_context(self) -> bool:
        """Whether any context family is on (otherwise the features are the k x k window alone)."""
        return bool(len(self.box_sizes) or len(self.std_sizes) or self.asymmetry or self.gradient_size
                    or self.position)

    def _feature_names(self, n_channels: int) -> list:
        return pixel_feature_names(
            n_channels, self.k, mean_sizes=self.box_sizes, std_sizes=self.std_sizes, asymmetry=self.asymmetry,
            gradient_size=self.gradient_size, position=self.position,
        )

    def _features(self, x, b, rows, n_jobs=None) -> np.ndarray:
        """Feature rows of the ``rows`` pixels (:func:`fastseg.features.pixel_features`)."""
        return pixel_features(
            x, b, self.k, mask=rows, mode=self.mode, mean_sizes=self.box_sizes, std_sizes=self.std_sizes,
            asymmetry=self.asymmetry, gradient_size=self.gradient_size, position=self.position, n_jobs=n_jobs,
        )

    def _sample(self, y: np.ndarray, brain: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Class-aware sample of brain pixels, per image: (N, H, W) bool."""
        N = y.shape[0]
        sample = np.zeros(y.shape, dtype=bool)
        for i in range(N):
            inside = brain[i].ravel()
            pos = np.flatnonzero(inside & y[i].ravel())
            neg = np.flatnonzero(inside & ~y[i].ravel())
            n_total = min(self.max_pixels, pos.size + neg.size)
            n_pos = min(pos.size, int(round(self.tumour_fraction * n_total)))
            n_neg = min(neg.size, n_total - n_pos)
            n_pos = min(pos.size, n_total - n_neg)  # top up from tumour when the brain is mostly tumour
            chosen = np.concatenate([rng.choice(pos, n_pos, replace=False), rng.choice(neg, n_neg, replace=False)])
            sample[i].ravel()[chosen] = True
        return sample

    # ------------------------------------------------------------------ fit

    def fit(self, images: ArrayLike, masks: ArrayLike, brain: ArrayLike | None = None) -> "PixelSegmenter":
        """Train on brain pixels of the given slices.

        Parameters
        ----------
        images : array-like of shape (N, H, W, C) or (H, W, C)
        masks : array-like of shape (N, H, W) or (H, W)
            Ground truth (non-zero = tumour).
        brain : array-like of shape (N, H, W) or (H, W), optional
            Brain masks; None derives them with :func:`fastseg.brain_mask`.
            Background pixels are never sampled.

        Returns
        -------
        self
        """
        self._check_params()
        t0 = time.perf_counter()
        x, b, single, C = self._prepare(images, brain)
        N, H, W = b.shape
        y = check_masks(masks, "masks", shape=(H, W) if single else (N, H, W)).reshape(N, H, W).view(bool)
        k = check_k(self.k)
        if not (y & b).any() or not (~y & b).any():
            raise ValueError("masks must contain both tumour and non-tumour pixels inside the brain")
        rng = np.random.default_rng(self.random_state if not isinstance(self.random_state, np.random.RandomState)
                                    else self.random_state.randint(np.iinfo(np.int32).max))
        sample = self._sample(y, b, rng)
        X = self._features(x, b, sample)
        target = y[sample]
        self._log(f"sampled {X.shape[0]} brain pixels from {N} images ({target.mean():.0%} tumour), "
                  f"{X.shape[1]} features each")
        pipe = self._make_classifier()
        with warnings.catch_warnings():
            if isinstance(self.classifier, str):  # the built-in budgets are deliberate
                warnings.filterwarnings("ignore", category=ConvergenceWarning)
            pipe.fit(X, target)
        clf = pipe[-1]
        classes = getattr(clf, "classes_", None)
        if classes is None or len(classes) != 2:
            raise ValueError("the classifier must be binary (tumour / not tumour)")
        self.classifier_ = pipe
        self.classes_ = np.array([False, True])
        self.n_channels_ = C
        self.n_training_pixels_ = int(X.shape[0])
        self.feature_names_ = self._feature_names(C)
        is_linear = hasattr(clf, "coef_") and np.ravel(getattr(clf, "intercept_", [0])).size == 1
        if isinstance(clf, MLPClassifier) or is_linear:
            self.scorer_ = _fold_pipeline(pipe)
        else:
            self.scorer_ = None
        if isinstance(clf, MLPClassifier) or (self.scorer_ is None and hasattr(clf, "predict_proba")) \
                or isinstance(clf, LogisticRegression):
            self.score_kind_ = "proba"
        else:
            self.score_kind_ = "decision"
        default = 0.5 if self.score_kind_ == "proba" else 0.0
        self.threshold_ = float(default if self.threshold is None else self.threshold)
        self._log(f"fitted {type(clf).__name__} in {time.perf_counter() - t0:.1f} s")
        return self

    # ------------------------------------------------------------------ predict

    def _scores(self, x: np.ndarray, b: np.ndarray, n_jobs: int = 1) -> np.ndarray:
        """(N, H, W) float32 scores of the kind ``score_kind_``; 0 outside the brain.

        Called inside ``assume_finite()``: ``x`` is computed from checked images.
        With context features, the feature rows of the brain pixels are made by
        the pixel-feature kernel and scored in place (MLP: fastseg's tiled row
        kernel; linear: one product).  With the window alone, the fused kernels
        score straight from the image."""
        if self.scorer_ is not None and not self._has_context():
            # window features only: the fused kernels score straight from the image (no feature rows)
            kind, arrays = self.scorer_
            out = self._score_buffer(x.shape[:3])
            if kind == "linear":
                s = linear_scores(x, (arrays["coef"], arrays["intercept"]), self.k, mode=self.mode, mask=b,
                                  n_jobs=n_jobs, out=out)
                if self.score_kind_ == "proba":  # logistic regression
                    s = np.where(b, 1.0 / (1.0 + np.exp(-s, dtype=np.float32)), 0).astype(np.float32)
                return s
            weights = MLPWeights(arrays["coefs"], arrays["intercepts"], arrays["activation"])
            return mlp_scores(x, weights, self.k, mode=self.mode, mask=b, n_jobs=n_jobs, out=out)
        if self.scorer_ is None:  # another estimator: the chunk's rows at once, through scikit-learn
            out = np.zeros(b.shape, dtype=np.float32)
            X = self._features(x, b, b, n_jobs)
            if X.shape[0]:
                clf = self.classifier_
                out[b.view(bool)] = clf.predict_proba(X)[:, 1] if self.score_kind_ == "proba" else clf.decision_function(X)
            return out
        # One image at a time through a buffer this thread reuses: the rows of one slice (3.5 MB) stay in
        # cache between the feature kernel and the scorer, and no fresh memory is touched.
        kind, arrays = self.scorer_
        if kind != "linear":
            weights = MLPWeights(arrays["coefs"], arrays["intercepts"], arrays["activation"])
        N, H, W, _ = x.shape
        F = len(self.feature_names_)
        spec = (self.k, self.mode, np.asarray(self.box_sizes, dtype=np.intp),
                np.asarray(self.std_sizes, dtype=np.intp), bool(self.asymmetry), _ASYMMETRY_BOX,
                int(self.gradient_size), bool(self.position))
        buf = thread_buffer(("rows", H * W * F), lambda: np.empty(H * W * F, dtype=np.float32))
        out = self._score_buffer((N, H, W))
        out[~b.view(bool)] = 0  # the others are all written below
        u8 = b.view(np.uint8)
        for i in range(N):
            inside = b[i].view(bool)
            X = _context_rows(x[i:i + 1], u8[i:i + 1], u8[i:i + 1], spec, F, out=buf)
            if not X.shape[0]:
                continue
            if kind == "linear":
                # one pixel per row of a one-column "image": the kernel's per-pixel sums do not depend on
                # the batch (a BLAS matrix-vector product's blocking does)
                s = linear_scores(X.reshape(1, X.shape[0], 1, F), (arrays["coef"], arrays["intercept"]), 1).ravel()
                if self.score_kind_ == "proba":  # logistic regression
                    s = 1.0 / (1.0 + np.exp(-s, dtype=np.float32))
            else:  # the image's rows are one segment: tiles never straddle two images
                s = mlp_row_scores(X, weights, n_jobs)
            out[i][inside] = s
        return out

    @staticmethod
    def _score_buffer(shape: tuple) -> np.ndarray:
        """A (N, H, W) float32 buffer of this thread's, for a chunk's scores (N <= _CHUNK, except for
        direct calls): each chunk's scores are consumed before the thread scores the next."""
        n, H, W = shape
        size = max(n, _CHUNK)
        return thread_buffer(("scores", size, H, W), lambda: np.empty((size, H, W), dtype=np.float32))[:n]

    def _check_batch(self, images, brain) -> tuple:
        """(batch, brain or None, single): checked images (N, H, W, C) and masks (N, H, W)."""
        batch, single = check_images(images)
        N, H, W, C = batch.shape
        if C != self.n_channels_:
            raise ValueError(f"images have {C} channels but the segmenter was fitted on {self.n_channels_}")
        check_k_fits(self.k, self.mode, H, W)
        if brain is not None:
            brain = check_masks(brain, "brain", shape=(H, W) if single else (N, H, W)).reshape(N, H, W)
        return batch, brain, single

    def _by_chunks(self, batch, brain, emit) -> None:
        """Normalise and score a checked batch ``_CHUNK`` slices at a time, handing each chunk's
        (n, H, W) scores and brain masks to ``emit(start, stop, scores, brain)`` in the thread that
        made them.

        Threads share the chunks, each running the whole pipeline on its own (every kernel releases
        the GIL, and nothing waits for a serial step).  A slice's result does not depend on its chunk,
        so any n_jobs gives the same results.  The normalised chunk lives in a buffer each thread
        reuses: fresh memory costs a page fault per 4 KB on first touch."""
        N, H, W, C = batch.shape
        n_jobs = check_n_jobs(self.n_jobs)  # resolved once: with n_jobs > 1 it asks threadpoolctl
        chunk = _CHUNK if N >= n_jobs * _CHUNK else max(1, -(-N // n_jobs))
        starts = list(range(0, N, chunk))
        inner = n_jobs if len(starts) == 1 else 1  # one chunk (one image): the kernels share it
        shape = (chunk, H, W, C)

        def work(first: int, last: int) -> None:
            with assume_finite():  # batch checked above (the flag is per thread)
                for i in range(first, last):
                    start, stop = starts[i], min(starts[i] + chunk, N)
                    x = thread_buffer(("normalised",) + shape, lambda: np.empty(shape, dtype=np.float32))
                    x, b, _, _ = self._prepare(batch[start:stop], None if brain is None else brain[start:stop],
                                               out=x[:stop - start])
                    emit(start, stop, self._scores(x, b, inner), b)
                    if self.verbose and N > chunk:
                        self._log(f"segmented images {start}-{stop - 1} of {N}")

        run_chunks(work, len(starts), n_jobs)

    def _post_process(self, masks: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Remove small and relatively small components, then fill holes (one kernel pass per slice),
        into ``out`` (a new array if None) in the calling thread."""
        out = np.empty_like(masks) if out is None else out
        if self.min_size > 0 or self.min_relative_size > 0 or self.fill_holes:
            _clean_into(masks, out, check_min_size(self.min_size),
                        check_fraction(self.min_relative_size, "min_relative_size"),
                        check_connectivity(self.connectivity), check_bool(self.fill_holes, "fill_holes"))
        else:
            out[...] = masks
        return out

    def score_maps(self, images: ArrayLike, brain: ArrayLike | None = None) -> NDArray[np.float32]:
        """Per-pixel scores: probabilities or decision values (see ``score_kind_``), 0 outside the brain."""
        check_is_fitted(self, "score_kind_")
        batch, brain, single = self._check_batch(images, brain)
        scores = np.empty(batch.shape[:3], dtype=np.float32)

        def emit(start, stop, s, b):
            scores[start:stop] = s

        self._by_chunks(batch, brain, emit)
        return scores[0] if single else scores

    def predict_proba(self, images: ArrayLike, brain: ArrayLike | None = None) -> NDArray[np.float32]:
        """Tumour probability of every pixel, shape (N, H, W) or (H, W); 0 outside the brain.

        Available when the classifier gives probabilities (``score_kind_ == "proba"``).
        """
        check_is_fitted(self, "score_kind_")
        if self.score_kind_ != "proba":
            raise AttributeError(
                "predict_proba is not available: this segmenter's classifier gives decision values; "
                "use decision_function"
            )
        return self.score_maps(images, brain)

    def decision_function(self, images: ArrayLike, brain: ArrayLike | None = None) -> NDArray[np.float32]:
        """Per-pixel decision values (probabilities for probabilistic classifiers), 0 outside the brain."""
        return self.score_maps(images, brain)

    def predict(self, images: ArrayLike, brain: ArrayLike | None = None) -> NDArray[np.bool_]:
        """Tumour masks: score > threshold inside the brain, then small components removed and holes filled.

        Parameters
        ----------
        images : array-like of shape (N, H, W, C) or (H, W, C)
        brain : array-like of shape (N, H, W) or (H, W), optional
            Brain masks; None derives them with :func:`fastseg.brain_mask`.

        Returns
        -------
        ndarray of shape (N, H, W) or (H, W), dtype=bool
        """
        check_is_fitted(self, "score_kind_")
        t0 = time.perf_counter()
        batch, brain, single = self._check_batch(images, brain)
        masks = np.empty(batch.shape[:3], dtype=bool)

        def emit(start, stop, s, b):
            # threshold inside the brain, then each slice's clean-up, straight into the output
            size = (max(len(s), _CHUNK),) + s.shape[1:]
            m = thread_buffer(("masks",) + size, lambda: np.empty(size, dtype=bool))[:len(s)]
            np.greater(s, self.threshold_, out=m)
            m &= b.view(bool)
            self._post_process(m, masks[start:stop])

        self._by_chunks(batch, brain, emit)
        self._log(f"segmented {len(batch)} images in {time.perf_counter() - t0:.2f} s")
        return masks[0] if single else masks

    def score(self, images, masks, brain=None) -> float:
        """Mean per-slice Dice of :meth:`predict` against ``masks`` (both-empty slices count 1)."""
        from .metrics import segmentation_report

        return segmentation_report(masks, self.predict(images, brain)).mean_slice["dice"]
