"""Slow, obviously-correct numpy/scipy twins of every fastseg kernel.

These are what the tests compare the Cython kernels against.  They are written
for clarity, not speed: whole-array numpy, ``np.pad`` for borders,
``scipy.ndimage`` for connected components.  They do no input validation
beyond what they need; pass them well-formed arrays:

- images: float32 of shape (N, H, W, C)
- masks: bool of shape (N, H, W)

They are shipped (not only in tests) so that users can check a result or read
what a kernel is meant to compute.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = [
    "multiscale_features",
    "window_features",
    "context_channels",
    "pixel_features",
    "normalize_brain",
    "linear_scores",
    "mlp_scores",
    "label",
    "remove_small_components",
    "fill_holes",
    "keep_largest",
    "clean_mask",
    "surface",
    "hausdorff95",
]


# --------------------------------------------------------------------------- features

def window_features(images, k, mask=None, mode="reflect"):
    """Twin of :func:`fastseg.window_features` for (N, H, W, C) images.

    Pads with ``np.pad`` and stacks one shifted view per window offset, so that
    column ``(dy * k + dx) * C + c`` holds channel ``c`` at offset ``(dy - r, dx - r)``.
    """
    images = np.asarray(images, dtype=np.float32)
    N, H, W, C = images.shape
    r = k // 2
    pad_kw = {"constant_values": 0} if mode == "constant" else {}
    padded = np.pad(images, ((0, 0), (r, r), (r, r), (0, 0)), mode=mode, **pad_kw)
    shifted = [padded[:, dy:dy + H, dx:dx + W, :] for dy in range(k) for dx in range(k)]
    features = np.stack(shifted, axis=3).reshape(N * H * W, k * k * C)
    if mask is not None:
        features = features[np.asarray(mask, dtype=bool).reshape(-1)]
    return np.ascontiguousarray(features, dtype=np.float32)


def context_channels(images, brain, box_sizes=(7, 15, 31), asymmetry=True, asymmetry_box=15):
    """Twin of :func:`fastseg.features.context_channels` for (N, H, W, C) images.

    Box means by ``scipy.ndimage.uniform_filter`` (zero outside the image); the
    midline as the middle of the brain's first and last columns, found by a loop.
    """
    images = np.asarray(images, dtype=np.float64)
    N, H, W, C = images.shape
    parts = [images]
    for s in box_sizes:
        parts.append(ndimage.uniform_filter(images, size=(1, s, s, 1), mode="constant"))
    if asymmetry:
        diff = np.empty_like(images)
        for n in range(N):
            cols = [x for x in range(W) if brain[n][:, x].any()]
            twice_mid = cols[0] + cols[-1] if cols else W - 1
            for x in range(W):
                src = min(max(twice_mid - x, 0), W - 1)
                diff[n, :, x] = images[n, :, x] - images[n, :, src]
        parts += [diff, ndimage.uniform_filter(diff, size=(1, asymmetry_box, asymmetry_box, 1), mode="constant")]
    return np.concatenate(parts, axis=-1).astype(np.float32)


def pixel_features(images, brain, k=1, mask=None, mode="reflect", mean_sizes=(), std_sizes=(7, 15),
                   asymmetry=True, asymmetry_box=15, gradient_size=5, position=True, position_boxes=(15, 31)):
    """Twin of :func:`fastseg.features.pixel_features`: whole-image scipy filters, then the rows of ``mask``.

    Box statistics see the image with every pixel outside the brain set to 0."""
    x = np.asarray(images, dtype=np.float64)
    brain = np.asarray(brain, dtype=bool)
    rows = brain if mask is None else np.asarray(mask, dtype=bool)
    N, H, W, C = x.shape
    inside = np.where(brain[..., None], x, 0.0)
    box = lambda a, s: ndimage.uniform_filter(a, size=(1, s, s, 1), mode="constant")  # noqa: E731
    parts = []
    if k == 1:
        parts.append(x)
    else:
        parts.append(window_features(images, k, mode=mode).reshape(N, H, W, k * k * C))
    for s in mean_sizes:
        parts.append(box(inside, s))
    for s in std_sizes:
        parts.append(np.sqrt(np.maximum(box(inside ** 2, s) - box(inside, s) ** 2, 0.0)))
    if asymmetry:
        mirror = np.stack([_mirror(b) for b in brain])
        mirrored = np.stack([inside[n][:, mirror[n]] for n in range(N)])
        diff = np.where(brain[..., None], inside - mirrored, 0.0)
        parts += [diff, box(diff, asymmetry_box)]
    if gradient_size:
        s, r = gradient_size, gradient_size // 2
        kernel = np.zeros((s, s))
        kernel[:, r + 1:], kernel[:, :r] = 1.0, -1.0
        kernel /= s * r
        gx = ndimage.correlate(inside, kernel[None, :, :, None], mode="constant")
        gy = ndimage.correlate(inside, kernel.T[None, :, :, None], mode="constant")
        parts.append(np.sqrt(gx ** 2 + gy ** 2))
    if position:
        pos = np.zeros((N, H, W, 2 + len(position_boxes)))
        yy, xx = np.mgrid[:H, :W].astype(np.float64)
        for n in range(N):
            r = np.flatnonzero(brain[n].any(axis=1))
            c = np.flatnonzero(brain[n].any(axis=0))
            r0, r1, c0, c1 = (r[0], r[-1], c[0], c[-1]) if r.size else (0, 0, 0, 0)
            pos[n, ..., 0] = (yy - r0) / max(r1 - r0, 1)
            pos[n, ..., 1] = np.abs((xx - c0) / max(c1 - c0, 1) - 0.5)
            for j, s in enumerate(position_boxes):
                pos[n, ..., 2 + j] = ndimage.uniform_filter(brain[n].astype(np.float64), size=s, mode="constant")
        parts.append(pos)
    return np.concatenate(parts, axis=-1)[rows].astype(np.float32)


def _mirror(brain):
    """Mirror column of each column across the brain's vertical midline (image centre if empty), clipped."""
    W = brain.shape[1]
    cols = np.flatnonzero(brain.any(axis=0))
    c0, c1 = (cols[0], cols[-1]) if cols.size else (0, W - 1)
    return np.clip(c0 + c1 - np.arange(W), 0, W - 1)


