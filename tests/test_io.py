"""fastseg.io: every layout and every axis orientation of a shipped case gives the 2018 layout's inputs
and predictions bit for bit; spacing; hostile files get exit 2 and one line."""
from __future__ import annotations

import gzip
import itertools
import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from fastseg.cli import main

nib = pytest.importorskip("nibabel")

from fastseg import io as fio  # noqa: E402

SOURCE = "Brats18_2013_3_1"
MODALITIES = ("t1", "t2", "t1ce", "flair")


@pytest.fixture(scope="module")
def volumes(brats2d_dir):
    return brats2d_dir.parent / "brats_volumes"


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


# ----------------------------------------------------------------------------- writing a case into a layout

def _raw_case(volumes: Path, crop=None) -> dict:
    """The stored integers of the source case's channels and seg, and its affine (cropped if asked)."""
    folder = volumes / SOURCE
    out = {}
    for m in MODALITIES + ("seg",):
        img = nib.load(folder / f"{SOURCE}_{m}.nii.gz")
        data = np.asarray(img.dataobj)
        affine = img.affine.copy()
        if crop is not None:
            data = data[crop]
            shift = np.eye(4)
            shift[:3, 3] = [s.start or 0 for s in crop]
            affine = affine @ shift
        out[m] = data
    out["affine"] = affine
    return out


