"""``fastseg predict`` and ``fastseg evaluate`` on folders of cases: outputs, skipping, failures,
worker processes and a dask cluster giving the same files, and the per-case table."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from fastseg.cli import main

nib = pytest.importorskip("nibabel")

from fastseg.io import read_label_volume  # noqa: E402
from fastseg.metrics import case_metrics, summarize  # noqa: E402

from conftest import SMALL_CASES as CASES  # noqa: E402
from conftest import small_case_volume  # noqa: E402

MODALITIES = ("t1", "t2", "t1ce", "flair", "seg")


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _save(data, affine, path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, affine), path)


@pytest.fixture(scope="module")
def raw_cases(brats2d_dir):
    return {case: {m: small_case_volume(case, m) for m in MODALITIES} for case in CASES}


@pytest.fixture(scope="module")
def folder(small_cases_folder):
    """Three cases: two BraTS 2018 case directories and one BraTS 2023 directory, side by side (the
    crops of ``raw_cases``)."""
    return small_cases_folder


def _outputs(folder: Path) -> dict:
    return {p.name: np.asarray(nib.load(p).dataobj) for p in sorted(folder.glob("*.nii.gz"))}


def test_predict_a_folder_names_outputs_like_nnunet_and_matches_single_cases(folder, tmp_path, capsys):
    out = tmp_path / "out"
    code, printed, err = run(capsys, "predict", "--input", folder, "--out", out, "--probabilities", tmp_path / "p")
    assert code == 0, err
    assert "3 cases in" in printed and "segmented 3 of 3 cases" in printed
    assert sorted(p.name for p in out.iterdir()) == [f"{c}.nii.gz" for c in CASES]
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == [f"{c}.nii.gz" for c in CASES]
    for case in CASES:
        assert run(capsys, "predict", "--input", folder / case, "--out", tmp_path / "one.nii.gz")[0] == 0
        np.testing.assert_array_equal(np.asarray(nib.load(out / f"{case}.nii.gz").dataobj),
                                      np.asarray(nib.load(tmp_path / "one.nii.gz").dataobj))
        proba = np.asarray(nib.load(tmp_path / "p" / f"{case}.nii.gz").dataobj)
        assert proba.dtype == np.float32 and 0 <= proba.min() and proba.max() <= 1
    # the spacing of these copies (2 mm between slices) is reported for each case
    assert err.count("warning: case") == 3


def test_skips_finished_cases_unless_overwrite(folder, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / f"{CASES[0]}.nii.gz").write_bytes(b"placeholder")
    code, printed, _ = run(capsys, "predict", "--input", folder, "--out", out)
    assert code == 0 and "2 to segment, 1 already done" in printed
    assert (out / f"{CASES[0]}.nii.gz").read_bytes() == b"placeholder"
    code, printed, _ = run(capsys, "predict", "--input", folder, "--out", out, "--overwrite")
    assert code == 0 and "3 to segment" in printed
    assert nib.load(out / f"{CASES[0]}.nii.gz").shape == (140, 160, 40)


def test_a_failing_case_is_reported_and_the_others_are_written(folder, tmp_path, capsys):
    bad = tmp_path / "cases"
    for case in CASES:
        (bad / case).mkdir(parents=True)
        for f in (folder / case).iterdir():
            (bad / case / f.name).write_bytes(f.read_bytes())
    damaged = bad / CASES[1] / f"{CASES[1]}_t2.nii.gz"
    damaged.write_bytes(damaged.read_bytes()[:500])
    code, printed, err = run(capsys, "predict", "--input", bad, "--out", tmp_path / "out")
    assert code == 2
    assert f"case {CASES[1]} failed: {CASES[1]}_t2.nii.gz is damaged or truncated" in err
    assert f"1 failed: {CASES[1]}" in printed
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{CASES[0]}.nii.gz", f"{CASES[2]}.nii.gz"]


def test_jobs_give_the_same_files(folder, tmp_path, capsys):
    assert run(capsys, "predict", "--input", folder, "--out", tmp_path / "one")[0] == 0
    code, printed, err = run(capsys, "predict", "--input", folder, "--out", tmp_path / "two", "--jobs", "2")
    assert code == 0, err
    one, two = _outputs(tmp_path / "one"), _outputs(tmp_path / "two")
    assert list(one) == list(two) and len(one) == 3
    for name in one:
        np.testing.assert_array_equal(one[name], two[name])
    assert (tmp_path / "one" / f"{CASES[0]}.nii.gz").read_bytes() != b""


def test_more_jobs_than_cases(folder, tmp_path, capsys):
    code, printed, err = run(capsys, "predict", "--input", folder, "--out", tmp_path / "o", "--jobs", "5")
    assert code == 0, err
    assert f"segmented {len(CASES)} of {len(CASES)} cases" in printed
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == sorted(f"{c}.nii.gz" for c in CASES)


def test_scheduler_gives_the_same_files(folder, tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    assert run(capsys, "predict", "--input", folder, "--out", tmp_path / "local")[0] == 0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  scheduler_port=0) as cluster:
        code, printed, err = run(capsys, "predict", "--input", folder, "--out", tmp_path / "dask",
                                 "--scheduler", cluster.scheduler_address)
    assert code == 0, err
    local, remote = _outputs(tmp_path / "local"), _outputs(tmp_path / "dask")
    assert list(local) == list(remote) and len(local) == 3
    for name in local:
        np.testing.assert_array_equal(local[name], remote[name])


def test_scheduler_unreachable(folder, tmp_path, capsys):
    pytest.importorskip("distributed")
    code, _, err = run(capsys, "predict", "--input", folder, "--out", tmp_path / "o", "--scheduler", "tcp://127.0.0.1:9")
    assert code == 2 and err.count("\n") == 1 and "--scheduler: cannot connect" in err


@pytest.fixture(scope="module")
def predictions(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("pred")
    assert main(["predict", "--input", str(folder), "--out", str(out)]) == 0
    return out


def _expected_rows(predictions: Path, truth_files: dict) -> list:
    rows = []
    for case in CASES:
        truth = read_label_volume(truth_files[case])
        pred = read_label_volume(predictions / f"{case}.nii.gz")
        rows.append({"case": case, **case_metrics(truth.labels > 0, pred.labels > 0, truth.spacing)})
    return rows


def test_evaluate_folders_against_case_directories(folder, predictions, tmp_path, capsys):
    code, printed, err = run(capsys, "evaluate", "--pred", predictions, "--truth", folder,
                             "--csv", tmp_path / "m.csv", "--json", tmp_path / "m.json")
    assert code == 0, err
    seg_files = {c: next((folder / c).glob("*seg.nii.gz")) for c in CASES}
    expected = _expected_rows(predictions, seg_files)
    report = json.loads((tmp_path / "m.json").read_text())
    assert [r["case"] for r in report["cases"]] == list(CASES) and report["failed"] == []
    for row, want in zip(report["cases"], expected):
        for metric in ("dice", "hd95", "precision", "recall", "volume_difference_ml"):
            assert row[metric] == pytest.approx(want[metric], rel=1e-12), metric
    for metric, stats in summarize(expected).items():
        assert report["summary"][metric] == pytest.approx(stats)
    with open(tmp_path / "m.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [r["case"] for r in table] == list(CASES)
    assert float(table[0]["hd95"]) == pytest.approx(expected[0]["hd95"], rel=1e-5)
    assert "mean" in printed and "median" in printed and "worst" in printed and "hd95" in printed
    # the slices are 2 mm apart: HD95 uses the spacing of the header
    assert any(r["hd95"] != case_metrics(read_label_volume(seg_files[r["case"]]).labels > 0,
                                         read_label_volume(predictions / f"{r['case']}.nii.gz").labels > 0)["hd95"]
               for r in report["cases"])


def test_evaluate_folders_against_label_files(folder, predictions, tmp_path, capsys):
    labels = tmp_path / "labelsTr"
    labels.mkdir()
    for case in CASES:
        seg = next((folder / case).glob("*seg.nii.gz"))
        (labels / f"{case}.nii.gz").write_bytes(seg.read_bytes())
    code, printed, err = run(capsys, "evaluate", "--pred", predictions, "--truth", labels, "--json", tmp_path / "a.json",
                             "--csv", tmp_path / "a.csv")
    assert code == 0, err
    rows = json.loads((tmp_path / "a.json").read_text())["cases"]
    expected = _expected_rows(predictions, {c: labels / f"{c}.nii.gz" for c in CASES})
    assert [r["dice"] for r in rows] == pytest.approx([r["dice"] for r in expected])
    # a prediction without truth: reported, the others scored, exit 2
    (labels / f"{CASES[1]}.nii.gz").unlink()
    code, printed, err = run(capsys, "evaluate", "--pred", predictions, "--truth", labels, "--json", tmp_path / "b.json",
                             "--csv", tmp_path / "b.csv")
    assert code == 2 and f"case {CASES[1]}: no ground truth" in err
    assert json.loads((tmp_path / "b.json").read_text())["failed"] == [CASES[1]]


def test_folder_usage_errors(folder, tmp_path, capsys):
    code, _, err = run(capsys, "predict", "--input", folder, "--out", tmp_path / "x.nii.gz")
    assert code == 2 and "--out must be a folder for a folder of cases (3 found" in err
    code, _, err = run(capsys, "predict", "--input", folder, "--out", tmp_path / "o", "--jobs", "0")
    assert code == 2 and "--jobs must be a positive integer, got 0" in err
    code, _, err = run(capsys, "predict", "--input", folder, "--out", tmp_path / "o", "--channels", "t1")
    assert code == 2 and "--channels takes NAME=FILE items" in err
    code, _, err = run(capsys, "evaluate", "--pred", folder, "--truth", tmp_path / "x.npy")
    assert code == 2 and "--truth: no file" in err


def test_folders_of_msd_files_and_of_nnunet_channel_files(raw_cases, tmp_path, capsys):
    msd, nnunet = tmp_path / "msd" / "imagesTr", tmp_path / "nnunet" / "imagesTs"
    for case, channels in list(raw_cases.items())[:2]:
        affine = channels["t1"][1]
        _save(np.stack([channels[m][0] for m in ("flair", "t1", "t1ce", "t2")], -1), affine, msd / f"{case}.nii.gz")
        for i, m in enumerate(("t1", "t1ce", "t2", "flair")):
            _save(channels[m][0], affine, nnunet / f"{case}_{i:04d}.nii.gz")
    (tmp_path / "nnunet" / "dataset.json").write_text(json.dumps(
        {"channel_names": {"0": "T1", "1": "T1ce", "2": "T2", "3": "FLAIR"}}))
    for source in (msd, nnunet):
        code, printed, err = run(capsys, "predict", "--input", source, "--out", source.parent / "out")
        assert code == 0, err
        assert "2 cases in" in printed
    a, b = _outputs(tmp_path / "msd" / "out"), _outputs(tmp_path / "nnunet" / "out")
    assert list(a) == list(b) == [f"{c}.nii.gz" for c in CASES[:2]]
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def test_evaluate_a_prediction_in_another_orientation_than_its_truth(folder, predictions, tmp_path, capsys):
    """A prediction saved in RAS (data and affine flipped together) is scored on the truth's grid."""
    flipped = tmp_path / "pred"
    flipped.mkdir()
    for case in CASES:
        img = nib.load(predictions / f"{case}.nii.gz")
        ras = img.as_reoriented(np.array([[0, -1], [1, -1], [2, 1]]))
        assert nib.aff2axcodes(ras.affine) == ("R", "A", "S")
        nib.save(ras, flipped / f"{case}.nii.gz")
    assert run(capsys, "evaluate", "--pred", predictions, "--truth", folder, "--json", tmp_path / "a.json",
               "--csv", tmp_path / "a.csv")[0] == 0
    assert run(capsys, "evaluate", "--pred", flipped, "--truth", folder, "--json", tmp_path / "b.json",
               "--csv", tmp_path / "b.csv")[0] == 0
    a, b = (json.loads((tmp_path / f"{x}.json").read_text())["cases"] for x in "ab")
    assert a == b
    # a prediction on another grid (shifted by one voxel) is refused, not scored
    img = nib.load(predictions / f"{CASES[0]}.nii.gz")
    shifted = tmp_path / "shifted"
    shifted.mkdir()
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), img.affine @ np.array(
        [[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])), shifted / f"{CASES[0]}.nii.gz")
    code, _, err = run(capsys, "evaluate", "--pred", shifted, "--truth", folder, "--json", tmp_path / "c.json",
                       "--csv", tmp_path / "c.csv")
    assert code == 2 and "is not on the truth's voxel grid" in err


