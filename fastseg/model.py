"""The fitted model: what :class:`fastseg.PixelSegmenter` predicts with, and what a model file holds.

A :class:`PixelModel` is built by ``PixelSegmenter.fit`` and by :func:`fastseg.load`
alike, validated once when it is built, and immutable afterwards: the feature
specification (:class:`~fastseg.features.FeatureSpec`), the network
(:class:`~fastseg.scoring.Network`, or another fitted estimator), the
post-processing (:class:`PostProcessing`), the brain normalisation, the threshold
and the channel count.  The segmenter, the ``fastseg`` command, ``fastseg.dask``
and model files all hold this one object.  It never imports scikit-learn, so the
command's predict path stays fast to start.

Predicting
----------
Each public method validates its input once and then runs private, unchecked
steps: brain masks (:func:`fastseg.brain_mask` unless given), per-slice brain
normalisation, the feature rows of the brain pixels scored tile by tile by the
network (never the whole feature matrix), the threshold, and the clean-up of
each slice.  Slices go 16 at a time, each chunk end to end in one thread.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._parallel import run_chunks, thread_buffer
from ._validation import (
    check_bool,
    check_connectivity,
    check_fraction,
    check_images,
    check_k_fits,
    check_masks,
    check_min_size,
    check_n_jobs,
    non_finite_error,
)
from .components import _clean_into
from .features import FeatureSpec, _pixel_rows, _pixfeat
from .preprocessing import _MIN_STD, _brain_mask, _normalize_brain_into
from .scoring import (
    _ROWS_TILE,
    OUTPUT_CODES,
    Network,
    _linear_scores,
    _logistic_cut,
    _mlp_scores,
    _network_row_scores,
    _pad_map,
    _single_threaded_blas,
)

__all__ = ["PixelModel", "PostProcessing"]

#: Slices prepared and scored together (a thread's unit of work): the normalised chunk (16 x 240 x
#: 240 x 4 float32 = 15 MB) stays bounded whatever the batch size, and each thread reuses its buffers
#: from chunk to chunk.
_CHUNK = 16

#: What the threshold applies to: the probability, or the decision value of a linear SVM.
SCORE_KINDS = ("proba", "decision")

NORMALIZATIONS = ("brain", "none")


#: The segmenter's parameters that its model's FeatureSpec and PostProcessing are built from.
_FEATURE_PARAMS = ("k", "mode", "mean_sizes", "std_sizes", "asymmetry", "gradient_size", "position")
_POSTPROCESSING_PARAMS = ("min_size", "min_relative_size", "fill_holes", "connectivity")


def _parts(params: dict, n_channels: int) -> tuple:
    """(FeatureSpec, PostProcessing) of a segmenter's parameters (``fit`` and model files build them so)."""
    return (FeatureSpec(n_channels, **{name: params[name] for name in _FEATURE_PARAMS}),
            PostProcessing(**{name: params[name] for name in _POSTPROCESSING_PARAMS}))


def _part_params(model: "PixelModel") -> dict:
    """The segmenter's parameters that ``model`` predicts with: the inverse of :func:`_parts`, and
    ``normalize``."""
    return {**{name: getattr(model.features, name) for name in _FEATURE_PARAMS},
            **{name: getattr(model.postprocessing, name) for name in _POSTPROCESSING_PARAMS},
            "normalize": model.normalize}


def _chunk_buffer(name: str, shape: tuple, dtype) -> np.ndarray:
    """This thread's buffer ``name`` for one chunk of ``shape[0]`` slices: allocated once for at least
    ``_CHUNK`` slices and reused (fresh memory costs a page fault per 4 KB on first touch); each chunk's
    contents are consumed before the thread starts the next."""
    full = (max(shape[0], _CHUNK),) + tuple(shape[1:])
    key = (name, np.dtype(dtype).str) + full
    return thread_buffer(key, lambda: np.empty(full, dtype=dtype))[:shape[0]]


