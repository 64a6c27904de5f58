"""Reading cases in every common BraTS layout, in any orientation, and writing predictions back.

Three steps, each its own function:

1. **Find** (:func:`find_case`, :func:`find_cases`): a path -> :class:`Case` descriptions (the case's
   name, its four channel sources in fastseg's order T1, T2, T1C, FLAIR, and its label source with
   the label convention).  The layout is detected from the file names:

   ==============================  =================================================================
   layout                          files
   ==============================  =================================================================
   ``brats2018`` (2018-2021)       ``<case>/<case>_t1.nii.gz``, ``_t2``, ``_t1ce``, ``_flair``, ``_seg``
   ``brats2023`` (2023 and later)  ``<case>/<case>-t1n.nii.gz``, ``-t2w``, ``-t1c``, ``-t2f``, ``-seg``
                                   (GLI, MEN, MET, PED, SSA: the same names)
   ``msd`` (Decathlon Task01)      one 4-D file per case, channels FLAIR, T1w, T1gd, T2w; labels in
                                   ``../labelsTr/<case>.nii.gz``; ``dataset.json``'s ``modality``
                                   overrides the channel order
   ``nnunet`` (raw)                ``<case>_0000.nii.gz`` ... ``_0003`` side by side; the channel
                                   names from ``dataset.json`` (``channel_names`` or ``modality``),
                                   in the folder or its parent; labels in ``../labelsTr``
   ``channels``                    an explicit mapping ``{"t1": ..., "t2": ..., "t1c": ..., "flair": ...}``
   ==============================  =================================================================

2. **Read** (:func:`read_case`): each channel's stored integers are brought to the canonical
   orientation (:data:`CANONICAL_AXCODES`, that of the BraTS volumes the models are trained on)
   by an exact permutation and flip of the voxel grid read from the affine (``nibabel.orientations``),
   before any arithmetic; then each channel is z-scored over its whole volume.  The same case in any
   layout and any of the 48 axis orientations gives bit-identical model inputs.

3. **Write** (:func:`write_like`): a (Z, H, W) result in the canonical orientation goes back to the
   input's own orientation and is written with the input's affine and header, atomically.

Label conventions (:data:`LABEL_CONVENTIONS`): BraTS 2018-2021 (1 necrotic / non-enhancing core,
2 oedema, 4 enhancing), BraTS 2023+ (1, 2, 3 enhancing), MSD (1 oedema, 2 non-enhancing,
3 enhancing).  In each the whole tumour is every non-zero label.

Reading NIfTI needs the optional ``nibabel`` package (``pip install "fastseg[nifti]"``).
"""
from __future__ import annotations

import json
import re
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ._validation import check_path

__all__ = [
    "CANONICAL_AXCODES",
    "CHANNELS",
    "LABEL_CONVENTIONS",
    "TRAINING_SPACING",
    "Case",
    "NoBrainWarning",
    "Source",
    "find_case",
    "find_cases",
    "label_map",
    "read_case",
    "read_label_volume",
    "regions",
    "write_like",
]

#: fastseg's channel order.
CHANNELS = ("t1", "t2", "t1c", "flair")

#: Orientation (nibabel axis codes) of the BraTS volumes the models are trained on; every case is
#: brought to it before segmentation.
CANONICAL_AXCODES = ("L", "P", "S")

#: Voxel size (mm) of the training volumes; other spacings are reported.
TRAINING_SPACING = (1.0, 1.0, 1.0)

#: Label value(s) of each BraTS region, per label convention.
LABEL_CONVENTIONS = {
    "brats2018": {"whole tumour": (1, 2, 4), "tumour core": (1, 4), "enhancing tumour": (4,)},
    "brats2023": {"whole tumour": (1, 2, 3), "tumour core": (1, 3), "enhancing tumour": (3,)},
    "msd": {"whole tumour": (1, 2, 3), "tumour core": (2, 3), "enhancing tumour": (3,)},
}

#: Volumes with more voxels are refused from their header, before any data are read (the model
#: inputs alone take 16 bytes a voxel).
MAX_VOXELS = 2**25

_SUFFIXES = {
    "brats2018": {"t1": "_t1", "t2": "_t2", "t1c": "_t1ce", "flair": "_flair", "seg": "_seg"},
    "brats2023": {"t1": "-t1n", "t2": "-t2w", "t1c": "-t1c", "flair": "-t2f", "seg": "-seg"},
}
_MSD_ORDER = {"flair": 0, "t1": 1, "t1c": 2, "t2": 3}
_NNUNET_FILE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})\.nii(\.gz)?$")
#: Channel names of dataset.json files, lower-case, without spaces, dashes and underscores.
_CHANNEL_NAMES = {
    "t1": "t1", "t1w": "t1", "t1n": "t1", "nativet1": "t1", "t1native": "t1",
    "t2": "t2", "t2w": "t2",
    "t1ce": "t1c", "t1c": "t1c", "t1gd": "t1c", "t1post": "t1c", "t1contrast": "t1c", "t1wce": "t1c",
    "flair": "flair", "t2f": "flair", "t2flair": "flair",
}


