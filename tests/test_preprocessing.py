"""brain_mask against the shipped BraTS brain masks; normalize_brain against a direct computation."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fastseg import _reference as ref

from fastseg import brain_mask, normalize_brain


def test_brain_mask_matches_shipped_masks(brats_train, brats_test):
    for data in (brats_train, brats_test):
        got = brain_mask(data["x"])
        agreement = (got == data["brain"]).mean()
        assert agreement >= 0.999, agreement
        # single slice == slice of a batch
        np.testing.assert_array_equal(brain_mask(data["x"][0]), got[0])


def test_brain_mask_falls_back_to_other_corners(rng):
    img = np.full((20, 20, 2), -0.5, np.float32)
    img[5:15, 5:15] = rng.standard_normal((10, 10, 2))
    img[0, 0] = [3.0, 4.0]  # top-left corner is (unusually) not background
    expected = np.zeros((20, 20), bool)
    expected[5:15, 5:15] = True
    expected[0, 0] = True
    np.testing.assert_array_equal(brain_mask(img), expected)


def test_brain_mask_without_background_is_all_brain(rng):
    img = rng.standard_normal((8, 8, 3)).astype(np.float32)
    assert brain_mask(img).all()


def test_brain_mask_any_channel_counts(rng):
    img = np.zeros((10, 10, 2), np.float32)
    img[3, 4, 1] = 1.0  # only channel 1 differs
    assert brain_mask(img).sum() == 1 and brain_mask(img)[3, 4]


def test_normalize_brain(rng):
    x = rng.standard_normal((3, 12, 10, 4)).astype(np.float32) * 5 + 2
    b = rng.random((3, 12, 10)) < 0.6
    x0 = x.copy()
    z = normalize_brain(x, b)
    np.testing.assert_array_equal(x, x0)
    for i in range(3):
        v = x[i][b[i]].astype(np.float64)
        np.testing.assert_allclose(z[i][b[i]], (v - v.mean(0)) / v.std(0), rtol=1e-5, atol=1e-5)
        assert (z[i][~b[i]] == 0).all()


def test_normalize_constant_channel_is_only_centred():
    x = np.ones((1, 4, 4, 2), np.float32)
    x[0, :, :, 1] = np.arange(16).reshape(4, 4)
    z = normalize_brain(x, np.ones((1, 4, 4), bool))
    assert (z[..., 0] == 0).all() and np.isfinite(z).all()


def test_bad_input():
    with pytest.raises(ValueError, match=r"brain must have shape \(4, 4\), got shape \(4, 5\)"):
        normalize_brain(np.zeros((4, 4, 1), np.float32), np.ones((4, 5), bool))
    with pytest.raises(ValueError, match="images must contain only finite values"):
        brain_mask(np.full((4, 4, 1), np.nan, np.float32))


@settings(deadline=None)  # example budget: the hypothesis profile (tests/conftest.py)
@given(
    hnp.arrays(np.float32, st.tuples(st.integers(1, 3), st.integers(1, 12), st.integers(1, 12), st.integers(1, 6)),
               elements=st.floats(-1e4, 1e4, width=32)),
    st.data(),
)
def test_hypothesis_normalize_equals_reference(x, data):
    brain = data.draw(hnp.arrays(np.bool_, x.shape[:3]))
    got = normalize_brain(x, brain)
    want = ref.normalize_brain(x, brain)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert (got[~brain] == 0).all()


@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 3, 2), (17, 9, 4), (240, 240, 3)])
@pytest.mark.parametrize("channels, channel", [(1, 0), (4, 0), (4, 3), (3, 1)])
def test_divide_into_slices_equals_numpy(rng, shape, channels, channel):
    """The case reader's kernel: (vol / d).astype(float32).transpose(2, 1, 0) into one channel, exactly."""
    from fastseg._ext import _normalize

    volume = np.asfortranarray(rng.standard_normal(shape) * 300.0 + 7.0)
    divisor = float(rng.uniform(0.5, 400.0))
    out = np.full(shape[::-1] + (channels,), np.nan, np.float32)
    _normalize.divide_into_slices(volume, divisor, out, channel)
    expected = (volume / divisor).astype(np.float32).transpose(2, 1, 0)
    np.testing.assert_array_equal(out[..., channel], expected)
    assert np.isnan(np.delete(out, channel, axis=3)).all()  # the other channels untouched


_STORED = [np.int8, np.uint8, np.int16, np.uint16]


@settings(max_examples=150, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(_STORED), shape=hnp.array_shapes(min_dims=3, max_dims=3, max_side=40),
       zeros=st.floats(0.0, 1.0), view=st.integers(0, 5), channels=st.integers(1, 4))