@dataclass(frozen=True)
class PostProcessing:
    """The clean-up of each predicted mask: small components removed, then holes filled.

    Parameters
    ----------
    min_size : int, default=50
        Components smaller than this (pixels) are removed.
    min_relative_size : float in [0, 1], default=0.2
        Components smaller than this fraction of the slice's largest are removed.
    fill_holes : bool, default=True
        Fill the holes of the masks.
    connectivity : {1, 2}, default=2
        Connectivity of the components.

    Examples
    --------
    >>> import numpy as np
    >>> from fastseg.model import PostProcessing
    >>> masks = np.zeros((1, 8, 8), bool); masks[0, 1:6, 1:6] = True; masks[0, 3, 3] = False
    >>> PostProcessing(min_size=2).apply(masks)[0, 3, 3]      # the hole is filled
    np.True_
    """

    min_size: int = 50
    min_relative_size: float = 0.2
    fill_holes: bool = True
    connectivity: int = 2

    def __post_init__(self):
        object.__setattr__(self, "min_size", check_min_size(self.min_size))
        object.__setattr__(self, "min_relative_size", check_fraction(self.min_relative_size, "min_relative_size"))
        object.__setattr__(self, "fill_holes", check_bool(self.fill_holes, "fill_holes"))
        object.__setattr__(self, "connectivity", check_connectivity(self.connectivity))

    def apply(self, masks: ArrayLike) -> NDArray[np.bool_]:
        """The cleaned masks, a new (N, H, W) or (H, W) bool array."""
        m = check_masks(masks, "masks").view(bool)
        out = self._apply(m.reshape((-1,) + m.shape[-2:]))
        return out.reshape(m.shape)

    def _apply(self, masks: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Clean (N, H, W) bool ``masks`` into ``out`` (a new array if None) in the calling thread."""
        out = np.empty_like(masks) if out is None else out
        if self.min_size > 0 or self.min_relative_size > 0 or self.fill_holes:
            _clean_into(masks, out, self.min_size, self.min_relative_size, self.connectivity, self.fill_holes)
        else:
            out[...] = masks
        return out


@dataclass(frozen=True, eq=False)
class PixelModel:
    """A fitted per-pixel segmenter, immutable: features, network, threshold, post-processing.

    Built by :meth:`fastseg.PixelSegmenter.fit` (``segmenter.model_``) and by
    :func:`fastseg.load`; every field is validated when it is built.

    Parameters
    ----------
    features : FeatureSpec
        The feature rows the network reads (their channel count is the model's).
    network : Network or None
        The folded weights of a linear model or MLP, scored by fastseg's kernels;
        None when ``estimator`` scores instead.
    threshold : float
        The threshold on the score ``score_kind`` names.
    score_kind : {"proba", "decision"}
        What the threshold applies to: the probability (MLP, logistic
        regression, estimators with ``predict_proba``) or the decision value.
    postprocessing : PostProcessing
    normalize : {"brain", "none"}, default="brain"
        Standardise each slice's channels over its brain pixels first.
    estimator : object, optional
        Any other fitted binary classifier (``predict_proba`` or
        ``decision_function`` over the feature rows); such a model cannot be saved.
    n_training_pixels : int, default=0
        Pixels the classifier was trained on (information only).

    Examples
    --------
    >>> import numpy as np
    >>> from fastseg.features import FeatureSpec
    >>> from fastseg.model import PixelModel, PostProcessing
    >>> from fastseg.scoring import Network
    >>> spec = FeatureSpec(1, k=1, std_sizes=(), asymmetry=False, gradient_size=0, position=False)
    >>> model = PixelModel(spec, Network.linear([1.0], -0.5), threshold=0.0, score_kind="decision",
    ...                    postprocessing=PostProcessing(min_size=0, min_relative_size=0, fill_holes=False),
    ...                    normalize="none")
    >>> image = np.array([[[0.0], [1.0]]])          # one 1 x 2 slice, one channel
    >>> model.decision_function(image, brain=np.ones((1, 2), bool))
    array([[-0.5,  0.5]], dtype=float32)
    >>> model.predict(image, brain=np.ones((1, 2), bool))
    array([[False,  True]])
    """

    features: FeatureSpec
    network: Network | None
    threshold: float
    score_kind: str
    postprocessing: PostProcessing = field(default_factory=PostProcessing)
    normalize: str = "brain"
    estimator: object = None
    n_training_pixels: int = 0

    def __post_init__(self):
        if not isinstance(self.features, FeatureSpec):
            raise TypeError(f"features must be a FeatureSpec, got {type(self.features).__name__}")
        if not isinstance(self.postprocessing, PostProcessing):
            raise TypeError(f"postprocessing must be a PostProcessing, got {type(self.postprocessing).__name__}")
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {self.normalize!r}")
        if self.score_kind not in SCORE_KINDS:
            raise ValueError(f"score_kind must be one of {SCORE_KINDS}, got {self.score_kind!r}")
        threshold = self.threshold
        if isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, (int, float, np.floating, np.integer)) \
                or not np.isfinite(threshold):
            raise ValueError(f"threshold must be a finite number, got {threshold!r}")
        object.__setattr__(self, "threshold", float(threshold))
        if (self.network is None) == (self.estimator is None):
            raise ValueError("a PixelModel needs exactly one of network and estimator")
        if self.network is not None:
            if not isinstance(self.network, Network):
                raise TypeError(f"network must be a Network, got {type(self.network).__name__}")
            if self.network.n_inputs != self.features.n_features or self.network.sizes[-1] != 1:
                raise ValueError(f"network must take the {self.features.n_features} feature columns and give one "
                                 f"output, got layer sizes {self.network.sizes.tolist()}")
            if not (np.isfinite(self.network.weights).all() and np.isfinite(self.network.biases).all()):
                raise ValueError("network weights must all be finite")
            if self.score_kind == "proba" and self.features.has_context:
                # probabilities above the threshold are the logits at or above this cut: no exp per pixel
                object.__setattr__(self, "_cut", _logistic_cut(self.threshold))
        elif self.score_kind == "proba" and not hasattr(self.estimator, "predict_proba"):
            raise ValueError("score_kind 'proba' needs an estimator with predict_proba")
        object.__setattr__(self, "n_training_pixels", int(self.n_training_pixels))

    _cut = None  # see __post_init__

    # ------------------------------------------------------------------ what it is

    @property
    def n_channels(self) -> int:
        """Channels of the images the model takes."""
        return self.features.n_channels

    @property
    def feature_names(self) -> list:
        """The network's input columns (:func:`fastseg.features.pixel_feature_names`)."""
        return list(self.features.names)

    @property
    def has_proba(self) -> bool:
        """Whether the model gives probabilities (:meth:`predict_proba`)."""
        return self.score_kind == "proba"

    @property
    def has_decision(self) -> bool:
        """Whether the model gives the output unit's input (:meth:`decision_function`)."""
        return self.network is not None or hasattr(self.estimator, "decision_function")

    # ------------------------------------------------------------------ public: validate, then the twins

    def predict(self, images: ArrayLike, brain: ArrayLike | None = None, *, within: ArrayLike | None = None,
                n_jobs: int | None = None, verbose: int = 0) -> NDArray[np.bool_]:
        """Tumour masks: score above the threshold inside the brain, then the post-processing.

        Parameters
        ----------
        images : array-like of shape (N, H, W, C) or (H, W, C)
        brain : array-like of shape (N, H, W) or (H, W), optional
            Brain masks; None derives them with :func:`fastseg.brain_mask`.
        within : array-like of shape (N, H, W) or (H, W), optional
            Score only these pixels (of the brain); the others are False.  The normalisation and
            the context features still see the whole brain, so a pixel's score is its score
            without ``within`` (up to float32 rounding: the network runs over tiles of the scored
            pixels): the second stage of a cascade scores only the first stage's region.
        n_jobs : int, optional
            Threads over chunks of slices (None: 1, -1: all cores); the results do not depend on it.
        verbose : int, default=0
            Print progress to stderr.

        Returns
        -------
        ndarray of shape (N, H, W) or (H, W), dtype=bool
        """
        batch, brain, within, single, n_jobs = self._check_input(images, brain, n_jobs, within)
        t0 = time.perf_counter()
        masks = self._predict(batch, brain, n_jobs, verbose, within)
        if verbose:
            _log(f"segmented {len(batch)} images in {time.perf_counter() - t0:.2f} s")
        return masks[0] if single else masks

    def predict_proba(self, images: ArrayLike, brain: ArrayLike | None = None, *, within: ArrayLike | None = None,
                      n_jobs: int | None = None) -> NDArray[np.float32]:
        """Tumour probability of every pixel, shape (N, H, W) or (H, W); 0 outside the brain (and
        outside ``within``, as :meth:`predict` takes it).

        Raises ``AttributeError`` for a model without probabilities (a linear SVM).
        """
        if not self.has_proba:
            raise AttributeError("predict_proba is not available: this model's classifier gives decision "
                                 "values; use decision_function")
        return self._public_scores(images, brain, n_jobs, "proba", within)

    def decision_function(self, images: ArrayLike, brain: ArrayLike | None = None, *,
                          within: ArrayLike | None = None, n_jobs: int | None = None) -> NDArray[np.float32]:
        """The output unit's input at every pixel, shape (N, H, W) or (H, W); 0 outside the brain (and
        outside ``within``).

        The logit of an MLP or a logistic regression, the margin of a linear SVM
        (scikit-learn's ``decision_function``).
        """
        if not self.has_decision:
            raise AttributeError("decision_function is not available: this model's estimator has none; "
                                 "use predict_proba")
        return self._public_scores(images, brain, n_jobs, "decision", within)

    def score_maps(self, images: ArrayLike, brain: ArrayLike | None = None, *, within: ArrayLike | None = None,
                   n_jobs: int | None = None) -> NDArray[np.float32]:
        """The scores the threshold applies to (``score_kind``): probabilities or decision values."""
        return self._public_scores(images, brain, n_jobs, self.score_kind, within)

    def _public_scores(self, images, brain, n_jobs, output: str, within=None) -> np.ndarray:
        batch, brain, within, single, n_jobs = self._check_input(images, brain, n_jobs, within)
        scores = self._score_maps(batch, brain, n_jobs, output, within)
        return scores[0] if single else scores

    def _check_input(self, images, brain, n_jobs, within=None) -> tuple:
        """(batch, brain or None, within or None, single, n_jobs): the public methods' one validation.
        With brain normalisation, finiteness is checked by the normalisation kernel as it reads each
        slice."""
        batch, single = check_images(images, finite=self.normalize != "brain")
        N, H, W, C = batch.shape
        if C != self.n_channels:
            raise ValueError(f"images have {C} channels but the model was fitted on {self.n_channels}")
        check_k_fits(self.features.k, self.features.mode, H, W)
        shape = (H, W) if single else (N, H, W)
        if brain is not None:
            brain = check_masks(brain, "brain", shape=shape).reshape(N, H, W).view(bool)
        if within is not None:
            within = check_masks(within, "within", shape=shape).reshape(N, H, W).view(bool)
        return batch, brain, within, single, check_n_jobs(n_jobs)

    # ------------------------------------------------------------------ private twins (checked input)

    def _predict(self, batch: np.ndarray, brain: np.ndarray | None, n_jobs: int, verbose: int = 0,
                 within: np.ndarray | None = None) -> np.ndarray:
        """(N, H, W) bool masks of a checked batch."""
        masks = np.empty(batch.shape[:3], dtype=bool)
        cut = self._cut
        output = "decision" if cut is not None else self.score_kind

        def emit(start, stop, s, b):
            # threshold inside the brain, then each slice's clean-up, straight into the output
            m = _chunk_buffer("masks", s.shape, bool)
            if cut is None:
                np.greater(s, self.threshold, out=m)
            else:
                np.greater_equal(s, cut, out=m)
            m &= b
            self.postprocessing._apply(m, masks[start:stop])

        self._by_chunks(batch, brain, n_jobs, output, emit, verbose, within)
        return masks

    def _score_maps(self, batch: np.ndarray, brain: np.ndarray | None, n_jobs: int, output: str,
                    within: np.ndarray | None = None) -> np.ndarray:
        """(N, H, W) float32 scores of a checked batch: ``output`` "proba" or "decision"."""
        scores = np.empty(batch.shape[:3], dtype=np.float32)

        def emit(start, stop, s, b):
            scores[start:stop] = s

        self._by_chunks(batch, brain, n_jobs, output, emit, within=within)
        return scores

    def _by_chunks(self, batch, brain, n_jobs: int, output: str, emit, verbose: int = 0, within=None) -> None:
        """Normalise and score a checked batch ``_CHUNK`` slices at a time, handing each chunk's
        (n, H, W) scores and bool masks of the scored pixels (the brain, or its part ``within``) to
        ``emit(start, stop, scores, scored)`` in the thread that made them.

        Threads share the chunks, each running the whole pipeline on its own (every kernel releases
        the GIL, and nothing waits for a serial step).  A slice's result does not depend on its
        chunk, so any n_jobs gives the same results.  Raises the images' ValueError if a slice holds
        a NaN or an infinite value (found by the normalisation, which reads every value)."""
        N, H, W, C = batch.shape
        chunk = _CHUNK if N >= n_jobs * _CHUNK else max(1, -(-N // n_jobs))
        starts = list(range(0, N, chunk))
        inner = n_jobs if len(starts) == 1 else 1  # one chunk (one image): the kernels share it
        # the fused scorer normalises each slice itself, into a one-slice buffer that stays in cache
        fused = self.normalize == "brain" and inner == 1 and self._scores_rows()

        def work(first: int, last: int) -> bool:
            for i in range(first, last):
                start, stop = starts[i], min(starts[i] + chunk, N)
                x = batch[start:stop]
                b = _brain_mask(x) if brain is None else brain[start:stop]
                if self.normalize == "brain" and not fused:
                    out = _chunk_buffer("normalized", x.shape, np.float32)
                    if not _normalize_brain_into(x, b, out):
                        return False
                    x = out
                rows = b if within is None else b & within[start:stop]
                s = self._scores(x, b, inner, output, raw=fused, rows=rows)
                if s is None:
                    return False
                emit(start, stop, s, rows)
                if verbose and N > chunk:
                    _log(f"segmented images {start}-{stop - 1} of {N}")
            return True

        if not all(run_chunks(work, len(starts), n_jobs)):
            raise non_finite_error(batch)

    def _scores_rows(self) -> bool:
        """Whether the scores come from the context feature rows scored by the network kernels (the
        path that the fused normalisation and the logit cut serve)."""
        return self.network is not None and self.features.has_context

    def _scores(self, x: np.ndarray, b: np.ndarray, n_jobs: int, output: str, raw: bool = False, rows=None):
        """(n, H, W) float32 scores of one chunk at the pixels ``rows`` (default: the brain ``b``; 0
        elsewhere): the probability or the output unit's input, as ``output`` says.  ``x`` is
        normalised, or with ``raw`` (the fused path) the raw slices, which the kernel normalises one by
        one; None if the kernel found a non-finite value."""
        spec, network = self.features, self.network
        N, H, W, C = x.shape
        rows = b if rows is None else rows
        u8, r8 = b.view(np.uint8), rows.view(np.uint8)
        if network is None:  # another estimator: the chunk's rows at once
            out = np.zeros(b.shape, dtype=np.float32)
            X = _pixel_rows(x, u8, r8, spec, n_jobs)
            if X.shape[0]:
                est = self.estimator
                out[rows] = est.predict_proba(X)[:, 1] if output == "proba" else est.decision_function(X)
            return out
        out = _chunk_buffer("scores", (N, H, W), np.float32)
        if not spec.has_context:  # the window alone: the fused window kernels score straight from the image
            r = spec.k // 2
            rowmap, colmap = _pad_map(H, r, spec.mode), _pad_map(W, r, spec.mode)
            mask = r8
            if network.kind == "mlp" and output == "proba":
                _mlp_scores(x, network, spec.k, rowmap, colmap, mask, 0.0, n_jobs, out)
                return out
            if network.kind == "linear":
                weights = network.weights.reshape(spec.k, spec.k, C)
                _linear_scores(x, weights, network.biases[0], rowmap, colmap, mask, 0.0, n_jobs, out)
                if output == "proba":  # logistic regression
                    return np.where(rows, 1.0 / (1.0 + np.exp(-out, dtype=np.float32)), 0).astype(np.float32)
                return out
            # an MLP's logits over the window: through the row kernels below
        code = OUTPUT_CODES[output]
        F = spec.n_features
        # BLAS capped to one thread once for the chunk: restoring OpenBLAS's thread count after every
        # slice woke its spinning threads, which competed with ours
        with _single_threaded_blas():
            if n_jobs == 1:
                # the whole chunk in one kernel call: rows, network and scatter per image, without
                # returning to Python between images; rows are scored as soon as a tile is full
                n_rows = min(H * W, _ROWS_TILE + W - 1)
                rowbuf = thread_buffer(("tile_rows", n_rows, F), lambda: np.empty((n_rows, F), dtype=np.float32))
                size = _pixfeat.scratch_size(H, W, C, F)
                scratch = thread_buffer(("pixel_context", size), lambda: np.empty(size, dtype=np.float64))
                act = thread_buffer(("mlp_act", _ROWS_TILE * network.widest),
                                    lambda: np.empty((2, _ROWS_TILE * network.widest), dtype=np.float32))
                normalized = None
                if raw:  # each slice normalised into a buffer that stays in cache for the row kernel
                    normalized = thread_buffer(("normalized slice", H, W, C), lambda: np.empty((H, W, C), np.float32))
                bad = _pixfeat.pixel_network_scores(
                    x, weights=network.weights, biases=network.biases, sizes=network.sizes,
                    activation=network.activation_code, output=code, scores=out, rowbuf=rowbuf, scratch=scratch,
                    act=act, tile_rows=_ROWS_TILE, n0=0, n1=N, normalized=normalized, min_std=_MIN_STD,
                    **spec._kernel_plan(u8, r8),
                )
                return None if bad >= 0 else out
            # one chunk shared by n_jobs threads: each image's rows, then their tiles across the threads
            out[~rows] = 0  # the others are all written below
            buf = thread_buffer(("rows", H * W * F), lambda: np.empty(H * W * F, dtype=np.float32))
            for i in range(N):
                X = _pixel_rows(x[i:i + 1], u8[i:i + 1], r8[i:i + 1], spec, 1, out=buf)
                if X.shape[0]:  # the image's rows are one segment: tiles never straddle two images
                    out[i][rows[i]] = _network_row_scores(X, network, code, n_jobs)
        return out


def _log(message: str) -> None:
    print(f"[fastseg] {message}", file=sys.stderr, flush=True)