def test_folder_predict_with_the_shipped_model_never_imports_scikit_learn(folder, tmp_path, main_in_fresh_python):
    result = main_in_fresh_python(["predict", "--input", folder, "--out", tmp_path / "out",
                                   "--probabilities", tmp_path / "p"], cwd=tmp_path)
    assert "exit 0 sklearn imported: False scipy.ndimage imported: False" in result.stdout, result.stdout + result.stderr
    assert len(list((tmp_path / "out").iterdir())) == len(list((tmp_path / "p").iterdir())) == 3


def test_command_line_turns_numpy_huge_page_advice_off_and_back(monkeypatch, capsys):
    """Off while a command runs (and in --jobs workers); the caller's setting is back afterwards."""
    from fastseg import cli

    if cli._madvise_hugepage(True) is None:
        pytest.skip("this numpy has no huge-page switch")
    seen = []
    monkeypatch.setattr(cli, "cmd_predict", lambda args: seen.append(cli._madvise_hugepage(False)) or 0)
    assert cli.main(["predict", "--input", "x", "--out", "y"]) == 0
    assert seen == [False]  # the setting during the command
    assert cli._madvise_hugepage(False) is True  # the caller's setting restored
    cli._worker_init()
    assert cli._madvise_hugepage(True) is False


# ----------------------------------------------------------------------------- evaluate --regions