def normalize_brain(images, brain):
    """Twin of :func:`fastseg.normalize_brain`: standardise each channel over each slice's brain pixels."""
    images = np.asarray(images, dtype=np.float32)
    out = np.zeros_like(images)
    for i in range(images.shape[0]):
        values = images[i][brain[i]].astype(np.float64)
        if values.shape[0]:
            std = values.std(axis=0)
            std[std < 1e-6] = 1.0
            out[i][brain[i]] = (values - values.mean(axis=0)) / std
    return out


# --------------------------------------------------------------------------- scoring

def zscore_volume(volume):
    """A stored (X, Y, Z) volume z-scored over all its voxels (background zeros included) in
    float64, as float32 axial slices ``(Z, Y, X)``; with its non-zero voxels, its mean and its std
    (the population std; a std of 0 divides by 1).  The case reader's normalisation."""
    vol = np.array(volume, dtype=np.float64, order="F")
    dev = vol - vol.mean()
    std = float(np.sqrt((dev * dev).sum() / vol.size))
    slices = (dev / (std if std > 0 else 1.0)).astype(np.float32).transpose(2, 1, 0)
    return slices, (vol != 0).transpose(2, 1, 0), float(vol.mean()), std


def linear_scores(images, coef, intercept, k, mode="reflect", mask=None, fill_value=0.0):
    """Twin of :func:`fastseg.linear_scores`: ``window_features(images, k) @ coef + intercept``.

    Returns float32 of shape (N, H, W); pixels outside ``mask`` hold ``fill_value``.
    Computed in float64.
    """
    images = np.asarray(images, dtype=np.float32)
    N, H, W, C = images.shape
    X = window_features(images, k, mode=mode).astype(np.float64)
    scores = X @ np.asarray(coef, dtype=np.float64).ravel() + float(np.ravel(intercept)[0])
    scores = scores.reshape(N, H, W)
    if mask is not None:
        scores = np.where(np.asarray(mask, dtype=bool), scores, fill_value)
    return scores.astype(np.float32)


_ACTIVATIONS = {
    "identity": lambda z: z,
    "relu": lambda z: np.maximum(z, 0),
    "tanh": np.tanh,
    "logistic": lambda z: 1.0 / (1.0 + np.exp(-z)),
}