class NoBrainWarning(UserWarning):
    """A channel (or the whole case) holds only zeros: nothing to segment there."""


@dataclass(frozen=True)
class Source:
    """One volume on disk: a 3-D NIfTI file, or volume ``index`` along the 4th axis of a 4-D one."""

    path: Path
    index: int | None = None

    def __str__(self) -> str:
        return self.path.name + ("" if self.index is None else f"[{self.index}]")


@dataclass(frozen=True)
class Case:
    """Where a case's volumes are: its name, layout, channels (T1, T2, T1C, FLAIR) and labels.

    Attributes
    ----------
    name : str
        The case's name (its directory, its 4-D file or its nnU-Net prefix).
    layout : str
        ``"brats2018"``, ``"brats2023"``, ``"msd"``, ``"nnunet"`` or ``"channels"``.
    channels : tuple of 4 Source
        T1, T2, T1C, FLAIR.
    label : Source or None
        The ground truth, if the layout has it.
    convention : str or None
        The label convention (a key of :data:`LABEL_CONVENTIONS`), None if unknown.
    """

    name: str
    layout: str
    channels: tuple
    label: Source | None = None
    convention: str | None = None


def _nibabel():
    try:
        import nibabel
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ImportError('reading and writing NIfTI needs nibabel: pip install "fastseg[nifti]"') from None
    return nibabel