#: Each convention's regions, written out here rather than read from fastseg.io.
REGION_LABELS = {
    "brats2018": {"whole tumour": [1, 2, 4], "tumour core": [1, 4], "enhancing tumour": [4]},
    "brats2023": {"whole tumour": [1, 2, 3], "tumour core": [1, 3], "enhancing tumour": [3]},
    "msd": {"whole tumour": [1, 2, 3], "tumour core": [2, 3], "enhancing tumour": [3]},
}
PREFIXES = {"whole tumour": "wt", "tumour core": "tc", "enhancing tumour": "et"}
METRICS = ("dice", "hd95", "precision", "recall", "volume_difference_ml")


def _seg(folder: Path, case: str):
    img = nib.load(next((folder / case).glob("*seg.nii.gz")))
    return np.asarray(img.dataobj), img.affine


def _label_predictions(folder: Path, out: Path, cases, relabel=None) -> Path:
    """Label-map predictions on the truth's grid: each case's seg shifted by two voxels, and in the
    second case (a BraTS 2018 one) its enhancing tumour (4) predicted as necrotic core (1)."""
    for i, case in enumerate(cases):
        data, affine = _seg(folder, case)
        pred = np.roll(data, 2, axis=0)
        if i == 1:
            pred[pred == 4] = 1
        _save(pred if relabel is None else relabel(pred), affine, out / f"{case}.nii.gz")
    return out


