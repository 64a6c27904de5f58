"""Pictures of slices and segmentations (needs matplotlib: ``pip install "fastseg[viz]"``).

Examples
--------
>>> import numpy as np, tempfile, os
>>> from fastseg.viz import montage
>>> rng = np.random.default_rng(0)
>>> images = rng.standard_normal((2, 32, 32, 4)).astype(np.float32)
>>> truth = np.zeros((2, 32, 32), bool); truth[:, 8:20, 10:22] = True
>>> path = os.path.join(tempfile.mkdtemp(), "montage.png")
>>> montage(images, truth, truth, path, titles=["a", "b"]).name
'montage.png'
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["overlay", "montage", "CHANNEL_NAMES"]

#: Channel names of BraTS-style slices, in fastseg's order.
CHANNEL_NAMES = ("T1", "T2", "T1C", "FLAIR")


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only; never needs a display
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ImportError('pictures need matplotlib: pip install "fastseg[viz]"') from None
    return plt


def _grey(channel: np.ndarray) -> np.ndarray:
    """Scale one channel to [0, 1] by its 1st and 99th percentiles (robust to outliers)."""
    lo, hi = np.percentile(channel, [1, 99])
    return np.clip((channel - lo) / (hi - lo if hi > lo else 1.0), 0, 1)


def overlay(ax, image: np.ndarray, truth: np.ndarray | None = None, pred: np.ndarray | None = None,
            channel: int = 3) -> None:
    """Draw one channel in grey on ``ax`` with the truth's outline (green) and the prediction (red).

    Parameters
    ----------
    ax : matplotlib Axes
    image : ndarray of shape (H, W, C)
    truth, pred : ndarray of shape (H, W), optional
    channel : int, default=3 (FLAIR)
    """
    ax.imshow(_grey(image[..., channel]), cmap="gray", interpolation="nearest")
    if pred is not None and np.any(pred):
        rgba = np.zeros(pred.shape + (4,))
        rgba[np.asarray(pred, bool)] = (1.0, 0.15, 0.1, 0.45)
        ax.imshow(rgba, interpolation="nearest")
    if truth is not None and np.any(truth):
        ax.contour(np.asarray(truth, float), levels=[0.5], colors=["#30ff50"], linewidths=1.0)
    ax.set_axis_off()


def montage(images, truth, pred, path, *, titles=None, dpi: int = 100) -> Path:
    """Write a PNG: one row per slice, its channels in grey, then truth (green) and prediction (red) on FLAIR.

    Parameters
    ----------
    images : ndarray of shape (N, H, W, C)
    truth, pred : ndarray of shape (N, H, W) or None
    path : str or os.PathLike
        Where to write the PNG.
    titles : list of str, optional
        One title per row (e.g. patient id and Dice).

    Returns
    -------
    pathlib.Path
    """
    plt = _pyplot()
    images = np.asarray(images)
    n, C = images.shape[0], images.shape[3]
    names = list(CHANNEL_NAMES[:C]) + [f"channel {c}" for c in range(len(CHANNEL_NAMES), C)]
    fig, axes = plt.subplots(n, C + 1, figsize=(2.2 * (C + 1), 2.3 * n), squeeze=False)
    for i in range(n):
        for c in range(C):
            axes[i, c].imshow(_grey(images[i, ..., c]), cmap="gray", interpolation="nearest")
            axes[i, c].set_axis_off()
            if i == 0:
                axes[i, c].set_title(names[c], fontsize=9)
        overlay(axes[i, C], images[i], None if truth is None else truth[i], None if pred is None else pred[i],
                channel=min(3, C - 1))
        if i == 0:
            axes[i, C].set_title("truth (green) / prediction (red)", fontsize=9)
        if titles is not None:
            axes[i, 0].text(-0.08, 0.5, titles[i], transform=axes[i, 0].transAxes, rotation=90,
                            va="center", ha="right", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