def _stem(path: Path) -> str | None:
    """The name without ``.nii.gz`` / ``.nii``; None for other files and hidden ones."""
    name = path.name
    if name.startswith("."):
        return None
    for ext in (".nii.gz", ".nii"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return None


def _nifti_files(folder: Path) -> list:
    return sorted(p for p in folder.iterdir() if _stem(p) is not None and p.is_file())


# ----------------------------------------------------------------------------- finding cases

def _by_suffix(folder: Path, files: list, suffixes: dict) -> dict:
    """``{key: path}`` of the files whose stem ends with each suffix (several -> ValueError)."""
    found = {}
    for key, suffix in suffixes.items():
        matches = [f for f in files if _stem(f).lower().endswith(suffix.lower())]
        if len(matches) > 1:
            raise ValueError(f"case {str(folder)!r} has several files for {key} ({suffix}): "
                             f"{[m.name for m in matches]}")
        if matches:
            found[key] = matches[0]
    return found


def _brats_case(folder: Path, files: list) -> Case | None:
    """The BraTS 2018 or 2023 case in ``folder``; None if it holds neither's files."""
    best = None
    for layout, suffixes in _SUFFIXES.items():
        found = _by_suffix(folder, files, suffixes)
        channels = [c for c in CHANNELS if c in found]
        if len(channels) == 4:
            convention = "brats2018" if layout == "brats2018" else "brats2023"
            label = Source(found["seg"]) if "seg" in found else None
            return Case(folder.name, layout, tuple(Source(found[c]) for c in CHANNELS), label, convention)
        if channels and (best is None or len(channels) > len(best[1])):
            best = (layout, channels)
    if best is not None:  # some of a layout's files but not all: say which are missing
        layout, present = best
        names = _SUFFIXES[layout]
        missing = [names[c].lstrip("_-") for c in CHANNELS if c not in present]
        every = ",".join(names[c].lstrip("_-") for c in CHANNELS)
        sep = names["t1"][0]
        raise FileNotFoundError(f"case {str(folder)!r} has no volume for modality(ies) {missing} "
                                f"(expected files named *{sep}{{{every}}}.nii.gz)")
    return None


def _channel_key(name: str) -> str | None:
    return _CHANNEL_NAMES.get(re.sub(r"[\s_\-]", "", str(name)).lower())


def _dataset_json(folder: Path) -> dict | None:
    for candidate in (folder / "dataset.json", folder.parent / "dataset.json"):
        if candidate.is_file():
            try:
                data = json.loads(candidate.read_text())
            except (ValueError, UnicodeDecodeError) as exc:
                raise ValueError(f"{str(candidate)!r} is not valid JSON ({exc})") from None
            if not isinstance(data, dict):
                raise ValueError(f"{str(candidate)!r} must hold a JSON object")
            return data
    return None


def _channel_order(dataset: dict | None, default: dict | None, where: Path) -> dict:
    """``{channel: index}`` from dataset.json's ``channel_names`` (nnU-Net v2) or ``modality`` (MSD, v1)."""
    names = None if dataset is None else dataset.get("channel_names", dataset.get("modality"))
    if names is None:
        if default is None:
            raise ValueError(f"{str(where)!r}: nnU-Net channel files without a dataset.json naming the channels; "
                             "add one, or pass the order as --channels t1=N t2=N t1c=N flair=N")
        return dict(default)
    order = {}
    for index, name in dict(names).items():
        key = _channel_key(name)
        if key is not None and key not in order:
            order[key] = int(index)
    missing = [c for c in CHANNELS if c not in order]
    if missing:
        raise ValueError(f"dataset.json near {str(where)!r} names the channels {dict(names)}, "
                         f"none of which is {missing}")
    return order


def _label_convention(dataset: dict | None, default: str | None) -> str | None:
    """The label convention of dataset.json's ``labels`` (name -> value or value -> name)."""
    labels = None if dataset is None else dataset.get("labels")
    if not isinstance(labels, dict):
        return default
    values = {}
    for a, b in labels.items():
        name, value = (a, b) if not str(a).isdigit() else (b, a)
        if isinstance(value, (int, str)) and str(value).isdigit():
            values[str(name).lower()] = int(value)
    enhancing = [v for n, v in values.items() if "enhanc" in n and "non" not in n]
    oedema = [v for n, v in values.items() if "edema" in n]
    # region-based labels (nnU-Net v2's BraTS datasets): {"tumor core": [2, 3], ...}
    core = [sorted(int(x) for x in v) for n, v in labels.items() if "core" in str(n).lower() and isinstance(v, list)]
    if enhancing == [4]:
        return "brats2018"
    if enhancing == [3]:
        if len(oedema) == 1:
            return {1: "msd", 2: "brats2023"}.get(oedema[0], default)
        if len(core) == 1:
            return {(2, 3): "msd", (1, 3): "brats2023"}.get(tuple(core[0]), default)
    return default


def _labels_beside(folder: Path, name: str) -> Source | None:
    """``../labelsTr/<name>.nii.gz`` (or ``labelsTs``, or ``.nii``) of an ``imagesTr`` folder."""
    for sub in ("labelsTr", "labelsTs", "labels"):
        for ext in (".nii.gz", ".nii"):
            candidate = folder.parent / sub / f"{name}{ext}"
            if candidate.is_file():
                return Source(candidate)
    return None


def _nnunet_cases(folder: Path, files: list, order: dict | None) -> list:
    groups = {}
    for f in files:
        m = _NNUNET_FILE.match(f.name)
        if m:
            groups.setdefault(m["case"], {})[int(m["channel"])] = f
    if not groups:
        return []
    dataset = _dataset_json(folder)
    order = order if order is not None else _channel_order(dataset, None, folder)
    convention = _label_convention(dataset, None)
    cases = []
    for name, channels in sorted(groups.items()):
        missing = [c for c in CHANNELS if order[c] not in channels]
        if missing:
            raise FileNotFoundError(f"nnU-Net case {name!r} in {str(folder)!r} has no file for "
                                    f"{[f'{name}_{order[c]:04d}' for c in missing]}")
        cases.append(Case(name, "nnunet", tuple(Source(channels[order[c]]) for c in CHANNELS),
                          _labels_beside(folder, name), convention))
    return cases


def _msd_case(path: Path, order: dict | None = None) -> Case:
    folder = path.parent
    dataset = _dataset_json(folder)
    order = order if order is not None else _channel_order(dataset, _MSD_ORDER, folder)
    name = _stem(path)
    return Case(name, "msd", tuple(Source(path, order[c]) for c in CHANNELS), _labels_beside(folder, name),
                _label_convention(dataset, "msd"))


def _header_shape(path: Path) -> tuple:
    """A NIfTI file's shape from its header alone (damaged files: ValueError naming them)."""
    from .datasets import _readable

    with _readable(path):
        return tuple(_nibabel().load(path).shape)


def _check_channels(channels) -> dict | None:
    if channels is None:
        return None
    if not isinstance(channels, dict):
        raise TypeError(f"channels must be a dict mapping {CHANNELS} (and optionally 'seg') to file "
                        f"name suffixes, paths or channel indices, got {type(channels).__name__}")
    keys = {("t1c" if k == "t1ce" else k) for k in channels}
    unknown = keys - set(CHANNELS) - {"seg"}
    if unknown or not set(CHANNELS) <= keys:
        raise ValueError(f"channels must map each of {CHANNELS} (and optionally 'seg'), got keys {sorted(channels)}")
    return {("t1c" if k == "t1ce" else k): str(v) for k, v in channels.items()}


def _mapped_case(folder: Path, files: list, channels: dict) -> Case | None:
    """The case of an explicit mapping: each value a file in ``folder`` (its name, or the end of its
    name without extension) or an existing path."""
    found = {}
    for key, value in channels.items():
        if value.isdigit():
            continue
        direct = Path(value)
        if direct.is_file():
            found[key] = direct
            continue
        matches = [f for f in files if f.name == value or _stem(f).endswith(value)]
        if len(matches) > 1:
            raise ValueError(f"--channels {key}={value} matches several files in {str(folder)!r}: "
                             f"{[m.name for m in matches]}")
        if matches:
            found[key] = matches[0]
    if not all(c in found for c in CHANNELS):
        return None
    label = Source(found["seg"]) if "seg" in found else None
    return Case(folder.name, "channels", tuple(Source(found[c]) for c in CHANNELS), label, None)


def _indices(channels: dict | None) -> dict | None:
    """An explicit mapping of channel indices (``t1=1 ...``), or None."""
    if channels is None or not all(channels[c].isdigit() for c in CHANNELS):
        return None
    return {c: int(channels[c]) for c in CHANNELS}


def _describe_folder(folder: Path) -> str:
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir() if not p.name.startswith("."))
    shown = ", ".join(entries[:8]) + (f", ... ({len(entries)} entries)" if len(entries) > 8 else "")
    return (f"{str(folder)!r} holds no case fastseg can read (found: {shown or 'nothing'}); expected "
            "<case>_{t1,t2,t1ce,flair}.nii.gz (BraTS 2018-2021), <case>-{t1n,t2w,t1c,t2f}.nii.gz (BraTS 2023+), "
            "4-D <case>.nii.gz files (MSD), <case>_000{0-3}.nii.gz (nnU-Net), folders of those, "
            "or --channels t1=... t2=... t1c=... flair=...")