def _expected_region_rows(pred_dir: Path, truth_files: dict, convention: str) -> list:
    rows = []
    for case, path in truth_files.items():
        truth = read_label_volume(path)
        pred = read_label_volume(pred_dir / f"{case}.nii.gz")
        row = {"case": case}
        for region, labels in REGION_LABELS[convention].items():
            scores = case_metrics(np.isin(truth.labels, labels), np.isin(pred.labels, labels), truth.spacing)
            row.update({f"{PREFIXES[region]}_{m}": scores[m] for m in METRICS})
        rows.append(row)
    return rows


def _copy_cases(folder: Path, out: Path, cases) -> Path:
    for case in cases:
        (out / case).mkdir(parents=True)
        for f in (folder / case).iterdir():
            (out / case / f.name).write_bytes(f.read_bytes())
    return out


def test_evaluate_regions_against_case_directories(folder, tmp_path, capsys):
    """The convention of the truth's layout: BraTS 2018 case directories, and a BraTS 2023 one."""
    for cases, convention in ((CASES[:2], "brats2018"), (CASES[2:], "brats2023")):
        truth = _copy_cases(folder, tmp_path / convention / "truth", cases)
        pred = _label_predictions(folder, tmp_path / convention / "pred", cases)
        code, printed, err = run(capsys, "evaluate", "--pred", pred, "--truth", truth, "--regions")
        assert code == 0, err
        report = json.loads((pred / "metrics.json").read_text())
        expected = _expected_region_rows(pred, {c: next((truth / c).glob("*seg.nii.gz")) for c in cases}, convention)
        assert report["cases"] == expected
        assert report["regions"] == ["whole tumour", "tumour core", "enhancing tumour"]
        assert report["convention"] == convention and report["failed"] == []
        assert report["labels"] == REGION_LABELS[convention]
        for region, prefix in PREFIXES.items():
            rows = [{m: r[f"{prefix}_{m}"] for m in METRICS} for r in expected]
            for metric, stats in summarize(rows, list(METRICS)).items():
                assert report["summary"][region][metric] == pytest.approx(stats), (region, metric)
        with open(pred / "metrics.csv", newline="") as fh:
            table = list(csv.reader(fh))
        assert table[0] == ["case"] + [f"{p}_{m}" for p in ("wt", "tc", "et") for m in METRICS]
        assert [r[0] for r in table[1:]] == list(cases)
        assert float(table[1][table[0].index("et_hd95")]) == pytest.approx(expected[0]["et_hd95"], rel=1e-5)
        assert f"{convention} labels: the truth cases' layout" in printed
        for region in PREFIXES:
            assert region in printed
        assert printed.count("median") == 3 and printed.count("worst") == 3
    # the second BraTS 2018 case has its enhancing tumour predicted as core: scored by BraTS's rule,
    # enhancing tumour Dice 0 and HD95 the diagonal of its 140 x 160 x 40 voxels (2 mm apart)
    row = json.loads((tmp_path / "brats2018" / "pred" / "metrics.json").read_text())["cases"][1]
    assert row["et_dice"] == 0.0 and row["et_hd95"] == pytest.approx(np.sqrt(140**2 + 160**2 + 80**2))


