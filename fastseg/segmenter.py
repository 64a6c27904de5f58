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

import time
import warnings

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted

from ._predictor import _Predictor
from ._validation import check_masks

__all__ = ["PixelSegmenter"]

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


class PixelSegmenter(_Predictor, ClassifierMixin, BaseEstimator):
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

    def _check_fitted(self) -> None:
        check_is_fitted(self, "score_kind_")

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

    def score(self, images, masks, brain=None) -> float:
        """Mean per-slice Dice of :meth:`predict` against ``masks`` (both-empty slices count 1)."""
        from .metrics import segmentation_report

        return segmentation_report(masks, self.predict(images, brain)).mean_slice["dice"]