def find_case(path, channels: dict | None = None) -> Case:
    """Describe the one case at ``path``: a case directory or a 4-D NIfTI file.

    Parameters
    ----------
    path : str or os.PathLike
        A BraTS 2018-2021 or 2023+ case directory, a 4-D (MSD) file, a folder holding one nnU-Net case,
        or, with ``channels``, a folder holding the mapped files.
    channels : dict, optional
        ``{"t1": ..., "t2": ..., "t1c": ..., "flair": ...}`` and optionally ``"seg"``: each a file name,
        the end of a file name (without ``.nii.gz``), or an existing path; or, for 4-D files and nnU-Net
        channel files, all channel indices (``"0"``, ``"1"``, ...).

    Returns
    -------
    Case

    Raises
    ------
    FileNotFoundError
        If nothing is at ``path``, it holds no case (the message lists what was found and what was
        expected), or a case misses a channel.
    ValueError
        If ``path`` holds several cases.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from fastseg.io import find_case
    >>> folder = pathlib.Path(tempfile.mkdtemp()) / "BraTS-GLI-00001-000"
    >>> folder.mkdir()
    >>> for m in ("t1n", "t2w", "t1c", "t2f", "seg"):
    ...     _ = (folder / f"{folder.name}-{m}.nii.gz").write_bytes(b"")
    >>> case = find_case(folder)
    >>> case.layout, [s.path.name[-11:] for s in case.channels], case.convention
    ('brats2023', ['-t1n.nii.gz', '-t2w.nii.gz', '-t1c.nii.gz', '-t2f.nii.gz'], 'brats2023')
    """
    cases, single = _find(path, channels)
    if len(cases) != 1:
        raise ValueError(f"{str(path)!r} holds {len(cases)} cases, not one: {[c.name for c in cases][:5]}"
                         + (" ..." if len(cases) > 5 else ""))
    return cases[0]


def find_cases(path, channels: dict | None = None) -> list:
    """Describe every case at ``path``: one case (as :func:`find_case`) or a folder of cases.

    A folder of cases holds case directories (any layout), 4-D files (MSD), or nnU-Net channel files
    side by side.  Cases are sorted by name.

    Parameters
    ----------
    path : str or os.PathLike
    channels : dict, optional
        As for :func:`find_case`; applied to every case.

    Returns
    -------
    list of Case

    Raises
    ------
    FileNotFoundError
        If nothing is at ``path``, or it holds no case: the message lists what was found and what
        was expected.
    ValueError
        If a file given as a case is not a 4-D NIfTI volume, or two cases share a name.
    """
    return _find(path, channels)[0]


