"""The predicting half of :class:`fastseg.PixelSegmenter`, without scikit-learn.

``_Predictor`` holds everything ``predict`` needs (normalisation, pixel
features, the scoring kernels, post-processing), reading the segmenter's
parameters and fitted attributes.  ``PixelSegmenter`` derives from it (adding
scikit-learn's estimator interface and ``fit``); ``_LoadedPredictor`` is the same
predict path rebuilt from a model file (:func:`fastseg.persistence._load_predictor`)
for the ``fastseg`` command, which so never imports scikit-learn (about 1 s of
imports, half the time a whole BraTS case takes).
"""
from __future__ import annotations

import numbers
import sys
import time

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._parallel import run_chunks, thread_buffer
from ._validation import (
    NonFiniteError,
    assume_finite,
    check_bool,
    check_connectivity,
    check_fraction,
    check_images,
    check_k,
    check_k_fits,
    check_masks,
    check_min_size,
    check_mode,
    check_n_jobs,
    non_finite_error,
)
from .components import _clean_into
from .features import (
    ASYMMETRY_BOX,
    _pixfeat,
    _check_box_sizes,
    _check_gradient_size,
    _context_plan,
    _context_rows,
    _row_spec,
    pixel_feature_names,
    pixel_features,
)
from .preprocessing import _MIN_STD, _normalize_brain_into, brain_mask, normalize_brain
from .scoring import (
    _ROWS_TILE,
    OUTPUT_CODES,
    _logistic_cut,
    MLPWeights,
    _network_row_scores,
    _single_threaded_blas,
    linear_arrays,
    linear_scores,
    mlp_arrays,
    mlp_scores,
)

_CLASSIFIERS = ("mlp", "linear-svm", "logistic")

#: Slices prepared and scored together in predict (a thread's unit of work): the
#: normalised chunk (16 x 240 x 240 x 4 float32 = 15 MB) stays bounded whatever the
#: batch size, and each thread reuses its buffers from chunk to chunk.
_CHUNK = 16

_NORMALIZE = ("brain", "none")


def _chunk_buffer(name: str, shape: tuple, dtype) -> np.ndarray:
    """This thread's buffer ``name`` for one chunk of ``shape[0]`` slices: allocated once for at least
    ``_CHUNK`` slices and reused (fresh memory costs a page fault per 4 KB on first touch); each chunk's
    contents are consumed before the thread starts the next."""
    full = (max(shape[0], _CHUNK),) + tuple(shape[1:])
    key = (name, np.dtype(dtype).str) + full
    return thread_buffer(key, lambda: np.empty(full, dtype=dtype))[:shape[0]]


