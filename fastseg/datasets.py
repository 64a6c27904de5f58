"""Loading data: the shipped real sample, brats2d-style folders and .npz files, and BraTS NIfTI cases.

:func:`load_case` turns a BraTS case (any layout :mod:`fastseg.io` reads, in any
orientation) into fastseg's slices: each modality brought to the canonical
orientation and z-scored over its whole volume (background zeros included, as
the training data were), axial slice ``z`` as ``vol[:, :, z].T`` (row =
anterior to posterior), channels T1, T2, T1C, FLAIR.  Reading NIfTI needs the
optional ``nibabel`` package (``pip install "fastseg[nifti]"``).
"""
from __future__ import annotations

import contextlib
import zlib
from importlib import resources
from pathlib import Path

from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np

from ._validation import check_path

if TYPE_CHECKING:
    from sklearn.utils import Bunch

__all__ = ["load_sample", "load_slices", "load_case", "save_case_prediction", "MODALITIES"]

#: Modality suffixes of a BraTS case directory, in fastseg's channel order (T1, T2, T1C, FLAIR).
MODALITIES = ("t1", "t2", "t1ce", "flair")


def load_sample() -> Bunch:
    """The real BraTS sample shipped inside fastseg: one slice of each of 20 patients.

    Returns
    -------
    Bunch with
        ``images`` (20, 240, 240, 4) float32 (T1, T2, T1C, FLAIR, z-normalised per volume),
        ``masks`` (20, 240, 240) bool (whole tumour), ``brain`` (20, 240, 240) bool,
        ``patients`` (20,) str, ``split`` (20,) str: 17 ``"train"`` and 3 ``"test"`` patients.

    Notes
    -----
    BraTS data are for research use; cite the papers listed in
    ``fastseg/data/README.md`` (and the project README) wherever you use them.

    Examples
    --------
    >>> from fastseg.datasets import load_sample
    >>> sample = load_sample()
    >>> sample.images.shape, int((sample.split == "test").sum())
    ((20, 240, 240, 4), 3)
    """
    from sklearn.utils import Bunch

    with resources.files("fastseg").joinpath("data", "brats_sample.npz").open("rb") as fh:
        with np.load(fh, allow_pickle=False) as npz:
            return Bunch(**{name: npz[name] for name in npz.files})


def _first(folder: Path, names):
    for name in names:
        if (folder / name).exists():
            return folder / name
    return None


def load_slices(path, split: str = "train") -> Bunch:
    """Load slices, masks, brain masks and patient ids from a brats2d-style folder or an ``.npz`` file.

    Parameters
    ----------
    path : str or os.PathLike
        A folder holding ``{split}_x.npy`` (N, H, W, C), ``{split}_y.npy`` (N, H, W), and
        optionally ``{split}_brain.npy`` and ``{split}_patients.txt`` (one id per line); a folder
        with a single ``*_x.npy`` is read whatever its prefix.  Or an ``.npz`` with keys
        ``x``/``images``, ``y``/``masks`` and optionally ``brain`` and ``patient``/``patients``.
    split : str, default="train"
        The file prefix to read in a folder.

    Returns
    -------
    Bunch with ``images``, ``masks`` (or None if absent), ``brain`` (or None), ``patients``
    (one id per slice; the slice index when absent).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist or holds no images.
    ValueError
        If the arrays' shapes do not agree.
    """
    path = Path(check_path(path))
    if not path.exists():
        raise FileNotFoundError(f"no data at {str(path)!r}")
    if path.is_file():
        if path.suffix != ".npz":
            raise ValueError(f"data must be a folder or an .npz file, got {str(path)!r}")
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
        images = data.get("x", data.get("images"))
        if images is None:
            raise ValueError(f"{str(path)!r} has no 'x' or 'images' array")
        masks = data.get("y", data.get("masks"))
        brain = data.get("brain")
        patients = data.get("patient", data.get("patients"))
    else:
        x_file = path / f"{split}_x.npy"
        if not x_file.exists():
            candidates = sorted(path.glob("*_x.npy"))
            if len(candidates) != 1:
                raise FileNotFoundError(
                    f"{str(path)!r} has no {split}_x.npy"
                    + (f" (found {[c.name for c in candidates]}; choose one with split=)" if candidates else "")
                )
            x_file = candidates[0]
        prefix = x_file.name[: -len("x.npy")]
        images = np.load(x_file, allow_pickle=False)
        y_file = path / f"{prefix}y.npy"
        masks = np.load(y_file, allow_pickle=False) if y_file.exists() else None
        b_file = path / f"{prefix}brain.npy"
        brain = np.load(b_file, allow_pickle=False) if b_file.exists() else None
        p_file = path / f"{prefix}patients.txt"
        patients = np.array(p_file.read_text().split()) if p_file.exists() else None
    n = images.shape[0] if images.ndim == 4 else -1
    if images.ndim != 4:
        raise ValueError(f"images must have shape (N, H, W, C), got shape {images.shape}")
    for name, arr in (("masks", masks), ("brain", brain)):
        if arr is not None and arr.shape != images.shape[:3]:
            raise ValueError(f"{name} must have shape {images.shape[:3]}, got shape {arr.shape}")
    if patients is None:
        patients = np.arange(n).astype(str)
    if len(patients) != n:
        raise ValueError(f"there must be one patient id per slice ({n}), got {len(patients)}")
    from sklearn.utils import Bunch

    return Bunch(images=images, masks=None if masks is None else masks.astype(bool), brain=brain,
                 patients=np.asarray(patients))