def _save(data, affine, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm")
    nib.save(img, path)
    return path


def _labels(seg: np.ndarray, convention: str) -> np.ndarray:
    """BraTS 2018 labels (1 core, 2 oedema, 4 enhancing) in another convention."""
    mapping = {"brats2018": {1: 1, 2: 2, 4: 4}, "brats2023": {1: 1, 2: 2, 4: 3}, "msd": {1: 2, 2: 1, 4: 3}}[convention]
    out = np.zeros_like(seg)
    for a, b in mapping.items():
        out[seg == a] = b
    return out


def write_layout(raw: dict, layout: str, root: Path, name: str = "Case_7") -> tuple:
    """Write ``raw`` into ``layout`` under ``root``: (the path to give --input, --channels or None)."""
    affine = raw["affine"]
    if layout == "brats2018":
        for m in MODALITIES + ("seg",):
            _save(raw[m], affine, root / name / f"{name}_{m}.nii.gz")
        return root / name, None
    if layout == "brats2023":
        for m, new in zip(MODALITIES + ("seg",), ("t1n", "t2w", "t1c", "t2f", "seg")):
            data = _labels(raw[m], "brats2023") if m == "seg" else raw[m]
            _save(data, affine, root / name / f"{name}-{new}.nii.gz")
        return root / name, None
    if layout == "msd":
        stack = np.stack([raw["flair"], raw["t1"], raw["t1ce"], raw["t2"]], axis=-1)
        _save(stack, affine, root / "imagesTr" / f"{name}.nii.gz")
        _save(_labels(raw["seg"], "msd"), affine, root / "labelsTr" / f"{name}.nii.gz")
        return root / "imagesTr" / f"{name}.nii.gz", None
    if layout == "nnunet":
        order = ("flair", "t1ce", "t1", "t2")  # an order of its own, named by dataset.json
        for i, m in enumerate(order):
            _save(raw[m], affine, root / "imagesTr" / f"{name}_{i:04d}.nii.gz")
        _save(_labels(raw["seg"], "msd"), affine, root / "labelsTr" / f"{name}.nii.gz")
        (root / "dataset.json").write_text(json.dumps({
            "channel_names": {"0": "FLAIR", "1": "T1Gd", "2": "T1", "3": "T2"},
            "labels": {"background": 0, "edema": 1, "non-enhancing tumor": 2, "enhancing tumour": 3}}))
        return root / "imagesTr", None
    if layout == "channels":
        for m, new in zip(MODALITIES + ("seg",), ("anat_T1w", "anat_T2w", "anat_T1w_gd", "anat_FLAIR", "mask")):
            _save(raw[m], affine, root / name / f"sub-{name}_{new}.nii.gz")
        return root / name, ["t1=_anat_T1w", "t2=_anat_T2w", "t1c=_anat_T1w_gd", "flair=_anat_FLAIR", "seg=_mask"]
    raise AssertionError(layout)


LAYOUTS = ("brats2018", "brats2023", "msd", "nnunet", "channels")
CROP = (slice(70, 170), slice(60, 200), slice(40, 100))  # around the tumour of the source case


@pytest.fixture(scope="module")
def cropped(volumes):
    return _raw_case(volumes, CROP)


def _read(path, channels):
    mapping = None if channels is None else dict(c.split("=", 1) for c in channels)
    return fio.read_case(fio.find_case(path, mapping))


def test_layouts_are_detected(cropped, tmp_path):
    expected = {"brats2018": "brats2018", "brats2023": "brats2023", "msd": "msd", "nnunet": "msd", "channels": None}
    for layout in LAYOUTS:
        path, channels = write_layout(cropped, layout, tmp_path / layout)
        mapping = None if channels is None else dict(c.split("=", 1) for c in channels)
        case = fio.find_case(path, mapping)
        assert case.layout == layout and case.name == "Case_7" and case.convention == expected[layout]
        assert case.label is not None


@pytest.mark.parametrize("layout", LAYOUTS[1:])
def test_every_layout_gives_the_2018_inputs_and_predictions_bit_for_bit(cropped, tmp_path, capsys, layout):
    reference_path, _ = write_layout(cropped, "brats2018", tmp_path / "ref")
    path, channels = write_layout(cropped, layout, tmp_path / layout)
    ref, case = _read(reference_path, None), _read(path, channels)
    for field in ("images", "brain", "seg"):
        np.testing.assert_array_equal(getattr(case, field), getattr(ref, field), err_msg=field)
    assert case.images.dtype == np.float32 and case.images.shape == ref.images.shape
    # the regions agree whatever the label convention (an explicit mapping has none: its labels are as written)
    if case.convention is None:
        np.testing.assert_array_equal(case.labels, ref.labels)
    for region in ("whole tumour", "tumour core", "enhancing tumour"):
        np.testing.assert_array_equal(fio.regions(case.labels, case.convention or "brats2018")[region],
                                      fio.regions(ref.labels, "brats2018")[region], err_msg=region)
    args = ["predict", "--input", path, "--out", tmp_path / "out.nii.gz"] + (["--channels", *channels] if channels else [])
    assert run(capsys, *args)[0] == 0
    assert run(capsys, "predict", "--input", reference_path, "--out", tmp_path / "ref.nii.gz")[0] == 0
    out, ref_out = nib.load(tmp_path / "out.nii.gz"), nib.load(tmp_path / "ref.nii.gz")
    np.testing.assert_array_equal(np.asarray(out.dataobj), np.asarray(ref_out.dataobj))
    assert out.shape == ref_out.shape and np.array_equal(out.affine, ref_out.affine)


def test_full_size_case_in_the_2023_layout_equals_the_shipped_2018_case(volumes, tmp_path, capsys, brats2d_dir):
    path, _ = write_layout(_raw_case(volumes), "brats2023", tmp_path)
    case, ref = _read(path, None), fio.read_case(fio.find_case(volumes / SOURCE))
    np.testing.assert_array_equal(case.images, ref.images)
    np.testing.assert_array_equal(case.images[67], np.load(brats2d_dir / "test_x.npy")[0])
    assert run(capsys, "predict", "--input", path, "--out", tmp_path / "a.nii.gz")[0] == 0
    assert run(capsys, "predict", "--input", volumes / SOURCE, "--out", tmp_path / "b.nii.gz")[0] == 0
    a, b = nib.load(tmp_path / "a.nii.gz"), nib.load(tmp_path / "b.nii.gz")
    np.testing.assert_array_equal(np.asarray(a.dataobj), np.asarray(b.dataobj))
    assert np.asarray(a.dataobj).any()


@pytest.mark.parametrize("stored", [np.int32, np.float32, np.uint16])
def test_stored_type_does_not_change_the_images(volumes, tmp_path, stored):
    """int16 goes through the compiled z-score, int32 and float32 through numpy; uint16 through the
    kernel's unsigned twin: the same stored values give the same images and brain, bit for bit."""
    raw = _raw_case(volumes, crop=(slice(40, 200), slice(30, 220), slice(50, 90)))
    assert raw["t1"].dtype == np.int16 and raw["t1"].min() >= 0
    for m in MODALITIES:
        name = f"{SOURCE}_{m}.nii.gz"
        _save(raw[m], raw["affine"], tmp_path / "int16" / SOURCE / name)
        _save(raw[m].astype(stored), raw["affine"], tmp_path / "other" / SOURCE / name)
    a, b = fio.read_case(tmp_path / "int16" / SOURCE), fio.read_case(tmp_path / "other" / SOURCE)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.brain, b.brain)
    assert a.images.shape == (40, 190, 160, 4) and a.brain.flags.c_contiguous