class _Predictor:
    """Predict, score maps and their helpers, from the segmenter's parameters and fitted attributes
    (``scorer_`` or ``classifier_``, ``score_kind_``, ``threshold_``, ``n_channels_``, ``feature_names_``)."""

    def _check_fitted(self) -> None:
        """Raise if not fitted (``PixelSegmenter`` raises scikit-learn's ``NotFittedError``)."""
        if not hasattr(self, "score_kind_"):
            raise AttributeError(f"this {type(self).__name__} is not fitted")

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


    def _prepare(self, images, brain, out=None, normalise=True):
        """(image, brain mask, single, input channels): validated and normalised (into ``out`` if given;
        not at all if not ``normalise``: the fused scorer normalises each slice itself)."""
        batch, single = check_images(images)
        N, H, W, C = batch.shape
        if brain is not None:
            b = check_masks(brain, "brain", shape=(H, W) if single else (N, H, W)).reshape(N, H, W).view(bool)
        with assume_finite():  # checked just above; everything below is computed from it
            if brain is None:
                b = brain_mask(batch)
            if self.normalize != "brain" or not normalise:
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


    def _scores_context_rows(self) -> bool:
        """Whether ``_scores`` makes the context feature rows and scores them with fastseg's network
        kernels (an MLP, or a linear model as the network without hidden layers): the path that
        normalisation fused into the kernel and the logit cut apply to."""
        return self.scorer_ is not None and self._has_context()


    def _fuses_normalization(self, n_jobs: int) -> bool:
        """Whether ``_scores`` takes the raw slices and normalises them itself (the fused kernel, one
        thread per chunk, with brain normalisation)."""
        return self.normalize == "brain" and n_jobs == 1 and self._scores_context_rows()


    def _mask_cut(self) -> float | None:
        """For predict: the cut on the output unit's input (the logit) that gives the same masks as
        ``probability > threshold_`` (:func:`fastseg.scoring._logistic_cut`), when the scores come from
        the network kernels over context features and are probabilities; else None."""
        if self.score_kind_ != "proba" or not self._scores_context_rows():
            return None
        return _logistic_cut(float(self.threshold_))


    def _scores(self, x: np.ndarray, b: np.ndarray, n_jobs: int = 1, logits: bool = False,
                raw: bool = False) -> np.ndarray:
        """(N, H, W) float32 scores of the kind ``score_kind_``; 0 outside the brain.  With ``logits``
        (only where ``_mask_cut`` is not None), the output unit's input instead of its probability.

        Called inside ``assume_finite()``: ``x`` is computed from checked images; with ``raw``
        (only where ``_fuses_normalization(n_jobs)``), ``x`` is the raw slices, which the kernel
        normalises one by one (and checks for NaN and infinities).
        With context features, the feature rows of the brain pixels are made by
        the pixel-feature kernel and scored in place (MLP: fastseg's tiled row
        kernel; linear: one product).  With the window alone, the fused kernels
        score straight from the image."""
        if self.scorer_ is not None and not self._has_context():
            # window features only: the fused kernels score straight from the image (no feature rows)
            kind, arrays = self.scorer_
            out = _chunk_buffer("scores", x.shape[:3], np.float32)
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
        # Through buffers this thread reuses (no fresh memory is touched).  A linear model is scored as the
        # network without hidden layers, by the same kernels.
        kind, arrays = self.scorer_
        if kind == "linear":
            network = linear_arrays(arrays["coef"], arrays["intercept"])
        else:
            network = mlp_arrays(MLPWeights(arrays["coefs"], arrays["intercepts"], arrays["activation"]))
        output = OUTPUT_CODES["decision" if logits else self.score_kind_]
        N, H, W, C = x.shape
        F = len(self.feature_names_)
        spec = _row_spec(self.k, self.mode, self.box_sizes, self.std_sizes, self.asymmetry, ASYMMETRY_BOX,
                         self.gradient_size, self.position)
        out = _chunk_buffer("scores", (N, H, W), np.float32)
        u8 = b.view(np.uint8)
        # BLAS capped to one thread once for the chunk: restoring OpenBLAS's thread count after every
        # slice woke its spinning threads, which competed with ours
        with _single_threaded_blas():
            if n_jobs == 1:
                # the whole chunk in one kernel call: rows, network and scatter per image, without
                # returning to Python between images (the same numbers as the loop below)
                flat_w, flat_b, sizes, code = network
                # rows are scored as soon as a tile is full: a tile and an image row of rows, in cache
                n_rows = min(H * W, _ROWS_TILE + W - 1)
                rowbuf = thread_buffer(("tile_rows", n_rows, F), lambda: np.empty((n_rows, F), dtype=np.float32))
                size = _pixfeat.scratch_size(H, W, C, F)
                scratch = thread_buffer(("pixel_context", size), lambda: np.empty(size, dtype=np.float64))
                widest = int(sizes[1:].max())
                act = thread_buffer(("mlp_act", _ROWS_TILE * widest),
                                    lambda: np.empty((2, _ROWS_TILE * widest), dtype=np.float32))
                # raw slices: each normalised into a buffer that stays in cache for the row kernel
                normalized = None
                if raw:
                    normalized = thread_buffer(("normalised slice", H, W, C),
                                               lambda: np.empty((H, W, C), np.float32))
                bad = _pixfeat.pixel_mlp_scores(x, weights=flat_w, biases=flat_b, sizes=sizes, activation=code,
                                                output=output, scores=out, rowbuf=rowbuf,
                                                scratch=scratch, act=act, tile_rows=_ROWS_TILE, n0=0, n1=N,
                                                normalized=normalized, min_std=_MIN_STD,
                                                **_context_plan(u8, u8, spec))
                if bad >= 0:
                    raise non_finite_error(x)
                return out
            # one chunk shared by n_jobs threads: each image's rows, then their tiles across the threads
            out[~b.view(bool)] = 0  # the others are all written below
            buf = thread_buffer(("rows", H * W * F), lambda: np.empty(H * W * F, dtype=np.float32))
            for i in range(N):
                X = _context_rows(x[i:i + 1], u8[i:i + 1], u8[i:i + 1], spec, F, out=buf)
                if X.shape[0]:  # the image's rows are one segment: tiles never straddle two images
                    out[i][b[i].view(bool)] = _network_row_scores(X, network, output, n_jobs)
        return out


    def _check_batch(self, images, brain) -> tuple:
        """(batch, brain or None, single): checked images (N, H, W, C) and masks (N, H, W)."""
        # normalised per slice, the images are checked for NaN and infinities by the kernel (on the
        # slice it is about to read anyway), not by a pass over the whole batch here
        batch, single = check_images(images, check_finite=self.normalize != "brain")
        N, H, W, C = batch.shape
        if C != self.n_channels_:
            raise ValueError(f"images have {C} channels but the segmenter was fitted on {self.n_channels_}")
        check_k_fits(self.k, self.mode, H, W)
        if brain is not None:
            brain = check_masks(brain, "brain", shape=(H, W) if single else (N, H, W)).reshape(N, H, W)
        return batch, brain, single


    def _by_chunks(self, batch, brain, emit, logits: bool = False) -> None:
        """Normalise and score a checked batch ``_CHUNK`` slices at a time, handing each chunk's
        (n, H, W) scores and brain masks to ``emit(start, stop, scores, brain)`` in the thread that
        made them.

        Threads share the chunks, each running the whole pipeline on its own (every kernel releases
        the GIL, and nothing waits for a serial step).  A slice's result does not depend on its chunk,
        so any n_jobs gives the same results.  The normalised chunk lives in a buffer each thread
        reuses: fresh memory costs a page fault per 4 KB on first touch.  (The fused scorer of the
        default model normalises each slice itself, into a one-slice buffer that stays in cache.)"""
        N, H, W, C = batch.shape
        n_jobs = check_n_jobs(self.n_jobs)  # resolved once: with n_jobs > 1 it asks threadpoolctl
        chunk = _CHUNK if N >= n_jobs * _CHUNK else max(1, -(-N // n_jobs))
        starts = list(range(0, N, chunk))
        inner = n_jobs if len(starts) == 1 else 1  # one chunk (one image): the kernels share it
        fused = self._fuses_normalization(inner)  # the kernel normalises each slice itself

        def work(first: int, last: int) -> None:
            with assume_finite():  # batch checked above (the flag is per thread)
                for i in range(first, last):
                    start, stop = starts[i], min(starts[i] + chunk, N)
                    x = None if fused else _chunk_buffer("normalised", (stop - start, H, W, C), np.float32)
                    x, b, _, _ = self._prepare(batch[start:stop], None if brain is None else brain[start:stop],
                                               out=x, normalise=not fused)
                    emit(start, stop, self._scores(x, b, inner, logits, raw=fused), b)
                    if self.verbose and N > chunk:
                        self._log(f"segmented images {start}-{stop - 1} of {N}")

        try:
            run_chunks(work, len(starts), n_jobs)
        except NonFiniteError:  # found in one chunk: report the count over the whole batch
            raise non_finite_error(batch) from None


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
        self._check_fitted()
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
        self._check_fitted()
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

        Notes
        -----
        Slices are processed 16 at a time, each chunk end to end by one thread
        (``n_jobs`` threads share the chunks), through scratch buffers the thread
        keeps for its next call: about 40 MiB for 240 x 240 x 4 slices with the
        default features (fresh memory would cost a page fault per 4 KB on every
        call).
        """
        self._check_fitted()
        t0 = time.perf_counter()
        batch, brain, single = self._check_batch(images, brain)
        masks = np.empty(batch.shape[:3], dtype=bool)
        # probabilities above the threshold are the logits at or above this cut: no exp per pixel
        cut = self._mask_cut()

        def emit(start, stop, s, b):
            # threshold inside the brain, then each slice's clean-up, straight into the output
            m = _chunk_buffer("masks", s.shape, bool)
            if cut is None:
                np.greater(s, self.threshold_, out=m)
            else:
                np.greater_equal(s, cut, out=m)
            m &= b.view(bool)
            self._post_process(m, masks[start:stop])

        self._by_chunks(batch, brain, emit, logits=cut is not None)
        self._log(f"segmented {len(batch)} images in {time.perf_counter() - t0:.2f} s")
        return masks[0] if single else masks


class _LoadedPredictor(_Predictor):
    """A fitted segmenter's predict path, rebuilt from a model file by
    :func:`fastseg.persistence._load_predictor`: the parameters as attributes, then the fitted ones."""

    def __init__(self, params: dict):
        for name, value in params.items():
            setattr(self, name, value)