def _find(path, channels) -> tuple:
    """(cases, single): ``single`` when ``path`` is one case (a case directory or a file)."""
    path = Path(check_path(path, "path"))
    channels = _check_channels(channels)
    if not path.exists():
        raise FileNotFoundError(f"no case or folder at {str(path)!r}")
    if path.is_file():
        if _stem(path) is None:
            raise ValueError(f"{str(path)!r} is not a NIfTI file (.nii or .nii.gz)")
        shape = _header_shape(path)
        if len(shape) != 4 or shape[3] < 4:
            raise ValueError(f"{path.name} must be a 4-D volume of 4 channels (MSD layout) to be a case by itself, "
                             f"got shape {shape}")
        return [_msd_case(path, _indices(channels))], True
    files = _nifti_files(path)
    if channels is not None and _indices(channels) is None:
        case = _mapped_case(path, files, channels)
        if case is not None:
            return [case], True
        cases = []
        for sub in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
            found = _mapped_case(sub, _nifti_files(sub), channels)
            if found is not None:
                cases.append(found)
        if not cases:
            raise FileNotFoundError(_describe_folder(path).replace("holds no case fastseg can read",
                                                            f"holds no files matching --channels {channels}"))
        return cases, False
    case = _brats_case(path, files)
    if case is not None:
        return [case], True
    nnunet = _nnunet_cases(path, files, _indices(channels))
    if nnunet:
        return nnunet, False
    cases = []
    for sub in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        found = _brats_case(sub, _nifti_files(sub))
        if found is None:
            found_nnunet = _nnunet_cases(sub, _nifti_files(sub), _indices(channels))
            if len(found_nnunet) == 1:
                found = found_nnunet[0]
        if found is not None:
            cases.append(found)
    for f in files:
        try:
            shape = _header_shape(f)
        except ValueError:  # a damaged file among the cases: reading it will report it as a failed case
            shape = (0, 0, 0, 4)
        if len(shape) == 4 and shape[3] >= 4:
            cases.append(_msd_case(f, _indices(channels)))
    if not cases:
        raise FileNotFoundError(_describe_folder(path))
    names = [c.name for c in cases]
    if len(set(names)) != len(names):
        raise ValueError(f"{str(path)!r} holds several cases named {sorted({n for n in names if names.count(n) > 1})}")
    return sorted(cases, key=lambda c: c.name), False


# ----------------------------------------------------------------------------- reading

#: A file's data are read only when its header promises at most this many bytes.
MAX_FILE_BYTES = 2**29


def _load(source: Source, cache: dict | None = None):
    """(image, the source's 3-D shape) after every check a header allows, the data then read whole.

    A ``.nii.gz`` is decompressed to its end once (within a bound set by its header), so that gzip's
    CRC and length checks catch damaged data; nibabel then reads the volume from memory.
    """
    if cache is not None and source.path in cache:
        img = cache[source.path]
    else:
        img = _open(source.path)
        if cache is not None and source.index is not None:  # the channels of one 4-D file: read once
            cache[source.path] = img
    shape = tuple(int(s) for s in img.shape)
    expected = 3 if source.index is None else 4
    if len(shape) != expected:
        what = "a 3-D volume" if expected == 3 else "a 4-D volume (channels along the 4th axis)"
        raise ValueError(f"{source.path.name} must be {what}, got shape {shape}")
    if source.index is not None and not 0 <= source.index < shape[3]:
        raise ValueError(f"{source.path.name} has {shape[3]} channels, no channel {source.index}")
    if not np.all(np.isfinite(img.affine)) or abs(np.linalg.det(img.affine[:3, :3])) < 1e-12:
        raise ValueError(f"{source.path.name} has an invalid affine (not finite or singular)")
    return img, shape[:3]


def _open(path: Path):
    import gzip

    from .datasets import _readable

    nib = _nibabel()
    with _readable(path):
        img = nib.load(path)
        shape = tuple(int(s) for s in img.shape)
        itemsize = img.header.get_data_dtype().itemsize
        offset = int(img.header.get_data_offset())
    if min(shape, default=0) < 1 or int(np.prod(shape[:3], dtype=np.int64)) > MAX_VOXELS:
        raise ValueError(f"{path.name} has shape {shape}: fastseg reads volumes of at most {MAX_VOXELS} voxels, "
                         "at least 1 along each axis")
    nbytes = int(np.prod(shape, dtype=np.int64)) * itemsize
    if nbytes > MAX_FILE_BYTES:
        raise ValueError(f"{path.name} has shape {shape}: {nbytes} bytes of data, more than fastseg reads "
                         f"({MAX_FILE_BYTES})")
    if not path.name.endswith(".gz"):
        return img
    limit = offset + nbytes + 2**20
    with _readable(path):
        with gzip.open(path, "rb") as fh:
            data = fh.read(limit + 1)  # to the end of the stream: its CRC and length are checked
        if len(data) > limit:
            raise ValueError(f"{path.name} holds more data than its header says")
        if len(data) < offset + nbytes:
            raise ValueError(f"{path.name} is damaged or truncated (its header promises {offset + nbytes} bytes, "
                             f"it holds {len(data)})")
        return type(img).from_bytes(data)


def _raw(img, source: Source) -> np.ndarray:
    """The stored values of a source, as nibabel gives them (integers stay integers)."""
    from .datasets import _readable

    proxy = img.dataobj
    with _readable(source.path):
        if getattr(proxy, "slope", None) == 1 and getattr(proxy, "inter", None) == 0:
            data = proxy.get_unscaled() if source.index is None else np.asarray(proxy[..., source.index])
        else:
            data = np.asarray(proxy if source.index is None else proxy[..., source.index], dtype=np.float64)
    if data.dtype.kind not in "iuf":
        raise ValueError(f"{source} holds {data.dtype} values, not real numbers")
    return data


