"""Trainable segmentation on multiscale features: sparse labels in, a label image out.

The shape of scikit-image's ``skimage.future`` trainable segmentation: :func:`fit_segmenter` and
:func:`predict_segmenter` take a feature array (e.g. from
:func:`fastseg.features.multiscale_features`) and any scikit-learn classifier;
:class:`TrainableSegmenter` computes the features itself, from the image:

- labels are sparse: 0 marks an unlabelled pixel, 1..K the classes (the scribbles drawn in ilastik
  or napari); fitting computes the features of the labelled pixels only;
- prediction runs tile by tile (bands of rows of the outer axis): each band's feature rows are
  made, scored and dropped, so no feature matrix of the whole image exists.  A
  ``LogisticRegression`` or an ``MLPClassifier`` is compiled into fastseg's scoring networks
  (:class:`fastseg.scoring.Network`, float32 kernels); any other classifier gets its own
  ``predict_proba`` on each band;
- a segmenter with a compiled model is saved as a plain ``.npz`` of arrays and a JSON spec
  (:meth:`TrainableSegmenter.save`, :func:`load_segmenter`), read back without unpickling anything.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validation import (
    _as_array,
    _describe,
    check_bool,
    check_masks,
    check_multiscale_image,
    check_path,
    check_scales,
    check_workers,
)
from ._version import __version__

__all__ = ["fit_segmenter", "predict_segmenter", "TrainableSegmenter", "load_segmenter"]

#: Feature rows scored at once (bounds the temporaries of prediction: rows x features floats).
_BAND_PIXELS = 1 << 16

#: The layout of a saved segmenter; a file with another major version is refused.
FORMAT_VERSION = "1.0"

_FEATURE_PARAMETERS = ("intensity", "edges", "texture", "sigma_min", "sigma_max", "num_sigma", "channel_axis")


def _check_features(features, name: str = "features") -> np.ndarray:
    arr = _as_array(features, name)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must have a real (integer or floating) dtype, got dtype {arr.dtype}")
    if arr.ndim < 2 or arr.size == 0:
        raise ValueError(f"{name} must have shape (..., n_features) with no zero-size axis, got shape {arr.shape}")
    return arr


def _check_labels(labels, shape, name: str = "labels") -> np.ndarray:
    arr = _as_array(labels, name)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must have an integer dtype (0 unlabelled, 1..K classes), got dtype {arr.dtype}")
    if arr.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got shape {arr.shape}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} must be >= 0 (0 unlabelled, 1..K classes), got value {int(arr.min())}")
    if not np.any(arr):
        raise ValueError(f"{name} must mark at least one pixel (values >= 1), got only zeros")
    return arr


def _check_classifier(clf, name: str = "clf"):
    if not (hasattr(clf, "fit") and hasattr(clf, "predict")):
        raise TypeError(f"{name} must be a scikit-learn classifier (with fit and predict), got {_describe(clf)}")
    return clf


def fit_segmenter(labels: ArrayLike, features: ArrayLike, clf):
    """Fit ``clf`` on the features of the labelled pixels.

    Parameters
    ----------
    labels : array-like of int, shape ``features.shape[:-1]``
        0 for an unlabelled pixel, 1..K for its class.
    features : array-like of shape (..., n_features)
        One row of features per pixel, e.g. :func:`fastseg.features.multiscale_features`.
    clf : scikit-learn classifier
        Fitted in place.

    Returns
    -------
    clf
        The fitted classifier.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from fastseg.features import multiscale_features
    >>> from fastseg.trainable import fit_segmenter, predict_segmenter
    >>> image = np.zeros((20, 20), np.float32); image[:, 10:] = 1
    >>> labels = np.zeros((20, 20), np.int32); labels[5, 2] = 1; labels[5, 17] = 2
    >>> features = multiscale_features(image, sigma_max=2)
    >>> clf = fit_segmenter(labels, features, LogisticRegression())
    >>> predict_segmenter(features, clf)[0, [0, 19]].tolist()
    [1, 2]
    """
    features = _check_features(features)
    labels = _check_labels(labels, features.shape[:-1])
    clf = _check_classifier(clf)
    labelled = labels > 0
    clf.fit(features[labelled], labels[labelled])
    return clf


def predict_segmenter(features: ArrayLike, clf) -> NDArray:
    """The class of every pixel by a fitted classifier, rows scored in batches.

    Parameters
    ----------
    features : array-like of shape (..., n_features)
    clf : fitted scikit-learn classifier

    Returns
    -------
    labels : ndarray of shape ``features.shape[:-1]``
        The classes ``clf`` predicts (1..K when fitted by :func:`fit_segmenter`).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> from fastseg.trainable import fit_segmenter, predict_segmenter
    >>> features = np.arange(20, dtype=np.float32).reshape(4, 5, 1)
    >>> labels = np.zeros((4, 5), np.int32); labels[0, 0] = 1; labels[3, 4] = 2
    >>> clf = fit_segmenter(labels, features, RandomForestClassifier(n_estimators=5, random_state=0))
    >>> predict_segmenter(features, clf).shape
    (4, 5)
    """
    features = _check_features(features)
    clf = _check_classifier(clf)
    rows = features.reshape(-1, features.shape[-1])
    parts = [np.asarray(clf.predict(rows[i:i + _BAND_PIXELS])) for i in range(0, rows.shape[0], _BAND_PIXELS)]
    return np.concatenate(parts).reshape(features.shape[:-1])


# --------------------------------------------------------------------------- compiled models

def _networks_of(clf):
    """(kind, networks) for a fitted classifier fastseg can score and save, else None.

    ``binary``: one network whose output unit gives the probability of the second class;
    ``softmax``: one network per class giving its logit (a softmax over them gives the
    probabilities)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    from .scoring import Network

    if type(clf) is LogisticRegression and hasattr(clf, "coef_"):
        coef, intercept = np.asarray(clf.coef_, np.float64), np.asarray(clf.intercept_, np.float64)
        if coef.shape[0] == 1:
            return "binary", [Network.linear(coef[0], intercept[0])]
        return "softmax", [Network.linear(coef[k], intercept[k]) for k in range(coef.shape[0])]
    if type(clf) is MLPClassifier and hasattr(clf, "coefs_"):
        coefs, intercepts = list(clf.coefs_), list(clf.intercepts_)
        if clf.out_activation_ == "logistic" and coefs[-1].shape[1] == 1:
            return "binary", [Network.mlp(coefs, intercepts, clf.activation)]
        if clf.out_activation_ == "softmax":
            return "softmax", [Network.mlp(coefs[:-1] + [coefs[-1][:, k:k + 1]],
                                           intercepts[:-1] + [intercepts[-1][k:k + 1]], clf.activation)
                               for k in range(coefs[-1].shape[1])]
    return None