def test_load_case_fields_unchanged_for_the_2018_layout(volumes, brats2d_dir):
    from fastseg.datasets import load_case

    case = load_case(volumes / SOURCE)
    flair = nib.load(volumes / SOURCE / f"{SOURCE}_flair.nii.gz")
    assert case.shape == flair.shape and np.array_equal(case.affine, flair.affine)
    assert case.images.shape == (155, 240, 240, 4) and case.images.dtype == np.float32
    np.testing.assert_array_equal(case.images[67], np.load(brats2d_dir / "test_x.npy")[0])
    seg = np.asarray(nib.load(volumes / SOURCE / f"{SOURCE}_seg.nii.gz").dataobj)
    np.testing.assert_array_equal(case.seg, (seg > 0).transpose(2, 1, 0))
    np.testing.assert_array_equal(case.labels, seg.transpose(2, 1, 0))
    assert case.name == SOURCE and case.spacing == (1.0, 1.0, 1.0) and case.axcodes == ("L", "P", "S")


# ----------------------------------------------------------------------------- the 48 axis orientations

def _reorient(data: np.ndarray, affine: np.ndarray, perm: tuple, flips: tuple) -> tuple:
    """``data`` with its axes permuted and flipped, and the affine that keeps every voxel where it was."""
    out = np.transpose(data, perm)
    for axis, flip in enumerate(flips):
        if flip:
            out = np.flip(out, axis)
    # new voxel index j -> old index i: i[perm[k]] = j[k], or n_k - 1 - j[k] when axis k is flipped
    m = np.zeros((4, 4))
    m[3, 3] = 1
    for k, (p, flip) in enumerate(zip(perm, flips)):
        m[p, k] = -1 if flip else 1
        m[p, 3] = out.shape[k] - 1 if flip else 0
    return np.ascontiguousarray(out), affine @ m


ORIENTATIONS = [(p, f) for p in itertools.permutations(range(3)) for f in itertools.product((0, 1), repeat=3)]


def test_the_48_orientations_give_the_same_segmentation(volumes, tmp_path, capsys):
    raw = _raw_case(volumes, (slice(80, 150), slice(90, 170), slice(55, 80)))
    assert len(ORIENTATIONS) == 48 and len({fio.CANONICAL_AXCODES} | set()) == 1
    reference = None
    codes = set()
    for i, (perm, flips) in enumerate(ORIENTATIONS):
        case_dir = tmp_path / f"o{i}" / "Case"
        for m in MODALITIES:
            data, affine = _reorient(raw[m], raw["affine"], perm, flips)
            _save(data, affine, case_dir / f"Case_{m}.nii.gz")
        codes.add(nib.aff2axcodes(affine))
        out = tmp_path / f"o{i}" / "seg.nii.gz"
        code, _, err = run(capsys, "predict", "--input", case_dir, "--out", out, "--probabilities",
                           tmp_path / f"o{i}" / "p.nii.gz")
        assert code == 0, err
        written = nib.load(out)
        assert np.array_equal(written.affine, affine) and written.shape == data.shape
        # back to the source's grid by the inverse of the permutation and flips: the same mask every time
        back = np.asarray(written.dataobj)
        for axis, flip in enumerate(flips):
            if flip:
                back = np.flip(back, axis)
        back = np.transpose(back, np.argsort(perm))
        proba = np.asarray(nib.load(tmp_path / f"o{i}" / "p.nii.gz").dataobj)
        for axis, flip in enumerate(flips):
            if flip:
                proba = np.flip(proba, axis)
        proba = np.transpose(proba, np.argsort(perm))
        if reference is None:
            reference = (back, proba)
            assert back.any() and back.sum() < back.size // 2
        np.testing.assert_array_equal(back, reference[0], err_msg=f"orientation {perm} {flips}")
        np.testing.assert_array_equal(proba, reference[1], err_msg=f"orientation {perm} {flips}")
    assert len(codes) == 48