def _orientation(affine: np.ndarray) -> np.ndarray:
    """The nibabel transform from the affine's voxel axes to the canonical ones."""
    from nibabel import orientations

    return orientations.ornt_transform(orientations.io_orientation(affine),
                                       orientations.axcodes2ornt(CANONICAL_AXCODES))


def _to_canonical(data: np.ndarray, transform: np.ndarray) -> np.ndarray:
    from nibabel.orientations import apply_orientation

    return apply_orientation(data, transform)


def _canonical_spacing(zooms, transform) -> tuple:
    spacing = [0.0] * 3
    for axis in range(3):
        spacing[int(transform[axis, 0])] = float(zooms[axis])
    return tuple(spacing)


def read_label_volume(source) -> SimpleNamespace:
    """A label map in the canonical orientation: for scoring predictions against ground truth.

    Parameters
    ----------
    source : str, os.PathLike or Source
        A 3-D NIfTI file of integer labels.

    Returns
    -------
    SimpleNamespace with ``labels`` (Z, H, W) int32 (slice ``z`` as :func:`read_case` gives it),
    ``spacing`` (the voxel size along the axes of ``labels``), ``affine`` and ``shape`` of the file,
    and ``canonical_affine`` (that of the canonical grid: two files of one grid in different
    orientations have the same).
    """
    if not isinstance(source, Source):
        source = Source(Path(check_path(source, "source")))
    img, shape = _load(source)
    transform = _orientation(img.affine)
    data = _raw(img, source)
    if data.dtype.kind == "f":
        if not np.all(np.isfinite(data)) or not np.array_equal(data, np.round(data)):
            raise ValueError(f"{source} must hold integer labels")
    labels = np.array(_to_canonical(data, transform).transpose(2, 1, 0), dtype=np.int32, order="C")
    spacing = _canonical_spacing(img.header.get_zooms()[:3], transform)
    from nibabel.orientations import inv_ornt_aff

    # the affine of the canonical grid: equal for two files of one grid, whatever their orientations
    canonical_affine = img.affine @ inv_ornt_aff(transform, shape)
    return SimpleNamespace(labels=labels, spacing=spacing[::-1], affine=img.affine, shape=shape,
                           canonical_affine=canonical_affine)


def read_case(case) -> SimpleNamespace:
    """Read a case as the model's inputs, in the canonical orientation.

    Each channel's stored values are reoriented (an exact permutation and flip of the voxel grid,
    from the affine) to :data:`CANONICAL_AXCODES`, then z-scored over the whole volume (background
    zeros included) in float64, and stored as float32 axial slices: slice ``z`` is ``vol[:, :, z].T``
    of the canonical volume (row = anterior to posterior).

    Parameters
    ----------
    case : Case, str or os.PathLike
        A :class:`Case`, or a path given to :func:`find_case`.

    Returns
    -------
    SimpleNamespace with
        ``images`` (Z, H, W, 4) float32 (T1, T2, T1C, FLAIR); ``brain`` (Z, H, W) bool (non-zero in any
        channel); ``seg`` (Z, H, W) bool whole tumour or None; ``labels`` (Z, H, W) int32 label map or
        None and its ``convention``; ``affine``, ``header`` and ``shape`` of the input (its FLAIR
        volume); ``spacing`` (mm, canonical x, y, z); ``axcodes`` (the input's orientation); ``name``,
        ``layout``, and ``canonical_shape``.

    Raises
    ------
    ValueError
        Damaged files, volumes that are not 3-D (or 4-D for MSD), channels of different shapes or
        affines, too large volumes, non-finite values.

    Warns
    -----
    NoBrainWarning
        When a channel, or every channel, holds only zeros.
    """
    if not isinstance(case, Case):
        case = find_case(case)
    nib = _nibabel()
    brain = images = None
    empty = []
    channels = _CanonicalChannels(case)
    for c, (source, raw) in enumerate(channels):
        if images is None:
            images = _new_images(raw.shape[::-1] + (len(CHANNELS),))
            brain = np.zeros(raw.shape[::-1], dtype=bool)  # (Z, Y, X): slice z, as the images
        # step (c): each channel z-scored over its whole volume in float64, as the training data were
        if not _zscore_into(raw, images, c, brain, source):
            empty.append(str(source))
        del raw
    grid = channels.grid
    if not brain.any():
        warnings.warn(f"case {case.name}: no brain found (every channel is zero)", NoBrainWarning, stacklevel=2)
    elif empty:
        warnings.warn(f"case {case.name}: {', '.join(empty)} hold(s) only zeros", NoBrainWarning, stacklevel=2)
    labels = seg = None
    if case.label is not None:
        truth = read_label_volume(case.label)
        if truth.shape != grid.shape:
            raise ValueError(f"{case.label} has shape {truth.shape}, but the images have {grid.shape}")
        if not np.allclose(truth.affine, grid.affine, rtol=0, atol=1e-3):
            raise ValueError(f"{case.label} has another affine than {case.channels[0]}")
        labels = truth.labels
        seg = labels > 0
    reference = grid.reference  # the last channel, FLAIR: its affine and header are written back
    return SimpleNamespace(
        images=images, brain=brain, seg=seg,
        affine=reference.affine, header=reference.header, shape=grid.shape, name=case.name,
        labels=labels, convention=case.convention, layout=case.layout,
        spacing=_canonical_spacing(reference.header.get_zooms()[:3], grid.transform),
        axcodes=tuple(nib.aff2axcodes(reference.affine)), canonical_shape=tuple(brain.shape[::-1]),
        transform=grid.transform)