def _score(rows: np.ndarray, kind: str, networks: list, n_workers: int) -> NDArray[np.float32]:
    """Class probabilities (n, K) of float32 feature rows through the compiled networks."""
    from .scoring import OUTPUT_CODES, _network_row_scores

    if kind == "binary":
        p = _network_row_scores(rows, networks[0], OUTPUT_CODES["proba"], n_workers)
        return np.stack([1 - p, p], axis=1).astype(np.float32)
    z = np.stack([_network_row_scores(rows, net, OUTPUT_CODES["decision"], n_workers) for net in networks],
                 axis=1).astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z.astype(np.float32)


class TrainableSegmenter:
    """A pixel classifier on multiscale features, fitted from sparse labels.

    Parameters
    ----------
    clf : scikit-learn classifier, optional
        Default: ``RandomForestClassifier(n_estimators=100, random_state=0)``.  A
        ``LogisticRegression`` or ``MLPClassifier`` is scored by fastseg's compiled networks and
        can be saved.
    intensity, edges, texture, sigma_min, sigma_max, num_sigma, channel_axis
        The features, as :func:`fastseg.features.multiscale_features` takes them.
    workers : int, optional
        Threads for the features and the compiled scoring (None: every core).

    Attributes
    ----------
    classes_ : ndarray
        The labels seen at fit (1..K).
    n_features_in_ : int
        Feature columns per pixel.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from fastseg.trainable import TrainableSegmenter
    >>> image = np.zeros((32, 32), np.float32); image[8:24, 8:24] = 1
    >>> labels = np.zeros((32, 32), np.int32); labels[2, 2] = 1; labels[16, 16] = 2
    >>> seg = TrainableSegmenter(LogisticRegression(), sigma_max=4).fit(image, labels)
    >>> seg.predict(image)[[2, 16], [2, 16]].tolist()
    [1, 2]
    >>> seg.predict_proba(image).shape
    (32, 32, 2)
    """

    def __init__(self, clf=None, *, intensity: bool = True, edges: bool = True, texture: bool = True,
                 sigma_min: float = 0.5, sigma_max: float = 16, num_sigma: int | None = None,
                 channel_axis: int | None = None, workers: int | None = None):
        self.clf = clf
        self.intensity, self.edges, self.texture = intensity, edges, texture
        self.sigma_min, self.sigma_max, self.num_sigma = sigma_min, sigma_max, num_sigma
        self.channel_axis = channel_axis
        self.workers = workers

    # ------------------------------------------------------------------ features
    def _feature_args(self) -> tuple:
        flags = [check_bool(getattr(self, n), n) for n in ("intensity", "edges", "texture")]
        if not any(flags):
            raise ValueError("at least one of intensity, edges and texture must be True")
        sigma_min, sigma_max, num_sigma = check_scales(self.sigma_min, self.sigma_max, self.num_sigma)
        from . import _multiscale

        return flags, _multiscale.sigmas(sigma_min, sigma_max, num_sigma), check_workers(self.workers)

    def _prepare(self, image):
        """The checked image as (C, Z, Y, X) float32 channels, its spatial shape and 3-D flag."""
        from . import _multiscale

        arr, three_d = check_multiscale_image(image, self.channel_axis)
        spatial = arr.shape[:-1]
        shape3 = spatial if three_d else (1, *spatial)
        return _multiscale.as_channels(arr, shape3), spatial, three_d

    def _rows(self, channels, three_d, mask3, flags, scales, n_workers) -> NDArray[np.float32]:
        from . import _multiscale

        n_rows = int(np.count_nonzero(mask3))
        width = channels.shape[0] * len(scales) * _multiscale.n_per_scale(3 if three_d else 2, *flags)
        out = np.empty((n_rows, width), dtype=np.float32)
        if n_rows:
            _multiscale.multiscale(channels, three_d, *flags, scales, mask3, out, n_workers)
        return out

    # ------------------------------------------------------------------ fit / predict
    def fit(self, image: ArrayLike, labels: ArrayLike) -> "TrainableSegmenter":
        """Fit the classifier on the features of the labelled pixels (labels >= 1) of ``image``.

        Parameters
        ----------
        image : array-like, 2-D or 3-D, with a channel axis if `channel_axis` is set
        labels : array-like of int, the spatial shape of `image`
            0 unlabelled, 1..K the classes.

        Returns
        -------
        self
        """
        flags, scales, n_workers = self._feature_args()
        channels, spatial, three_d = self._prepare(image)
        labels = _check_labels(labels, spatial)
        if self.clf is None:
            from sklearn.ensemble import RandomForestClassifier

            clf = RandomForestClassifier(n_estimators=100, random_state=0)
        else:
            clf = _check_classifier(self.clf)
        labelled = labels > 0
        mask3 = labelled.reshape(channels.shape[1:])
        rows = self._rows(channels, three_d, mask3, flags, scales, n_workers)
        clf.fit(rows, labels[labelled])
        self.clf_ = clf
        self.classes_ = np.asarray(clf.classes_)
        self.n_features_in_ = rows.shape[1]
        self.ndim_ = len(spatial)
        self.n_channels_ = channels.shape[0]
        compiled = _networks_of(clf)
        self._compiled = compiled
        return self

    def _check_fitted(self):
        if not hasattr(self, "classes_"):
            raise ValueError("this TrainableSegmenter is not fitted yet: call fit(image, labels) first")

    def predict_proba(self, image: ArrayLike, mask: ArrayLike | None = None) -> NDArray[np.float32]:
        """The probability of each class (in ``classes_`` order) at every pixel.

        Parameters
        ----------
        image : array-like, as at fit
        mask : array-like of bool, optional
            The pixels to score (spatial shape of `image`); their rows are returned in C order.

        Returns
        -------
        ndarray of float32
            ``spatial_shape + (K,)``, or ``(n_masked, K)`` with `mask`.
        """
        self._check_fitted()
        flags, scales, n_workers = self._feature_args()
        channels, spatial, three_d = self._prepare(image)
        if len(spatial) != self.ndim_ or channels.shape[0] != self.n_channels_:
            raise ValueError(f"image must have {self.ndim_} spatial dimensions and {self.n_channels_} channel(s) "
                             f"as at fit, got shape {np.shape(image)}")
        shape3 = channels.shape[1:]
        selected = None if mask is None else check_masks(mask, "mask", shape=spatial).reshape(shape3).view(bool)
        K = len(self.classes_)
        n_rows = int(np.prod(spatial)) if selected is None else int(np.count_nonzero(selected))
        out = np.empty((n_rows, K), dtype=np.float32)
        # bands of the outer axis of about _BAND_PIXELS pixels: features made, scored, dropped.  A band
        # is computed on a slab of the image reaching R + 2 rows (planes) past it, R the largest
        # Gaussian radius: the filters of the band's pixels never read farther, so the slab's own
        # borders change nothing.
        axis = 1 if three_d else 2
        outer = shape3[axis - 1]
        per_outer = int(np.prod(shape3)) // outer
        step = max(1, _BAND_PIXELS // per_outer)
        reach = int(4.0 * float(scales[-1]) + 0.5) + 2
        done = 0
        for start in range(0, outer, step):
            stop = min(outer, start + step)
            lo, hi = max(0, start - reach), min(outer, stop + reach)
            index = [slice(None)] * 4
            index[axis] = slice(lo, hi)
            slab = np.ascontiguousarray(channels[tuple(index)])
            band = np.zeros(slab.shape[1:], dtype=bool)
            inner = [slice(None)] * 3
            inner[axis - 1] = slice(start - lo, stop - lo)
            band[tuple(inner)] = True
            if selected is not None:
                sel = [slice(None)] * 3
                sel[axis - 1] = slice(lo, hi)
                band &= selected[tuple(sel)]
            rows = self._rows(slab, three_d, band, flags, scales, n_workers)
            if rows.shape[0] == 0:
                continue
            if self._compiled is not None:
                proba = _score(rows, *self._compiled, n_workers)
            else:
                proba = np.asarray(self.clf_.predict_proba(rows), dtype=np.float32)
            out[done:done + rows.shape[0]] = proba
            done += rows.shape[0]
        return out.reshape(*spatial, K) if selected is None else out

    def predict(self, image: ArrayLike, mask: ArrayLike | None = None) -> NDArray:
        """The most probable class at every pixel (0 outside `mask` when one is given).

        Returns
        -------
        ndarray of the spatial shape of `image`, dtype of ``classes_``
        """
        proba = self.predict_proba(image, mask)
        if mask is None:
            return self.classes_[np.argmax(proba, axis=-1)]
        spatial = np.shape(mask)
        labels = np.zeros(spatial, dtype=self.classes_.dtype)
        labels[np.asarray(mask, dtype=bool)] = self.classes_[np.argmax(proba, axis=-1)]
        return labels

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> Path:
        """Write the fitted segmenter to ``path`` (``.npz``: its feature parameters, classes and
        compiled weights; no pickle).  Only a ``LogisticRegression`` or ``MLPClassifier`` can be
        saved: other classifiers raise a ``TypeError``.

        Returns
        -------
        pathlib.Path
        """
        from .persistence import atomic_write

        self._check_fitted()
        path = check_path(path)
        if self._compiled is None:
            raise TypeError(f"only a segmenter with a LogisticRegression or an MLPClassifier can be saved as "
                            f"arrays, got {type(self.clf_).__name__}; fastseg does not pickle models")
        kind, networks = self._compiled
        net0 = networks[0]
        spec = {
            "format": "fastseg-trainable", "format_version": FORMAT_VERSION, "fastseg_version": __version__,
            "params": {name: getattr(self, name) for name in _FEATURE_PARAMETERS},
            "kind": kind, "activation": net0.activation, "network_kind": net0.kind,
            "n_networks": len(networks), "n_layers": len(net0.coefs), "n_features": int(self.n_features_in_),
            "ndim": int(self.ndim_), "n_channels": int(self.n_channels_),
        }
        data = {"spec": np.array(json.dumps(spec)), "classes": np.asarray(self.classes_)}
        for k, net in enumerate(networks):
            for j, (w, b) in enumerate(zip(net.coefs, net.intercepts)):
                data[f"coef_{k}_{j}"] = np.asarray(w)
                data[f"intercept_{k}_{j}"] = np.asarray(b)

        def write(tmp):
            with open(tmp, "wb") as fh:
                np.savez(fh, **data)
        return atomic_write(path, write)


def load_segmenter(path) -> TrainableSegmenter:
    """Read a segmenter written by :meth:`TrainableSegmenter.save` (headers first, no pickle).

    The segmenter predicts as the saved one did; it carries no scikit-learn classifier (``clf``
    is None: fitting it again trains the default random forest).

    Raises
    ------
    ValueError
        When the file is not a readable segmenter file, or its arrays do not match its spec.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from sklearn.linear_model import LogisticRegression
    >>> from fastseg.trainable import TrainableSegmenter, load_segmenter
    >>> image = np.zeros((16, 16), np.float32); image[:, 8:] = 1
    >>> labels = np.zeros((16, 16), np.int32); labels[3, 1] = 1; labels[3, 14] = 2
    >>> seg = TrainableSegmenter(LogisticRegression(), sigma_max=2).fit(image, labels)
    >>> path = os.path.join(tempfile.mkdtemp(), "seg.npz")
    >>> _ = seg.save(path)
    >>> bool(np.array_equal(load_segmenter(path).predict(image), seg.predict(image)))
    True
    """
    from .persistence import _read_npz
    from .scoring import Network

    path = check_path(path)
    where = repr(str(path))
    files = _read_npz(path, where)

    def fail(why):
        raise ValueError(f"cannot load {where}: {why}")

    try:
        spec = json.loads(str(files["spec"]))
        if spec.get("format") != "fastseg-trainable":
            fail("it is not a TrainableSegmenter file")
        if str(spec.get("format_version", "")).split(".")[0] != FORMAT_VERSION.split(".")[0]:
            fail(f"format version {spec.get('format_version')!r} is not supported (this fastseg reads {FORMAT_VERSION})")
        params = {name: spec["params"][name] for name in _FEATURE_PARAMETERS}
        kind, activation, n_networks, n_layers = spec["kind"], spec["activation"], int(spec["n_networks"]), int(spec["n_layers"])
        classes = np.asarray(files["classes"])
        networks = []
        for k in range(n_networks):
            coefs = [np.asarray(files[f"coef_{k}_{j}"], dtype=np.float64) for j in range(n_layers)]
            intercepts = [np.asarray(files[f"intercept_{k}_{j}"], dtype=np.float64) for j in range(n_layers)]
            networks.append(Network(tuple(coefs), tuple(intercepts), activation, spec["network_kind"]))
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
        if isinstance(exc, ValueError) and str(exc).startswith("cannot load"):
            raise
        fail(f"its spec or arrays are incomplete ({type(exc).__name__}: {exc})")
    if kind not in ("binary", "softmax") or classes.ndim != 1 or classes.dtype.kind not in "iu":
        fail("its spec names an unknown model kind or its classes are not integers")
    if len(classes) != (2 if kind == "binary" else n_networks) or (kind == "binary" and n_networks != 1):
        fail(f"it holds {len(classes)} classes for {n_networks} network(s) of kind {kind!r}")
    seg = TrainableSegmenter(None, workers=None, **params)
    flags, scales, _ = seg._feature_args()
    from . import _multiscale

    ndim, n_channels = int(spec["ndim"]), int(spec["n_channels"])
    width = n_channels * len(scales) * _multiscale.n_per_scale(ndim, *flags)
    for net in networks:
        shapes_ok = all(w.ndim == 2 for w in net.coefs) and all(
            b.shape == (w.shape[1],) for w, b in zip(net.coefs, net.intercepts)) and all(
            a.shape[1] == b.shape[0] for a, b in zip(net.coefs[:-1], net.coefs[1:]))
        if not shapes_ok or net.coefs[-1].shape[1] != 1:
            fail("its layers' shapes do not chain (n_in, n_out) -> (n_out, ...) to one output")
        if net.n_inputs != width:
            fail(f"its weights take {net.n_inputs} features, its parameters make {width}")
        for w, b in zip(net.coefs, net.intercepts):
            if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
                fail("its weights are not finite")
    seg.classes_ = classes
    seg.n_features_in_ = width
    seg.ndim_ = ndim
    seg.n_channels_ = n_channels
    seg.clf_ = None
    seg._compiled = (kind, networks)
    return seg