def mlp_scores(images, coefs, intercepts, activation, k, mode="reflect", mask=None, fill_value=0.0):
    """Twin of :func:`fastseg.mlp_scores`: the positive-class probability of a binary MLP.

    ``coefs`` and ``intercepts`` are lists as in ``MLPClassifier.coefs_`` and
    ``intercepts_`` (the last layer has one output unit); hidden layers use
    ``activation``, the output the logistic function, as scikit-learn does for
    binary problems.  Returns float32 of shape (N, H, W); computed in float64.
    """
    images = np.asarray(images, dtype=np.float32)
    N, H, W, C = images.shape
    a = window_features(images, k, mode=mode).astype(np.float64)
    act = _ACTIVATIONS[activation]
    for i, (w, b) in enumerate(zip(coefs, intercepts)):
        a = a @ np.asarray(w, dtype=np.float64) + np.asarray(b, dtype=np.float64)
        a = act(a) if i < len(coefs) - 1 else _ACTIVATIONS["logistic"](a)
    proba = a[:, 0].reshape(N, H, W)
    if mask is not None:
        proba = np.where(np.asarray(mask, dtype=bool), proba, fill_value)
    return proba.astype(np.float32)


# --------------------------------------------------------------------------- components

def _structure(connectivity):
    return ndimage.generate_binary_structure(2, connectivity)


def label(masks, connectivity=1):
    """Twin of :func:`fastseg.label` for (N, H, W) masks: ``scipy.ndimage.label`` slice by slice.

    Returns int32 labels of shape (N, H, W) numbered 1..n in raster order per
    slice, and an int array of the component counts, one per slice.
    """
    masks = np.asarray(masks, dtype=bool)
    labels = np.zeros(masks.shape, dtype=np.int32)
    counts = np.zeros(masks.shape[0], dtype=np.intp)
    for i, m in enumerate(masks):
        labels[i], counts[i] = ndimage.label(m, structure=_structure(connectivity))
    return labels, counts


def remove_small_components(masks, min_size, connectivity=2):
    """Twin of :func:`fastseg.remove_small_components`: drop components of fewer than ``min_size`` pixels."""
    labels, _ = label(masks, connectivity)
    out = np.zeros(labels.shape, dtype=bool)
    for i, lab in enumerate(labels):
        sizes = np.bincount(lab.ravel())
        keep = sizes >= min_size
        keep[0] = False
        out[i] = keep[lab]
    return out


def fill_holes(masks, connectivity=1):
    """Twin of :func:`fastseg.fill_holes`: ``scipy.ndimage.binary_fill_holes`` slice by slice.

    ``connectivity`` is the background's: background regions (so connected)
    that do not touch the image border become foreground.
    """
    masks = np.asarray(masks, dtype=bool)
    return np.stack([ndimage.binary_fill_holes(m, structure=_structure(connectivity)) for m in masks])


_fill_holes = fill_holes  # clean_mask's parameter of the same name shadows the function


def keep_largest(masks, n=1, connectivity=2):
    """Twin of :func:`fastseg.keep_largest`: keep the ``n`` largest components of each slice.

    Ties in size are broken towards the lower label (the component met first in
    raster order).
    """
    labels, counts = label(masks, connectivity)
    out = np.zeros(labels.shape, dtype=bool)
    for i, lab in enumerate(labels):
        sizes = np.bincount(lab.ravel(), minlength=counts[i] + 1)[1:]
        order = np.argsort(-sizes, kind="stable")[:n]   # stable: lower label first among equals
        keep = np.zeros(counts[i] + 1, dtype=bool)
        keep[order + 1] = True
        out[i] = keep[lab]
    return out


def clean_mask(masks, min_size, fill_holes=True, connectivity=2, min_relative_size=0.0):
    """Twin of :func:`fastseg.clean_mask`: remove small components, then fill holes.

    ``connectivity`` is the foreground's (for the size filter); components under
    ``min_relative_size`` times the slice's largest are removed too; holes are
    4-connected background regions that do not touch the border.
    """
    out = remove_small_components(masks, min_size, connectivity)
    if min_relative_size > 0:
        labels, _ = label(masks, connectivity)
        for i, lab in enumerate(labels):
            sizes = np.bincount(lab.ravel())
            sizes[0] = 0
            small = sizes < min_relative_size * sizes.max()
            small[0] = False
            out[i][small[lab]] = False
    if fill_holes:
        out = _fill_holes(out, connectivity=1)
    return out