def test_evaluate_regions_with_several_conventions_asks_for_labels(folder, tmp_path, capsys):
    pred = _label_predictions(folder, tmp_path / "pred", CASES)
    code, printed, err = run(capsys, "evaluate", "--pred", pred, "--truth", folder, "--regions")
    assert code == 2 and err.count("\n") == 1 and printed == ""
    assert "do not share one known label convention (2 brats2018, 1 brats2023); pass --labels" in err
    assert not (pred / "metrics.csv").exists()
    # --labels brats2018: the BraTS 2023 case (labels 1, 2, 3) fails, the others are scored
    code, printed, err = run(capsys, "evaluate", "--pred", pred, "--truth", folder, "--regions", "--labels", "brats2018")
    assert code == 2
    assert (f"case {CASES[2]} failed: the truth: labels {{3}} are not in the brats2018 convention" in err)
    report = json.loads((pred / "metrics.json").read_text())
    assert report["failed"] == [CASES[2]] and [r["case"] for r in report["cases"]] == list(CASES[:2])
    assert report["cases"] == _expected_region_rows(
        pred, {c: next((folder / c).glob("*seg.nii.gz")) for c in CASES[:2]}, "brats2018")
    assert "brats2018 labels: --labels" in printed and "2 cases scored" in printed and "1 failed" in printed


def test_evaluate_regions_against_label_files(folder, tmp_path, capsys):
    """Label files: brats2018 by default; --labels; a convention named by dataset.json."""
    labels = tmp_path / "brats" / "labelsTr"
    labels.mkdir(parents=True)
    for case in CASES[:2]:
        (labels / f"{case}.nii.gz").write_bytes(next((folder / case).glob("*seg.nii.gz")).read_bytes())
    # the first case without enhancing tumour in the truth, and none predicted: Dice 1, HD95 0
    data, affine = _seg(folder, CASES[0])
    _save(np.where(data == 4, 1, data), affine, labels / f"{CASES[0]}.nii.gz")
    pred = _label_predictions(folder, tmp_path / "brats" / "pred", CASES[:2])
    img = nib.load(pred / f"{CASES[0]}.nii.gz")
    shifted = np.asarray(img.dataobj)
    _save(np.where(shifted == 4, 1, shifted), img.affine, pred / f"{CASES[0]}.nii.gz")
    code, printed, err = run(capsys, "evaluate", "--pred", pred, "--truth", labels, "--regions")
    assert code == 0, err
    assert "brats2018 labels: the default for label files" in printed
    report = json.loads((pred / "metrics.json").read_text())
    assert report["cases"] == _expected_region_rows(pred, {c: labels / f"{c}.nii.gz" for c in CASES[:2]}, "brats2018")
    first = report["cases"][0]
    assert (first["et_dice"], first["et_hd95"], first["et_precision"], first["et_recall"]) == (1.0, 0.0, 1.0, 1.0)
    # --labels brats2023: the second case's label 4 is refused; the first, labels 1 and 2 only, reads
    # the same in both conventions
    code, printed, err = run(capsys, "evaluate", "--pred", pred, "--truth", labels, "--regions", "--labels", "brats2023")
    assert code == 2 and "1 cases scored" in printed and "1 failed" in printed
    assert f"case {CASES[1]} failed: the truth: labels {{4}} are not in the brats2023 convention" in err
    assert json.loads((pred / "metrics.json").read_text())["cases"] == [first]

    # the Decathlon's numbering (1 oedema, 2 non-enhancing, 3 enhancing), named by ../dataset.json
    msd = tmp_path / "msd" / "labelsTr"
    msd.mkdir(parents=True)
    to_msd = {0: 0, 1: 2, 2: 1, 4: 3}

    def relabel(a):
        return np.vectorize(to_msd.get, otypes=[a.dtype])(a)

    for case in CASES[:2]:
        data, affine = _seg(folder, case)
        _save(relabel(data), affine, msd / f"{case}.nii.gz")
    pred = _label_predictions(folder, tmp_path / "msd" / "pred", CASES[:2], relabel=relabel)
    code, printed, err = run(capsys, "evaluate", "--pred", pred, "--truth", msd, "--regions", "--labels", "msd")
    assert code == 0, err
    expected = _expected_region_rows(pred, {c: msd / f"{c}.nii.gz" for c in CASES[:2]}, "msd")
    assert json.loads((pred / "metrics.json").read_text())["cases"] == expected
    # the same regions as the BraTS 2018 numbering of the same voxels
    brats = _label_predictions(folder, tmp_path / "msd" / "brats", CASES[:2])
    assert expected == _expected_region_rows(
        brats, {c: next((folder / c).glob("*seg.nii.gz")) for c in CASES[:2]}, "brats2018")
    (tmp_path / "msd" / "dataset.json").write_text(json.dumps(
        {"labels": {"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumour"}}))
    code, printed, err = run(capsys, "evaluate", "--pred", pred, "--truth", msd, "--regions")
    assert code == 0, err
    assert "msd labels: the labels of dataset.json" in printed
    assert json.loads((pred / "metrics.json").read_text())["cases"] == expected


