"""Shared fixtures: the real BraTS slices beside the repository, and random images."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

# Property tests (kernel == reference on random inputs) take their example budget from a profile:
# "ci" (the default) is a short always-on run; "fuzz" is the opt-in long run:
#     pytest tests --hypothesis-profile=fuzz -k "hypothesis or properties"
settings.register_profile("ci", max_examples=100, deadline=None)
settings.register_profile("fuzz", max_examples=5000, deadline=None)
settings.load_profile("ci")

#: ``../shared/data/brats2d`` from the repository root (CI lays ``shared/`` beside the clone).
BRATS2D = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "brats2d"


def _require_brats():
    if not (BRATS2D / "train_x.npy").exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI must have the BraTS slices at ../shared/data/brats2d (looked in {BRATS2D})")
        pytest.skip("BraTS slices not found at ../shared/data/brats2d")


@pytest.fixture(scope="session")
def brats2d_dir():
    """The brats2d folder (the test fails in CI, and is skipped elsewhere, when it is missing)."""
    _require_brats()
    return BRATS2D


@pytest.fixture(scope="session")
def brats_train():
    """Real BraTS training slices: dict with x (17,240,240,4) float32, y, brain (bool) and patients."""
    _require_brats()
    return {
        "x": np.load(BRATS2D / "train_x.npy"),
        "y": np.load(BRATS2D / "train_y.npy").astype(bool),
        "brain": np.load(BRATS2D / "train_brain.npy"),
        "patients": (BRATS2D / "train_patients.txt").read_text().split(),
    }


@pytest.fixture(scope="session")
def brats_test():
    """Real BraTS test slices (3 patients), same keys as ``brats_train``."""
    _require_brats()
    return {
        "x": np.load(BRATS2D / "test_x.npy"),
        "y": np.load(BRATS2D / "test_y.npy").astype(bool),
        "brain": np.load(BRATS2D / "test_brain.npy"),
        "patients": (BRATS2D / "test_patients.txt").read_text().split(),
    }


@pytest.fixture(scope="session")
def brats_multislice():
    """The extra slices of the same patients: dict split -> dict with x, y, brain (bool) and patients (array)."""
    _require_brats()
    out = {}
    for split in ("train", "test"):
        with np.load(BRATS2D / f"multislice_{split}.npz", allow_pickle=False) as z:
            out[split] = {"x": z["x"], "y": z["y"].astype(bool), "brain": z["brain"], "patients": z["patient"]}
    return out


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def main_in_fresh_python():
    """Run ``fastseg.cli.main(argv)`` in a new interpreter in ``cwd``: the finished process, whose
    stdout says the exit code and which heavy modules it imported, as
    ``exit 0 sklearn imported: False scipy.ndimage imported: False``."""
    def run(argv, cwd):
        script = ("import sys\nfrom fastseg.cli import main\n"
                  f"code = main({[str(a) for a in argv]!r})\n"
                  "print('exit', code, 'sklearn imported:', any(m.split('.')[0] == 'sklearn' for m in sys.modules),\n"
                  "      'scipy.ndimage imported:', 'scipy.ndimage' in sys.modules)\n")
        return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=cwd)
    return run


#: Three shipped BraTS cases, cropped around their tumours to every other axial slice of a 140 x 160
#: block: real data, small enough for command-line tests.
SMALL_CASES = ("Brats18_2013_3_1", "Brats18_CBICA_ALU_1", "Brats18_TCIA02_135_1")
SMALL_CROP = (slice(50, 190), slice(40, 200), slice(30, 110, 2))


def small_case_volume(case: str, modality: str) -> tuple:
    """(data, affine) of one modality of a shipped case, cropped to :data:`SMALL_CROP` (its affine
    shifted to the crop and to the doubled slice spacing)."""
    nib = pytest.importorskip("nibabel")
    img = nib.load(BRATS2D.parent / "brats_volumes" / case / f"{case}_{modality}.nii.gz")
    shift = np.eye(4)
    shift[:3, 3] = [s.start for s in SMALL_CROP]
    return np.asarray(img.dataobj)[SMALL_CROP], img.affine @ shift @ np.diag([1, 1, 2, 1])


@pytest.fixture(scope="session")
def small_cases_folder(tmp_path_factory):
    """A folder of :data:`SMALL_CASES`: the first two as BraTS 2018 case directories, the third in the
    BraTS 2023 naming and labels (enhancing tumour 3).  Each keeps its affine, shifted to the crop."""
    _require_brats()
    nib = pytest.importorskip("nibabel")
    root = tmp_path_factory.mktemp("small_cases")
    names = {"t1": "t1n", "t2": "t2w", "t1ce": "t1c", "flair": "t2f", "seg": "seg"}
    for i, case in enumerate(SMALL_CASES):
        (root / case).mkdir()
        for m in ("t1", "t2", "t1ce", "flair", "seg"):
            data, affine = small_case_volume(case, m)
            if i == 2:
                data = np.where(data == 4, 3, data) if m == "seg" else data
                path = root / case / f"{case}-{names[m]}.nii.gz"
            else:
                path = root / case / f"{case}_{m}.nii.gz"
            nib.save(nib.Nifti1Image(data, affine), path)
    return root