# --------------------------------------------------------------------------- surface distances

def surface(mask):
    """Twin of :func:`fastseg.metrics.surface`: voxels of ``mask`` with a face neighbour outside it
    (outside the array counts as outside), by looking at each neighbour in turn."""
    m = np.asarray(mask, bool)
    padded = np.pad(m, 1, constant_values=False)
    inner = tuple(slice(1, -1) for _ in range(m.ndim))
    out = np.zeros_like(m)
    for axis in range(m.ndim):
        for step in (-1, 1):
            shifted = np.roll(padded, step, axis=axis)[inner]
            out |= m & ~shifted
    return out


def hausdorff95(y_true, y_pred, spacing=None):
    """Twin of :func:`fastseg.metrics.hausdorff95`: every pair of surface voxels' distance, brute force."""
    t, p = np.asarray(y_true, bool), np.asarray(y_pred, bool)
    spacing = np.ones(t.ndim) if spacing is None else np.asarray(spacing, dtype=np.float64)
    if not t.any() and not p.any():
        return 0.0
    if not t.any() or not p.any():
        return float(np.sqrt(np.sum((np.array(t.shape) * spacing) ** 2)))
    a = np.argwhere(surface(t)) * spacing
    b = np.argwhere(surface(p)) * spacing
    d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=-1))
    return float(max(np.percentile(d.min(axis=1), 95), np.percentile(d.min(axis=0), 95)))


def multiscale_features(image, intensity=True, edges=True, texture=True, sigma_min=0.5, sigma_max=16,
                        num_sigma=None, channel_axis=None):
    """Multiscale filter-bank features in float64 from scipy.ndimage and numpy (the definition
    ``fastseg.features.multiscale_features`` computes in float32; image already float, 2-D or 3-D).

    Per channel and scale: the Gaussian (``gaussian_filter``, truncate 4, mode 'nearest'), its
    Sobel magnitude (``convolve`` with the separable Sobel kernel of each axis, mode 'reflect',
    root mean square over the axes), the eigenvalues, decreasing, of the Hessian built by
    ``numpy.gradient`` twice (``eigvalsh``; axes of one pixel give zero derivatives)."""
    img = np.asarray(image, dtype=np.float64)
    img = img[..., None] if channel_axis is None else np.moveaxis(img, channel_axis, -1)
    ndim = img.ndim - 1
    if num_sigma is None:
        num_sigma = int(np.log2(sigma_max) - np.log2(sigma_min) + 1)
    sigmas = np.logspace(np.log2(sigma_min), np.log2(sigma_max), num=num_sigma, base=2)
    columns = []
    for c in range(img.shape[-1]):
        for sigma in sigmas:
            g = ndimage.gaussian_filter(img[..., c], sigma, mode="nearest", truncate=4.0)
            if intensity:
                columns.append(g)
            if edges:
                total = np.zeros_like(g)
                for axis in range(ndim):
                    kernel = np.ones((1,) * ndim)
                    for other in range(ndim):
                        w = np.array([1.0, 0.0, -1.0]) if other == axis else np.array([1.0, 2.0, 1.0]) / 4
                        kernel = kernel * w.reshape([-1 if d == other else 1 for d in range(ndim)])
                    total += ndimage.convolve(g, kernel, mode="reflect") ** 2
                columns.append(np.sqrt(total / ndim))
            if texture:
                def grad(f, axis):
                    return np.zeros_like(f) if f.shape[axis] == 1 else np.gradient(f, axis=axis)
                hessian = np.empty(g.shape + (ndim, ndim))
                for i in range(ndim):
                    gi = grad(g, i)
                    for j in range(i, ndim):
                        hessian[..., i, j] = hessian[..., j, i] = grad(gi, j)
                eig = np.linalg.eigvalsh(hessian)[..., ::-1]
                columns.extend(np.moveaxis(eig, -1, 0))
    return np.stack(columns, axis=-1)