def test_ras_copy_of_a_case_is_segmented_as_the_original(volumes, tmp_path, capsys):
    """The issue's example: the case flipped to RAS (data and affine together) used to lose Dice."""
    raw = _raw_case(volumes)
    case_dir = tmp_path / "RAS"
    for m in MODALITIES + ("seg",):
        data, affine = _reorient(raw[m], raw["affine"], (0, 1, 2), (1, 1, 0))
        _save(data, affine, case_dir / f"RAS_{m}.nii.gz")
    assert nib.aff2axcodes(affine) == ("R", "A", "S")
    code, out_ras, _ = run(capsys, "predict", "--input", case_dir, "--out", tmp_path / "ras.nii.gz")
    code2, out_ref, _ = run(capsys, "predict", "--input", volumes / SOURCE, "--out", tmp_path / "ref.nii.gz")
    assert code == code2 == 0
    dice = lambda text: text.split("Dice against")[1].split(":")[1].split()[0]  # noqa: E731
    assert dice(out_ras) == dice(out_ref)


# ----------------------------------------------------------------------------- spacing

def test_other_spacing_warns_and_strict_refuses(cropped, tmp_path, capsys):
    raw = dict(cropped)
    raw["affine"] = raw["affine"] @ np.diag([1.0, 1.0, 2.0, 1.0])
    path, _ = write_layout(raw, "brats2018", tmp_path)
    case = _read(path, None)
    assert case.spacing == (1.0, 1.0, 2.0)
    code, _, err = run(capsys, "predict", "--input", path, "--out", tmp_path / "o.nii.gz")
    assert code == 0 and "warning: case Case_7 has voxels of 1 x 1 x 2 mm, not the 1 x 1 x 1 mm" in err
    code, _, err = run(capsys, "predict", "--input", path, "--out", tmp_path / "s.nii.gz", "--strict")
    assert code == 2 and err.count("\n") == 1 and "(--strict)" in err
    assert not (tmp_path / "s.nii.gz").exists()


# ----------------------------------------------------------------------------- bad layouts and bad cases

