"""Model files against forged headers, and durable atomic writes (fastseg.persistence)."""
from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fastseg import load
from fastseg.persistence import _MAX_ARRAY_BYTES, atomic_write

MODEL = Path(__file__).parent / "data" / "release-0.2.0" / "linear_svm.npz"


def _with_member(tmp_path, name: str, npy: bytes) -> Path:
    """A copy of a real model file whose member ``name`` holds the bytes ``npy``."""
    out = tmp_path / "forged.npz"
    with zipfile.ZipFile(MODEL) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, npy if info.filename == f"{name}.npy" else src.read(info))
    return out


def _npy_header(shape, dtype="<f8") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


@pytest.mark.parametrize("shape", [(2**40,), (10**6, 10**6), (2**62, 2**62), (_MAX_ARRAY_BYTES // 8 + 1,)])
def test_a_forged_shape_is_refused_before_anything_is_allocated(tmp_path, shape):
    """An array header claiming terabytes (with a few bytes behind it) gets a clear error, at once."""
    path = _with_member(tmp_path, "coef", _npy_header(shape) + b"\0" * 64)
    with pytest.raises(ValueError, match=r"its array 'coef' claims shape .* more than (a model holds|the file stores)"):
        load(path)


def test_a_header_claiming_more_than_the_member_holds_is_refused(tmp_path):
    path = _with_member(tmp_path, "coef", _npy_header((1000,)) + b"\0" * 80)  # 8,000 bytes claimed, 80 stored
    with pytest.raises(ValueError, match=r"its array 'coef' claims shape \(1000,\) \(8000 bytes\), more than the file stores"):
        load(path)


def test_the_command_gives_exit_2_and_one_line_for_a_forged_model(tmp_path, capsys):
    from fastseg.cli import main

    path = _with_member(tmp_path, "coef", _npy_header((2**40,)) + b"\0" * 64)
    np.save(tmp_path / "x.npy", np.zeros((1, 8, 8, 4), np.float32))
    code = main(["predict", "--model", str(path), "--input", str(tmp_path / "x.npy"), "--out", str(tmp_path / "o.npy")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "claims shape (1099511627776,)" in err, err


def test_members_that_are_not_arrays_are_refused(tmp_path):
    out = tmp_path / "extra.npz"
    with zipfile.ZipFile(MODEL) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
        dst.writestr("payload.pkl", b"not an array")
    with pytest.raises(ValueError, match="it holds 'payload.pkl', which is not a .npy array"):
        load(out)


# ----------------------------------------------------------------------------- atomic_write

def test_atomic_write_honours_the_umask_without_touching_it(tmp_path, monkeypatch):
    """The file gets 0o666 less the umask, and the process-wide umask is never changed (a thread
    creating a file meanwhile would get the wrong permissions)."""
    previous = os.umask(0o027)
    try:
        def no_umask(mask):
            raise AssertionError("atomic_write changed the process-wide umask")

        monkeypatch.setattr(os, "umask", no_umask)
        path = atomic_write(tmp_path / "out.bin", lambda tmp: Path(tmp).write_bytes(b"data"))
        monkeypatch.undo()
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and path.read_bytes() == b"data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_atomic_write_flushes_the_file_and_its_folder(tmp_path, monkeypatch):
    synced = []
    real_fsync, real_open = os.fsync, os.open
    opened = {}

    def recording_open(path, flags, *args):
        fd = real_open(path, flags, *args)
        opened[fd] = Path(path)
        return fd

    def recording_fsync(fd):
        synced.append(opened.get(fd))
        real_fsync(fd)

    monkeypatch.setattr(os, "open", recording_open)
    monkeypatch.setattr(os, "fsync", recording_fsync)
    path = atomic_write(tmp_path / "model.npz", lambda tmp: Path(tmp).write_bytes(b"x"))
    assert len(synced) == 2
    assert synced[0].parent == tmp_path and synced[0].name.startswith(".model.npz.")  # the file, before the rename
    assert synced[1] == tmp_path and path.read_bytes() == b"x"  # then its folder, after it


def test_atomic_write_leaves_nothing_when_the_write_fails(tmp_path):
    def failing(tmp):
        Path(tmp).write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(tmp_path / "out.bin", failing)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- damaged NIfTI cases

@pytest.mark.parametrize("damage", ["truncated", "not gzip", "empty"])
def test_a_damaged_case_volume_gets_exit_2_and_one_line_naming_it(brats2d_dir, tmp_path, capsys, damage):
    pytest.importorskip("nibabel")
    from fastseg.cli import main

    source = brats2d_dir.parent / "brats_volumes" / "Brats18_2013_3_1"
    case = tmp_path / "Case_1"
    case.mkdir()
    for m in ("t1", "t2", "t1ce", "flair"):
        raw = (source / f"Brats18_2013_3_1_{m}.nii.gz").read_bytes()
        if m == "t2":
            raw = {"truncated": raw[: len(raw) // 3], "not gzip": b"\x1f\x8b" + raw[40:], "empty": b""}[damage]
        (case / f"Case_1_{m}.nii.gz").write_bytes(raw)
    code = main(["predict", "--model", str(MODEL), "--input", str(case), "--out", str(tmp_path / "o.nii.gz")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "Case_1_t2.nii.gz is" in err and ("damaged or truncated" in err or "not a readable NIfTI file" in err), err
    assert not (tmp_path / "o.nii.gz").exists()