#: An images array handed back with :func:`_recycle_images` once its case is done: the next
#: case of the same shape is read into it.  Reading cases one after another then reuses one block
#: of memory instead of asking the system for fresh pages each time, which costs more than the
#: reading itself on machines that take freed memory back.  Only callers that hand arrays back
#: (the command line's loop over cases) share memory this way; one per thread.
_SPARE = threading.local()


def _new_images(shape: tuple) -> np.ndarray:
    spare = getattr(_SPARE, "images", None)
    _SPARE.images = None
    if spare is not None and spare.shape == shape:
        return spare
    return np.empty(shape, dtype=np.float32)


def _recycle_images(images: np.ndarray | None) -> None:
    """Hand back the images of a case that is done with (nothing may read them afterwards); None
    lets the spare go."""
    _SPARE.images = images


#: Stored types z-scored by the compiled kernel (exact integer sums); others take the numpy route.
_KERNEL_TYPES = (np.int8, np.uint8, np.int16, np.uint16)


def _zscore_into(raw: np.ndarray, images: np.ndarray, c: int, brain: np.ndarray, source) -> bool:
    """Z-score one canonical (X, Y, Z) channel over all its voxels into ``images[..., c]`` (slice z
    = ``vol[:, :, z].T``) and mark its non-zero voxels in ``brain``; whether it has any.

    The arithmetic is float64 numpy's: ``vol = raw.astype(float64)``, ``dev = vol - vol.mean()``,
    ``std = sqrt(sum(dev**2) / size)`` summed in Fortran order, ``float32(dev / std)`` (a std of 0
    taken as 1).  Stored 8- and 16-bit integers (BraTS stores int16) go through a kernel that gives
    the same bits without float64 copies of the volume.
    """
    from ._ext import _normalize

    if raw.dtype.type in _KERNEL_TYPES:
        return _normalize.zscore_into_slices(raw, images, c, brain.view(np.uint8))[2]
    vol = np.array(raw, dtype=np.float64, order="F")
    nonzero = vol != 0
    brain |= nonzero.transpose(2, 1, 0)
    dev = np.subtract(vol, vol.mean())
    std = float(np.sqrt(np.multiply(dev, dev, out=vol).sum() / vol.size))
    if not np.isfinite(std):
        raise ValueError(f"{source} holds non-finite values")
    _normalize.divide_into_slices(dev, std if std > 0 else 1.0, images, c)
    return bool(nonzero.any())


class _CanonicalChannels:
    """Step (b) of reading a case: iterate over ``(source, stored values)`` of its channels, each
    checked against the first (shape, affine) and brought to the canonical orientation by an exact
    permutation and flip of its voxel grid (a view: nothing is computed).  After the loop, ``grid``
    holds the input's ``shape``, ``affine``, orientation ``transform`` and last image (``reference``).
    """

    def __init__(self, case: Case):
        self.case = case
        self.grid = None

    def __iter__(self):
        cache, first = {}, self.case.channels[0]
        for source in self.case.channels:
            img, shape = _load(source, cache)
            if self.grid is None:
                self.grid = SimpleNamespace(shape=shape, affine=img.affine, transform=_orientation(img.affine),
                                            reference=img)
            elif shape != self.grid.shape:
                raise ValueError(f"{source} has shape {shape}, but {first} has {self.grid.shape}")
            elif not np.allclose(img.affine, self.grid.affine, rtol=0, atol=1e-3):
                raise ValueError(f"{source} has another affine than {first} (the channels are not co-registered)")
            self.grid.reference = img
            yield source, _to_canonical(_raw(img, source), self.grid.transform)


def _check_convention(convention) -> str:
    """``convention`` if it names one of :data:`LABEL_CONVENTIONS`; a TypeError (not a string) or a
    ValueError (another name) that lists them otherwise."""
    if not isinstance(convention, str):
        raise TypeError(f"convention must be one of {sorted(LABEL_CONVENTIONS)}, got {convention!r}")
    if convention not in LABEL_CONVENTIONS:
        raise ValueError(f"convention must be one of {sorted(LABEL_CONVENTIONS)}, got {convention!r}")
    return convention