def test_unknown_folder_lists_what_was_found_and_expected(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    _save(np.zeros((4, 4, 4), np.int16), np.eye(4), tmp_path / "brain.nii.gz")
    code, _, err = run(capsys, "predict", "--input", tmp_path, "--out", tmp_path / "o")
    assert code == 2 and err.count("\n") == 1
    assert "found: brain.nii.gz, notes.txt" in err and "-{t1n,t2w,t1c,t2f}" in err and "--channels" in err


def test_nnunet_without_dataset_json_asks_for_the_channel_order(cropped, tmp_path, capsys):
    path, _ = write_layout(cropped, "nnunet", tmp_path)
    (tmp_path / "dataset.json").unlink()
    code, _, err = run(capsys, "predict", "--input", path, "--out", tmp_path / "out")
    assert code == 2 and "without a dataset.json naming the channels" in err
    code, _, err = run(capsys, "predict", "--input", path, "--out", tmp_path / "out",
                       "--channels", "t1=2", "t2=3", "t1c=1", "flair=0")
    assert code == 0, err
    assert nib.load(tmp_path / "out" / "Case_7.nii.gz").shape == cropped["t1"].shape


def _one_line_exit_2(capsys, args, match):
    code, _, err = run(capsys, *args)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert match in err, err
    return err


def test_bad_cases_get_exit_2_and_one_line(cropped, tmp_path, capsys):
    def case_with(name, **changes):
        raw = {**cropped, **changes}
        path, _ = write_layout(raw, "brats2018", tmp_path / name)
        return path

    out = tmp_path / "o.nii.gz"
    path = case_with("shape", t2=cropped["t2"][:-1])
    _one_line_exit_2(capsys, ["predict", "--input", path, "--out", out], "Case_7_t2.nii.gz has shape (99, 140, 60)")
    path = case_with("affine")
    _save(cropped["t1ce"], cropped["affine"] @ np.diag([1, 1, 1.5, 1]), path / "Case_7_t1ce.nii.gz")
    _one_line_exit_2(capsys, ["predict", "--input", path, "--out", out], "another affine than Case_7_t1.nii.gz")
    path = case_with("twod")
    _save(cropped["t1"][:, :, 0], np.eye(4), path / "Case_7_t1.nii.gz")
    _one_line_exit_2(capsys, ["predict", "--input", path, "--out", out], "must be a 3-D volume, got shape (100, 140)")
    path = case_with("fived")
    _save(cropped["t1"][..., None, None], cropped["affine"], path / "Case_7_t1.nii.gz")
    _one_line_exit_2(capsys, ["predict", "--input", path, "--out", out], "must be a 3-D volume")
    path = case_with("seg", seg=cropped["seg"][:, :-2])
    _one_line_exit_2(capsys, ["predict", "--input", path, "--out", out], "Case_7_seg.nii.gz has shape")
    msd, _ = write_layout(cropped, "msd", tmp_path / "msd")
    _save(np.stack([cropped["t1"]] * 3, -1), cropped["affine"], msd)
    _one_line_exit_2(capsys, ["predict", "--input", msd, "--out", out], "must be a 4-D volume of 4 channels")
    good = case_with("good")
    _one_line_exit_2(capsys, ["predict", "--input", good, "--out", tmp_path / "missing" / "o.nii.gz"],
                     "does not exist")
    (tmp_path / "taken.nii.gz").mkdir()  # the output's name is taken by a folder
    _one_line_exit_2(capsys, ["predict", "--input", good, "--out", tmp_path / "taken.nii.gz"], "cannot write")
    assert list((tmp_path / "taken.nii.gz").iterdir()) == [] and not list(tmp_path.glob(".taken*"))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if not (locked / "probe").exists():
            try:
                (locked / "probe").write_bytes(b"")
                writable = True
            except PermissionError:
                writable = False
            if not writable:
                _one_line_exit_2(capsys, ["predict", "--input", good, "--out", locked / "o.nii.gz"], "cannot write")
    finally:
        locked.chmod(0o700)
    assert not out.exists()


def test_all_zero_case_warns_no_brain_and_writes_an_empty_mask(cropped, tmp_path, capsys):
    zero = {m: np.zeros_like(cropped[m]) for m in MODALITIES}
    path, _ = write_layout({**cropped, **zero}, "brats2018", tmp_path)
    with pytest.warns(fio.NoBrainWarning, match="no brain found"):
        fio.read_case(path)
    code, _, err = run(capsys, "predict", "--input", path, "--out", tmp_path / "o.nii.gz")
    assert code == 0 and "warning: case Case_7: no brain found" in err
    assert not np.asarray(nib.load(tmp_path / "o.nii.gz").dataobj).any()


# ----------------------------------------------------------------------------- corrupted files

def _flip_bit(data: bytes, offset: int, bit: int) -> bytes:
    out = bytearray(data)
    out[offset] ^= 1 << bit
    return bytes(out)


def _small_case(cropped, root: Path) -> Path:
    raw = {m: cropped[m][30:70, 40:100, 10:30] for m in MODALITIES + ("seg",)}
    raw["affine"] = cropped["affine"]
    return write_layout(raw, "brats2018", root)[0]


def _check_hostile(capsys, args, *, allow_ok=False):
    """Exit 2 and one line (or, for damage a format cannot detect, exit 0); never a traceback or an
    unexpected failure, and never more than 1 GB allocated."""
    tracemalloc.start()
    try:
        code = main([str(a) for a in args])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    out, err = capsys.readouterr()
    assert code in ((0, 2) if allow_ok else (2,)), (code, err)
    if code == 2:
        assert err.count("\n") == 1 and "Traceback" not in err and "unexpected" not in err, err
    assert peak < 2**30, peak
    return code, err


@pytest.fixture(scope="module")
def hostile_case(cropped, tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    return _small_case(cropped, root)


def _copy_case(case: Path, root: Path, replace: str, data: bytes) -> Path:
    out = root / case.name
    out.mkdir(parents=True)
    for f in case.iterdir():
        (out / f.name).write_bytes(data if f.name.endswith(f"_{replace}.nii.gz") else f.read_bytes())
    return out


def test_truncated_nifti_at_20_offsets(hostile_case, tmp_path, capsys):
    raw = (hostile_case / "Case_7_flair.nii.gz").read_bytes()
    for i, cut in enumerate(np.linspace(0, len(raw) - 1, 20).astype(int)):
        case = _copy_case(hostile_case, tmp_path / f"cut{i}", "flair", raw[:cut])
        _, err = _check_hostile(capsys, ["predict", "--input", case, "--out", tmp_path / f"cut{i}" / "o.nii.gz"])
        assert "Case_7_flair.nii.gz" in err
        assert not (tmp_path / f"cut{i}" / "o.nii.gz").exists()


def test_bit_flipped_nifti(hostile_case, tmp_path, capsys):
    raw = (hostile_case / "Case_7_t1.nii.gz").read_bytes()
    rng = np.random.default_rng(0)
    offsets = sorted(set(rng.integers(10, len(raw) - 8, 12).tolist()) | {len(raw) - 8, len(raw) - 4})
    for i, offset in enumerate(offsets):  # gzip's CRC and length: every flip past its header is caught
        case = _copy_case(hostile_case, tmp_path / f"flip{i}", "t1", _flip_bit(raw, offset, i % 8))
        _check_hostile(capsys, ["predict", "--input", case, "--out", tmp_path / f"flip{i}" / "o.nii.gz"])


def _forged(header_changes, data: np.ndarray | None = None) -> bytes:
    """A .nii.gz whose header says something else than its data."""
    img = nib.Nifti1Image(np.ones((8, 8, 8), np.int16) if data is None else data, np.eye(4))
    raw = bytearray(img.header.binaryblock)
    for offset, fmt, value in header_changes:
        np_value = np.array(value, dtype=fmt)
        raw[offset:offset + np_value.nbytes] = np_value.tobytes()
    body = np.asarray(img.dataobj).tobytes(order="F")
    return gzip.compress(bytes(raw) + b"\0" * 4 + body)


FORGED = {
    # dim[0..3] at offset 40 (int16 x 8): a volume of 30000^3 voxels in a file of 1 KB
    "huge dims": [(40, "<i2", [3, 30000, 30000, 30000, 1, 1, 1, 1])],
    "negative dim": [(40, "<i2", [3, -8, 8, 8, 1, 1, 1, 1])],
    "zero dim": [(40, "<i2", [3, 0, 8, 8, 1, 1, 1, 1])],
    "ndim 7 (a 7-D volume)": [(40, "<i2", [7, 8, 8, 8, 2, 2, 2, 2])],
    "ndim 9": [(40, "<i2", [9, 8, 8, 8, 1, 1, 1, 1])],
    "unknown datatype": [(70, "<i2", [999])],
    "complex datatype": [(70, "<i2", [32]), (72, "<i2", [64])],
    "vox_offset beyond the file": [(108, "<f4", [1e9])],
    "bad magic": [(344, "S4", b"xx1\0")],
    "sizeof_hdr": [(0, "<i4", [12345])],
    "nan pixdim and affine": [(76, "<f4", [1, np.nan, np.nan, np.nan, 1, 1, 1, 1]), (252, "<i2", [0, 0])],
}


@pytest.mark.parametrize("name", sorted(FORGED))
def test_forged_nifti_headers(hostile_case, tmp_path, capsys, name):
    case = _copy_case(hostile_case, tmp_path, "t2", _forged(FORGED[name]))
    _check_hostile(capsys, ["predict", "--input", case, "--out", tmp_path / "o.nii.gz"])
    assert not (tmp_path / "o.nii.gz").exists()


@pytest.fixture(scope="module")
def model_bytes():
    from fastseg.cli import _default_model_path

    return _default_model_path().read_bytes()


def test_corrupted_model_files(hostile_case, tmp_path, capsys, model_bytes):
    rng = np.random.default_rng(1)
    variants = {f"cut{i}": model_bytes[:cut] for i, cut in enumerate(np.linspace(0, len(model_bytes) - 1, 20).astype(int))}
    for i, offset in enumerate(rng.integers(0, len(model_bytes), 20)):
        variants[f"flip{i}"] = _flip_bit(model_bytes, int(offset), i % 8)
    for name, data in variants.items():
        path = tmp_path / f"{name}.npz"
        path.write_bytes(data)
        # a flip inside the zip's unchecked fields (timestamps, padding) may leave a model that loads
        _check_hostile(capsys, ["predict", "--model", path, "--input", hostile_case, "--out", tmp_path / f"{name}.nii.gz"],
                       allow_ok=name.startswith("flip"))


def test_forged_model_array_headers(hostile_case, tmp_path, capsys, model_bytes):
    """Arrays whose .npy headers claim huge or inconsistent shapes: refused from the headers."""
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(model_bytes)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    name = next(n for n in members if n.startswith("coef"))
    header_end = members[name].index(b"\n") + 1
    for i, shape in enumerate(["(100000, 100000)", "(3000000000,)", "(-5, 7)", "(2, 3)"]):
        header = f"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}".encode()
        header = b"\x93NUMPY\x01\x00" + np.uint16(len(header) + 1).tobytes() + header + b"\n"
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as z:
            for n, data in members.items():
                z.writestr(n, header + data[header_end:] if n == name else data)
        path = tmp_path / f"forged{i}.npz"
        path.write_bytes(buffer.getvalue())
        _check_hostile(capsys, ["predict", "--model", path, "--input", hostile_case, "--out", tmp_path / "o.nii.gz"])


def test_corrupted_npy_inputs(tmp_path, capsys, model_bytes):
    x = np.random.default_rng(2).normal(size=(3, 32, 32, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    raw = (tmp_path / "x.npy").read_bytes()
    for i, cut in enumerate(np.linspace(0, len(raw) - 1, 20).astype(int)):
        (tmp_path / f"c{i}.npy").write_bytes(raw[:cut])
        _check_hostile(capsys, ["predict", "--input", tmp_path / f"c{i}.npy", "--out", tmp_path / f"o{i}.npy"])
        assert not (tmp_path / f"o{i}.npy").exists()
    for i, offset in enumerate(range(0, 128, 7)):  # the magic and the header
        (tmp_path / f"f{i}.npy").write_bytes(_flip_bit(raw, offset, i % 8))
        _check_hostile(capsys, ["predict", "--input", tmp_path / f"f{i}.npy", "--out", tmp_path / f"p{i}.npy"],
                       allow_ok=True)
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 240, 240, 4), }"
    header = b"\x93NUMPY\x01\x00" + np.uint16(len(header) + 1).tobytes() + header + b"\n"
    (tmp_path / "huge.npy").write_bytes(header + b"\0" * 1024)
    _check_hostile(capsys, ["predict", "--input", tmp_path / "huge.npy", "--out", tmp_path / "h.npy"])


# ----------------------------------------------------------------------------- the shipped model

def test_shipped_model_and_its_provenance():
    import hashlib

    from fastseg.cli import _default_model_path
    from fastseg.persistence import _load_model

    path = _default_model_path()
    provenance = json.loads(path.with_suffix(".json").read_text())
    assert provenance["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert provenance["n_cases"] == len(provenance["cases"]) == 20
    assert provenance["training_command"].startswith("fastseg train --data ")
    assert provenance["fastseg_version"] and "/" not in provenance["training_command"].split("--data ")[1].split()[0]
    model = _load_model(path)
    assert model.n_channels == 4 and model.has_proba


def test_train_default_model_script(volumes, tmp_path):
    """The script that makes the shipped model, on two small cases: a model file and its provenance."""
    import hashlib
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "train_default_model", Path(__file__).resolve().parents[1] / "experiments" / "train_default_model.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    raw = _raw_case(volumes, (slice(70, 170), slice(60, 200), slice(50, 90, 4)))
    for name in ("A_1", "B_2"):
        write_layout(raw, "brats2018", tmp_path / "cases", name)
    out = tmp_path / "model.npz"
    assert script.main(["--data", str(tmp_path / "cases"), "--out", str(out)]) == 0
    provenance = json.loads(out.with_suffix(".json").read_text())
    assert provenance["cases"] == ["A_1", "B_2"] and provenance["recipe"] == script.RECIPE
    assert provenance["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert provenance["training_command"] == " ".join(["fastseg train --data cases --model model.npz", *script.RECIPE])
    assert not any(str(tmp_path) in line for line in provenance["training_output"])


def test_label_conventions_from_dataset_json():
    from fastseg.io import _label_convention

    assert _label_convention({"labels": {"0": "background", "1": "edema", "2": "non-enhancing tumor",
                                         "3": "enhancing tumour"}}, None) == "msd"
    assert _label_convention({"labels": {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3],
                                         "enhancing tumor": 3}}, None) == "msd"
    assert _label_convention({"labels": {"background": 0, "NCR": 1, "ED": 2, "ET": 3}}, None) is None
    assert _label_convention({"labels": {"background": 0, "necrosis": 1, "edema": 2, "enhancing": 3}}, None) == "brats2023"
    assert _label_convention({"labels": {"0": "background", "1": "core", "2": "edema", "4": "enhancing"}}, None) == "brats2018"
    assert _label_convention(None, "msd") == "msd"


def test_evaluate_damaged_nifti_files(hostile_case, tmp_path, capsys):
    seg = hostile_case / "Case_7_seg.nii.gz"
    (tmp_path / "cut.nii.gz").write_bytes(seg.read_bytes()[:300])
    _check_hostile(capsys, ["evaluate", "--pred", tmp_path / "cut.nii.gz", "--truth", seg])
    code, out, _ = run(capsys, "evaluate", "--pred", seg, "--truth", seg)
    assert code == 0 and "1.000" in out


def test_gzip_bomb_is_refused_without_reading_it_all(hostile_case, tmp_path, capsys):
    img = nib.Nifti1Image(np.ones((8, 8, 8), np.int16), np.eye(4))
    payload = img.header.binaryblock + b"\0" * 4 + np.asarray(img.dataobj).tobytes(order="F")
    case = _copy_case(hostile_case, tmp_path, "t1", gzip.compress(payload + b"\0" * (64 * 2**20)))
    _, err = _check_hostile(capsys, ["predict", "--input", case, "--out", tmp_path / "o.nii.gz"])
    assert "Case_7_t1.nii.gz holds more data than its header says" in err


def test_find_case_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="path must be a str or os.PathLike path, got NoneType"):
        fio.find_case(None)
    with pytest.raises(FileNotFoundError, match="no case or folder at"):
        fio.find_case(tmp_path / "missing")
    with pytest.raises(TypeError, match="channels must be a dict mapping"):
        fio.find_case(tmp_path, channels=["t1=a"])
    with pytest.raises(ValueError, match=r"channels must map each of \('t1', 't2', 't1c', 'flair'\).*got keys \['t1', 't2'\]"):
        fio.find_case(tmp_path, channels={"t1": "a", "t2": "b"})
    with pytest.raises(ValueError, match="convention must be one of"):
        fio.regions(np.zeros(3), "brats2019")
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(ValueError, match="is not a NIfTI file"):
        fio.find_case(tmp_path / "x.txt")


def test_a_damaged_4d_file_in_a_folder_is_a_failed_case(cropped, tmp_path, capsys):
    path, _ = write_layout(cropped, "msd", tmp_path)
    (path.parent / "Broken.nii.gz").write_bytes(path.read_bytes()[:200])
    code, printed, err = run(capsys, "predict", "--input", path.parent, "--out", tmp_path / "out")
    assert code == 2 and "case Broken failed: Broken.nii.gz is damaged or truncated" in err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["Case_7.nii.gz"]