def test_zscore_into_slices_equals_numpy_bit_for_bit(data, dtype, shape, zeros, view, channels):
    """The case reader's kernel against float64 numpy: the same mean, std and float32 slices, bit for
    bit, over the four stored types, reoriented (flipped, permuted) views and mostly-zero volumes."""
    from fastseg._ext import _normalize

    info = np.iinfo(dtype)
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    raw = rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)
    raw[rng.random(shape) < zeros] = 0
    raw = np.asfortranarray(raw)  # as nibabel gives a NIfTI volume
    volume = [raw, raw[::-1], raw[:, ::-1, ::-1], raw.transpose(2, 0, 1), raw.transpose(1, 2, 0)[::-1, :, ::-1],
              raw[..., ::-1].transpose(1, 0, 2)][view]
    want, nonzero, mean, std = ref.zscore_volume(volume)
    channel = data.draw(st.integers(0, channels - 1))
    out = np.full(volume.shape[::-1] + (channels,), np.nan, np.float32)
    brain = np.zeros(volume.shape[::-1], np.uint8)
    brain.ravel()[:: max(1, brain.size // 5)] = 1  # the kernel adds to a mask other channels began
    before = brain.copy()
    got_mean, got_std, any_nonzero = _normalize.zscore_into_slices(volume, out, channel, brain)
    assert (got_mean, got_std) == (mean, std)
    np.testing.assert_array_equal(out[..., channel], want)
    assert np.isnan(np.delete(out, channel, axis=3)).all()
    np.testing.assert_array_equal(brain.astype(bool), before.astype(bool) | nonzero)
    assert any_nonzero == bool(nonzero.any())


def test_zscore_into_slices_equals_numpy_on_a_real_volume(brats2d_dir):
    """A whole BraTS channel (8.9 million voxels: numpy's pairwise sum at depth) in two orientations."""
    import nibabel as nib

    from fastseg._ext import _normalize

    raw = np.asanyarray(nib.load(next((brats2d_dir.parent / "brats_volumes").glob("*/*_flair.nii.gz"))).dataobj)
    for volume in (raw, raw[::-1, :, ::-1].transpose(1, 0, 2)):
        want, nonzero, mean, std = ref.zscore_volume(volume)
        out = np.empty(volume.shape[::-1] + (1,), np.float32)
        brain = np.zeros(volume.shape[::-1], np.uint8)
        assert _normalize.zscore_into_slices(volume, out, 0, brain) == (mean, std, True)
        np.testing.assert_array_equal(out[..., 0], want)
        np.testing.assert_array_equal(brain.astype(bool), nonzero)


def test_zscore_into_slices_rejects_bad_buffers():
    from fastseg._ext import _normalize

    volume = np.ones((4, 3, 2), np.int16)
    out, brain = np.empty((2, 3, 4, 2), np.float32), np.zeros((2, 3, 4), np.uint8)
    with pytest.raises(ValueError, match=r"out must have shape \(2, 3, 4, C\)"):
        _normalize.zscore_into_slices(volume, np.empty((2, 4, 3, 2), np.float32), 0, brain)
    with pytest.raises(ValueError, match=r"brain must have shape \(2, 3, 4\)"):
        _normalize.zscore_into_slices(volume, out, 0, np.zeros((2, 4, 3), np.uint8))
    with pytest.raises(ValueError, match=r"channel must be in \[0, 2\), got -1"):
        _normalize.zscore_into_slices(volume, out, -1, brain)
    with pytest.raises(ValueError, match="volume must hold 1 to 2\\*\\*36 voxels"):
        _normalize.zscore_into_slices(np.ones((0, 3, 2), np.int16), np.empty((2, 3, 0, 1), np.float32), 0,
                                      np.zeros((2, 3, 0), np.uint8))
    with pytest.raises(TypeError):  # 32-bit and float volumes take the numpy route
        _normalize.zscore_into_slices(volume.astype(np.int32), out, 0, brain)


def test_divide_into_slices_rejects_bad_buffers():
    from fastseg._ext import _normalize

    volume = np.asfortranarray(np.ones((4, 3, 2)))
    out = np.empty((2, 3, 4, 2), np.float32)
    with pytest.raises(ValueError, match=r"out must have shape \(2, 3, 4, C\)"):
        _normalize.divide_into_slices(volume, 1.0, np.empty((2, 4, 3, 2), np.float32), 0)
    with pytest.raises(ValueError, match=r"channel must be in \[0, 2\), got 2"):
        _normalize.divide_into_slices(volume, 1.0, out, 2)
    for bad in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="divisor must be a positive finite number"):
            _normalize.divide_into_slices(volume, bad, out, 0)
    with pytest.raises(ValueError, match="ndarray is not Fortran contiguous"):
        _normalize.divide_into_slices(np.ones((4, 3, 2)), 1.0, out, 0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, -np.nan])
@pytest.mark.parametrize("where", ["brain", "background", "last value"])
def test_normalize_rejects_any_non_finite_value(bad, where):
    """The kernel looks at every value of a slice, inside the brain or not, before normalising it."""
    x = np.random.default_rng(0).standard_normal((3, 9, 7, 4)).astype(np.float32)
    brain = np.zeros((3, 9, 7), bool)
    brain[:, 2:7, 1:6] = True
    at = {"brain": (1, 4, 3, 2), "background": (2, 0, 0, 0), "last value": (2, 8, 6, 3)}[where]
    x[at] = bad
    before = x.copy()
    with pytest.raises(ValueError, match=r"images must contain only finite values, got 1 NaN or infinite"):
        normalize_brain(x, brain)
    np.testing.assert_array_equal(x, before)


def test_predict_counts_non_finite_values_over_the_whole_batch(rng):
    from fastseg import PixelSegmenter

    x = rng.standard_normal((40, 12, 12, 4)).astype(np.float32)
    y = np.zeros((40, 12, 12), bool)
    y[:, 4:8, 4:8] = True
    seg = PixelSegmenter(max_iter=5, max_pixels=50, random_state=0).fit(x[:4], y[:4])
    x[0, 0, 0, 0] = np.nan  # the first chunk of 16 slices
    x[33, 5, 5, 1] = np.inf  # the third
    for n_jobs in (1, 2):
        with pytest.raises(ValueError, match=r"images must contain only finite values, got 2 NaN or infinite"):
            seg.set_params(n_jobs=n_jobs).predict(x)