def _nibabel():
    try:
        import nibabel
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ImportError('reading and writing NIfTI needs nibabel: pip install "fastseg[nifti]"') from None
    return nibabel


def load_case(case_dir) -> Bunch:
    """Read a BraTS case as fastseg slices, in any layout :func:`fastseg.io.find_case` detects.

    Parameters
    ----------
    case_dir : str or os.PathLike
        A case directory (BraTS 2018-2021 ``*_t1``, ``*_t2``, ``*_t1ce``, ``*_flair`` and optionally
        ``*_seg``; BraTS 2023+ ``*-t1n``, ``*-t2w``, ``*-t1c``, ``*-t2f``, ``*-seg``), or a 4-D file.

    Returns
    -------
    Bunch with
        ``images`` (Z, H, W, 4) float32: each modality z-scored over its whole volume, axial slice
        ``z`` as ``vol[:, :, z].T``; ``brain`` (Z, H, W) bool (non-zero in any raw modality);
        ``seg`` (Z, H, W) bool whole tumour (``seg > 0``) or None; ``affine`` and ``header`` of
        the FLAIR volume, and ``shape`` of the volumes, for writing a prediction back; and the
        further fields of :func:`fastseg.io.read_case` (``labels``, ``convention``, ``spacing``, ...).
        Volumes in another orientation are brought to the canonical one first.

    Raises
    ------
    FileNotFoundError
        If the folder or one of the four modalities is missing.
    ValueError
        If the volumes are not 3-D or their shapes differ.
    """
    from sklearn.utils import Bunch

    return Bunch(**vars(_read_case(case_dir)))


@contextlib.contextmanager
def _readable(path: Path):
    """Report a damaged NIfTI file (truncated, not gzip, a corrupt header) as a ValueError naming it."""
    try:
        yield
    except (EOFError, OSError, zlib.error, ValueError) as exc:  # a truncated or corrupt .nii.gz (gzip's BadGzipFile is an OSError)
        raise ValueError(f"{path.name} is damaged or truncated ({type(exc).__name__}: {exc})") from None
    except Exception as exc:  # nibabel's ImageFileError and header errors: not a NIfTI file it can read
        if type(exc).__module__.startswith("nibabel"):
            raise ValueError(f"{path.name} is not a readable NIfTI file ({type(exc).__name__}: {exc})") from None
        raise


def _read_case(case_dir) -> SimpleNamespace:
    """:func:`load_case`'s fields, without scikit-learn (the ``fastseg`` command's predict path)."""
    from .io import find_case, read_case

    case_dir = Path(check_path(case_dir, "case_dir"))
    if not case_dir.exists():
        raise FileNotFoundError(f"no BraTS case directory at {str(case_dir)!r}")
    return read_case(find_case(case_dir))


def save_case_prediction(masks, case: Bunch, path) -> Path:
    """Write (Z, H, W) slice masks as a NIfTI segmentation volume with the case's affine and header.

    The file is written to a temporary file beside ``path`` and renamed into
    place, so an interrupted write leaves nothing half-written.  Voxels are
    uint8: 1 = tumour, 0 = not.
    """
    from .io import write_like

    return write_like(case, masks, path)