def test_evaluate_regions_usage_errors(folder, predictions, tmp_path, capsys):
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(a, np.zeros((2, 4, 4), np.uint8))
    np.save(b, np.zeros((2, 4, 4), np.uint8))
    code, printed, err = run(capsys, "evaluate", "--pred", a, "--truth", b, "--regions")
    assert code == 2 and err.count("\n") == 1 and printed == ""
    assert "--regions is for folders of NIfTI cases" in err
    # nnU-Net cases whose dataset.json names no labels: their convention is unknown (refused before any reading)
    nnunet = tmp_path / "nnunet"
    for i in range(4):
        _save(np.zeros((2, 2, 2), np.int16), np.eye(4), nnunet / "imagesTr" / f"{CASES[0]}_{i:04d}.nii.gz")
    _save(np.zeros((2, 2, 2), np.uint8), np.eye(4), nnunet / "labelsTr" / f"{CASES[0]}.nii.gz")
    (nnunet / "dataset.json").write_text(json.dumps({"channel_names": {"0": "T1", "1": "T1ce", "2": "T2", "3": "FLAIR"}}))
    code, _, err = run(capsys, "evaluate", "--pred", predictions, "--truth", nnunet / "imagesTr", "--regions")
    assert code == 2 and err.count("\n") == 1
    assert "do not share one known label convention (1 unknown); pass --labels" in err
    code, _, err = run(capsys, "evaluate", "--pred", predictions, "--truth", folder, "--labels", "msd")
    assert code == 2 and err.count("\n") == 1 and "--labels sets the label convention of --regions" in err
    with pytest.raises(SystemExit) as exc:  # argparse's own usage error
        main(["evaluate", "--pred", str(predictions), "--truth", str(folder), "--regions", "--labels", "brats2021"])
    assert exc.value.code == 2 and "invalid choice: 'brats2021'" in capsys.readouterr().err


def test_evaluate_default_output_is_the_whole_tumour_table(folder, predictions, tmp_path, capsys):
    """Without --regions: the whole-tumour columns, JSON keys and printed table, unchanged."""
    code, printed, err = run(capsys, "evaluate", "--pred", predictions, "--truth", folder,
                             "--csv", tmp_path / "m.csv", "--json", tmp_path / "m.json")
    assert code == 0, err
    assert (tmp_path / "m.csv").read_text().splitlines()[0] == "case,dice,hd95,precision,recall,volume_difference_ml"
    report = json.loads((tmp_path / "m.json").read_text())
    assert list(report) == ["region", "cases", "summary", "failed", "definitions"]
    assert report["region"] == "whole tumour" and report["definitions"] == "fastseg.metrics.case_metrics"
    lines = printed.splitlines()
    assert lines[0] == "3 cases scored (whole tumour)"
    assert lines[1] == f"{'':<8}" + "".join(f"{m:>22}" for m in METRICS)
    assert [line.split()[0] for line in lines[2:6]] == ["mean", "median", "std", "worst"]
    assert lines[6] == f"wrote {tmp_path / 'm.csv'} and {tmp_path / 'm.json'}" and len(lines) == 7
