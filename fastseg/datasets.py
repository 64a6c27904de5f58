"""Loading data: the shipped real sample, brats2d-style folders and .npz files, and BraTS NIfTI cases.

BraTS case directories hold one ``.nii.gz`` volume per modality
(``<case>_t1``, ``_t2``, ``_t1ce``, ``_flair``, and ``_seg`` for the ground
truth), 240 x 240 x 155 voxels.  :func:`load_case` turns one into fastseg's
slices: each modality z-scored over its whole volume (background zeros
included, as the training data were), axial slice ``z`` as ``vol[:, :, z].T``
(row = anterior to posterior), channels T1, T2, T1C, FLAIR.  Reading NIfTI
needs the optional ``nibabel`` package (``pip install "fastseg[nifti]"``).
"""
from __future__ import annotations

import contextlib
import zlib
from importlib import resources
from pathlib import Path

from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np

from ._ext import _normalize
from ._validation import check_path
from .persistence import atomic_write

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


def _case_file(case_dir: Path, suffix: str):
    for ext in (".nii.gz", ".nii"):
        matches = sorted(case_dir.glob(f"*_{suffix}{ext}"))
        if matches:
            return matches[0]
    return None


def load_case(case_dir) -> Bunch:
    """Read a BraTS case directory as fastseg slices.

    Parameters
    ----------
    case_dir : str or os.PathLike
        Folder with ``*_t1``, ``*_t2``, ``*_t1ce`` and ``*_flair`` ``.nii.gz`` (or ``.nii``)
        volumes of one shape, and optionally ``*_seg``.

    Returns
    -------
    Bunch with
        ``images`` (Z, H, W, 4) float32: each modality z-scored over its whole volume, axial slice
        ``z`` as ``vol[:, :, z].T``; ``brain`` (Z, H, W) bool (non-zero in any raw modality);
        ``seg`` (Z, H, W) bool whole tumour (``seg > 0``) or None; ``affine`` and ``header`` of
        the FLAIR volume, and ``shape`` of the volumes, for writing a prediction back.

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
    except (EOFError, OSError, zlib.error) as exc:  # a truncated or corrupt .nii.gz (gzip's BadGzipFile is an OSError)
        raise ValueError(f"{path.name} is damaged or truncated ({type(exc).__name__}: {exc})") from None
    except Exception as exc:  # nibabel's ImageFileError and header errors: not a NIfTI file it can read
        if type(exc).__module__.startswith("nibabel"):
            raise ValueError(f"{path.name} is not a readable NIfTI file ({type(exc).__name__}: {exc})") from None
        raise


def _read_case(case_dir) -> SimpleNamespace:
    """:func:`load_case`'s fields, without scikit-learn (the ``fastseg`` command's predict path)."""
    case_dir = Path(check_path(case_dir, "case_dir"))
    nib = _nibabel()
    if not case_dir.is_dir():
        raise FileNotFoundError(f"no BraTS case directory at {str(case_dir)!r}")
    files = {m: _case_file(case_dir, m) for m in MODALITIES}
    missing = [m for m, f in files.items() if f is None]
    if missing:
        raise FileNotFoundError(f"case {str(case_dir)!r} has no volume for modality(ies) {missing} "
                                f"(expected files named *_{{{','.join(MODALITIES)}}}.nii.gz)")
    # One modality at a time (its float64 volume is 71 MB for 240 x 240 x 155), through two buffers reused
    # for all four: (vol - mean) / std in float64, as brats2d was made, with numpy's own mean and std
    # (population std: the mean of the squared deviations), each deviation computed once.
    shape = reference = brain = vol = dev = images = None
    for c, m in enumerate(MODALITIES):
        with _readable(files[m]):
            img = nib.load(files[m])
        if len(img.shape) != 3:
            raise ValueError(f"{files[m].name} must be a 3-D volume, got shape {img.shape}")
        if shape is not None and img.shape != shape:
            raise ValueError(f"{files[m].name} has shape {img.shape}, but {files[MODALITIES[0]].name} has {shape}")
        if shape is None:
            shape = img.shape
            # NIfTI stores x fastest: Fortran-ordered volumes read straight, sum in the order brats2d
            # was made in, and their (Z, Y, X) transposes are C-contiguous slices
            vol, dev = np.empty(shape, order="F"), np.empty(shape, order="F")
            brain = np.zeros(shape, dtype=bool, order="F")
        reference = img  # the last, FLAIR, gives the affine and header
        proxy = img.dataobj
        with _readable(files[m]):
            if getattr(proxy, "slope", None) == 1 and getattr(proxy, "inter", None) == 0:
                vol[...] = proxy.get_unscaled()  # the stored integers, cast once (what scaling by 1 + 0 gives)
            else:
                vol[...] = np.asarray(proxy, dtype=np.float64)
        brain |= vol != 0
        np.subtract(vol, vol.mean(), out=dev)
        std = float(np.sqrt(np.multiply(dev, dev, out=vol).sum() / vol.size))
        if not np.isfinite(std):
            raise ValueError(f"{files[m].name} holds non-finite values")
        if images is None:
            images = np.empty(shape[::-1] + (len(MODALITIES),), dtype=np.float32)
        # (X, Y, Z) volume -> channel c of the (Z, Y, X) slices (slice z is vol[:, :, z].T), divided on the way
        _normalize.divide_into_slices(dev, std if std > 0 else 1.0, images, c)
    seg_file = _case_file(case_dir, "seg")
    seg = None
    if seg_file is not None:
        with _readable(seg_file):
            seg_vol = np.asarray(nib.load(seg_file).dataobj)
        if seg_vol.shape != shape:
            raise ValueError(f"{seg_file.name} has shape {seg_vol.shape}, but the images have {shape}")
        seg = (seg_vol > 0).transpose(2, 1, 0)
    return SimpleNamespace(
        images=np.ascontiguousarray(images), brain=np.ascontiguousarray(brain.transpose(2, 1, 0)),
        seg=None if seg is None else np.ascontiguousarray(seg), affine=reference.affine,
        header=reference.header, shape=shape, name=case_dir.name)


def save_case_prediction(masks, case: Bunch, path) -> Path:
    """Write (Z, H, W) slice masks as a NIfTI segmentation volume with the case's affine and header.

    The file is written to a temporary file beside ``path`` and renamed into
    place, so an interrupted write leaves nothing half-written.  Voxels are
    uint8: 1 = tumour, 0 = not.
    """
    nib = _nibabel()
    masks = np.asarray(masks)
    expected = tuple(case.shape[::-1])
    if masks.shape != expected:
        raise ValueError(f"masks must have shape {expected} (Z, H, W) for this case, got shape {masks.shape}")
    volume = masks.transpose(2, 1, 0).astype(np.uint8)
    header = case.header.copy()
    header.set_data_dtype(np.uint8)
    img = nib.Nifti1Image(volume, case.affine, header)
    return atomic_write(path, lambda tmp: nib.save(img, tmp))
