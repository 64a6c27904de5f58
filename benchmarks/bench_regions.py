"""Three BraTS regions against the whole tumour alone, on whole held-out volumes.

The cascade (:class:`fastseg.RegionSegmenter`) scores the whole tumour on every brain voxel, then the
tumour core only inside the whole tumour it found and the enhancing tumour only inside the core.  The
baseline in the same run is the whole tumour alone, what a user who asks for it gets: the cascade's
own first stage (``PixelModel.predict``) and the same 3-D clean-up.  Both run on one thread over the
brain slices of each of the three held-out cases of ``../shared/data/brats_volumes``; the ratio of
the medians is the cost of the two extra regions.

The stages are fitted on every second brain slice of three training cases (``max_pixels=100``), to
keep the set-up short; the tumour they find, and so the work of the later stages, is of the size a
fully trained model finds.

Run:  pytest benchmarks/bench_regions.py --benchmark-columns=median,iqr,rounds
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

VOLUMES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "brats_volumes"


def _brain_slices(name: str):
    from fastseg.io import read_case

    case = read_case(VOLUMES / name)
    held = np.flatnonzero(case.brain.any(axis=(1, 2)))
    span = slice(held[0], held[-1] + 1)
    return np.ascontiguousarray(case.images[span]), case.brain[span], case.labels[span], case.convention


@pytest.fixture(scope="module")
def cases():
    pytest.importorskip("nibabel")
    if not (VOLUMES / "manifest.json").exists():
        pytest.skip("BraTS volumes not found at ../shared/data/brats_volumes")
    manifest = json.loads((VOLUMES / "manifest.json").read_text())["cases"]
    train = [c["patient"] for c in manifest if c["split"] == "train"][:3]
    test = [c["patient"] for c in manifest if c["split"] == "test"]
    return [_brain_slices(n) for n in train], {n: _brain_slices(n) for n in test}


@pytest.fixture(scope="module")
def region_model(cases):
    from fastseg import PixelSegmenter, RegionSegmenter
    from fastseg.io import label_map, regions

    train, _ = cases
    images = [x[::2] for x, _, _, _ in train]
    brain = [b[::2] for _, b, _, _ in train]
    labels = [label_map(regions(m[::2], c), "brats2018") for _, _, m, c in train]
    seg = RegionSegmenter(PixelSegmenter(max_pixels=100, random_state=0, n_jobs=1))
    return seg.fit(images, labels, brain).model_


def _whole_tumour(model, x, b):
    from fastseg.components import clean_volume

    return clean_volume(model.whole.predict(x, b, n_jobs=1), model.whole.postprocessing.min_relative_size)


@pytest.mark.parametrize("case", ["Brats18_2013_3_1", "Brats18_CBICA_ALU_1", "Brats18_TCIA13_623_1"])
@pytest.mark.parametrize("impl", ["whole-tumour", "three-regions"])
def test_regions_of_a_volume(benchmark, cases, region_model, case, impl):
    benchmark.group = f"regions-volume-{case}"
    _, test = cases
    if case not in test:
        pytest.skip(f"{case} is not a test case of this copy of the volumes")
    x, b, _, _ = test[case]
    if impl == "whole-tumour":
        wt = benchmark(_whole_tumour, region_model, x, b)
    else:
        found = benchmark(region_model.predict_regions, x, b, volume=True, n_jobs=1)
        wt = found["whole tumour"]
        assert not (found["tumour core"] & ~wt).any() and not (found["enhancing tumour"] & ~found["tumour core"]).any()
    # the first stage of the cascade is the whole tumour alone
    np.testing.assert_array_equal(wt, _whole_tumour(region_model, x, b))
    benchmark.extra_info["brain_slices"] = len(x)
    benchmark.extra_info["tumour_voxels"] = int(wt.sum())