def regions(labels, convention: str) -> dict:
    """The BraTS regions of a label map: ``{"whole tumour": mask, "tumour core": ..., "enhancing tumour": ...}``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastseg.io import regions
    >>> r = regions(np.array([0, 1, 2, 3]), "msd")
    >>> {name: m.tolist() for name, m in r.items()}
    {'whole tumour': [False, True, True, True], 'tumour core': [False, False, True, True], 'enhancing tumour': [False, False, False, True]}
    """
    convention = _check_convention(convention)
    labels = np.asarray(labels)
    return {name: np.isin(labels, values) for name, values in LABEL_CONVENTIONS[convention].items()}


#: The label each convention writes for the part of a region outside the next one: the whole
#: tumour outside the core (oedema), the core outside the enhancing tumour, the enhancing tumour.
_REGION_LABELS = {"brats2018": (2, 1, 4), "brats2023": (2, 1, 3), "msd": (1, 2, 3)}


def label_map(found: dict, convention: str) -> np.ndarray:
    """A label map from the three nested regions: the inverse of :func:`regions`.

    Parameters
    ----------
    found : dict
        ``{"whole tumour": mask, "tumour core": mask, "enhancing tumour": mask}``, bool arrays of
        one shape, each inside the one before.
    convention : {"brats2018", "brats2023", "msd"}

    Returns
    -------
    ndarray of uint8

    Raises
    ------
    ValueError
        If the regions are not nested (a label map cannot hold a core outside the whole tumour).

    Examples
    --------
    >>> import numpy as np
    >>> from fastseg.io import label_map, regions
    >>> labels = np.array([0, 2, 1, 4])
    >>> label_map(regions(labels, "brats2018"), "brats2018").tolist()
    [0, 2, 1, 4]
    >>> label_map(regions(labels, "brats2018"), "msd").tolist()
    [0, 1, 2, 3]
    """
    names = tuple(LABEL_CONVENTIONS[_check_convention(convention)])
    if not isinstance(found, dict) or set(found) != set(names):
        raise TypeError(f"found must be a dict with the keys {list(names)}, got "
                        + (f"keys {sorted(found)}" if isinstance(found, dict) else type(found).__name__))
    masks = [np.asarray(found[name]) for name in names]
    if any(m.dtype != bool for m in masks) or len({m.shape for m in masks}) != 1:
        raise ValueError("the regions must be bool arrays of one shape, got "
                         f"{[(str(m.dtype), m.shape) for m in masks]}")
    for outer, inner, (a, b) in zip(masks, masks[1:], zip(names, names[1:])):
        if (inner & ~outer).any():
            raise ValueError(f"the regions must be nested: {b} has pixels outside {a}")
    out = np.zeros(masks[0].shape, dtype=np.uint8)
    for mask, value in zip(masks, _REGION_LABELS[convention]):
        out[mask] = value
    return out


def write_like(case: SimpleNamespace, slices, path, dtype=np.uint8) -> Path:
    """Write (Z, H, W) canonical slices as a volume in the input's orientation, affine and header.

    Parameters
    ----------
    case : the result of :func:`read_case`
    slices : array-like of shape (Z, H, W)
        Masks (written as uint8 0/1) or probabilities (``dtype=np.float32``).
    path : str or os.PathLike
        A ``.nii.gz`` or ``.nii`` file, written atomically.
    dtype : numpy dtype, default=np.uint8

    Returns
    -------
    pathlib.Path
    """
    from nibabel import orientations

    from .persistence import atomic_write

    nib = _nibabel()
    slices = np.asarray(slices)
    expected = tuple(case.canonical_shape[::-1])
    if slices.shape != expected:
        raise ValueError(f"slices must have shape {expected} (Z, H, W) for this case, got shape {slices.shape}")
    volume = slices.transpose(2, 1, 0).astype(dtype)
    back = orientations.ornt_transform(orientations.axcodes2ornt(CANONICAL_AXCODES),
                                       orientations.io_orientation(case.affine))
    volume = orientations.apply_orientation(volume, back)
    header = case.header.copy()
    header.set_data_dtype(dtype)
    if len(case.header.get_data_shape()) != 3:  # a 4-D (MSD) input: the output is one 3-D volume
        header.set_data_shape(volume.shape)
        if hasattr(header, "set_intent"):
            header.set_intent("none")
    if np.dtype(dtype).kind == "f" and hasattr(header, "set_slope_inter"):
        header.set_slope_inter(1.0, 0.0)
    img = nib.Nifti1Image(volume, case.affine, header)
    return atomic_write(path, lambda tmp: nib.save(img, tmp))
