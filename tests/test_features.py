"""window_features: the Cython gather kernel against its numpy twin, layouts, and bad input."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastseg
from fastseg import _reference as ref
from fastseg import feature_offsets, window_features

KS = [1, 3, 5, 7, 9]
MODES = ["reflect", "constant", "edge"]
SHAPES = [(1, 1), (1, 7), (7, 1), (2, 3), (5, 5), (13, 9), (31, 17)]


def allowed(k, mode, h, w):
    r = k // 2
    return (r < min(h, w)) if mode == "reflect" else (r <= max(h, w))


def random_images(rng, n, h, w, c):
    return rng.standard_normal((n, h, w, c)).astype(np.float32)


# ----------------------------------------------------------------------------- kernel == reference

@pytest.mark.parametrize("k,mode,c", list(itertools.product(KS, MODES, [1, 3, 4])))
def test_dense_equals_reference(rng, k, mode, c):
    for h, w in SHAPES:
        if not allowed(k, mode, h, w):
            continue
        for n in (1, 5):
            x = random_images(rng, n, h, w, c)
            got = window_features(x, k, mode=mode)
            assert got.dtype == np.float32 and got.flags.c_contiguous
            np.testing.assert_array_equal(got, ref.window_features(x, k, mode=mode))


@pytest.mark.parametrize("k,mode,c", list(itertools.product(KS, MODES, [1, 3, 4])))
@pytest.mark.parametrize("density", [0.0, 0.4, 1.0])
def test_masked_equals_reference(rng, k, mode, c, density):
    for h, w in SHAPES:
        if not allowed(k, mode, h, w):
            continue
        for n in (1, 5):
            x = random_images(rng, n, h, w, c)
            mask = rng.random((n, h, w)) < density
            got = window_features(x, k, mask=mask, mode=mode)
            assert got.shape == (int(mask.sum()), k * k * c)
            np.testing.assert_array_equal(got, ref.window_features(x, k, mask=mask, mode=mode))


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("mode", MODES)
def test_full_size_slice(rng, k, mode):
    x = random_images(rng, 1, 240, 240, 4)
    np.testing.assert_array_equal(window_features(x, k, mode=mode), ref.window_features(x, k, mode=mode))
    mask = rng.random((1, 240, 240)) < 0.4
    np.testing.assert_array_equal(
        window_features(x, k, mode=mode, mask=mask), ref.window_features(x, k, mask=mask, mode=mode)
    )


def test_single_image_equals_batch_of_one(rng):
    x = random_images(rng, 1, 9, 11, 4)
    mask = rng.random((9, 11)) < 0.5
    np.testing.assert_array_equal(window_features(x[0], 5), window_features(x, 5))
    np.testing.assert_array_equal(window_features(x[0], 5, mask=mask), window_features(x, 5, mask=mask[None]))


def test_rows_follow_raster_order_over_the_batch(rng):
    x = random_images(rng, 3, 6, 5, 2)
    X = window_features(x, 3)
    for n, y, xx in [(0, 0, 0), (1, 2, 3), (2, 5, 4)]:
        np.testing.assert_array_equal(X[(n * 6 + y) * 5 + xx], window_features(x[n], 3)[y * 5 + xx])


def test_columns_follow_feature_offsets(rng):
    x = random_images(rng, 1, 8, 8, 3)
    k, r = 5, 2
    X = window_features(x, k, mode="constant")
    padded = np.pad(x[0], ((r, r), (r, r), (0, 0)))
    y0, x0 = 4, 3
    expected = [padded[y0 + r + dy, x0 + r + dx, c] for dy, dx, c in feature_offsets(k, 3)]
    np.testing.assert_array_equal(X[y0 * 8 + x0], np.array(expected, dtype=np.float32))


def test_feature_offsets_order():
    off = feature_offsets(3, 2)
    assert off.shape == (18, 3)
    assert off[0].tolist() == [-1, -1, 0] and off[-1].tolist() == [1, 1, 1]
    # channel fastest, then dx, then dy
    assert off[1].tolist() == [-1, -1, 1] and off[2].tolist() == [-1, 0, 0] and off[6].tolist() == [0, -1, 0]
    assert fastseg.n_window_features(5, 4) == 100


@pytest.mark.parametrize("mode", MODES)
def test_border_values_follow_numpy_pad(mode):
    img = np.tile(np.arange(1, 5, dtype=np.float32), (2, 1))[..., None]  # two rows: 1 2 3 4
    X = window_features(img, 3, mode=mode)
    # centre row of the window of pixel 0, then of pixel 3
    left = {"reflect": [2, 1, 2], "edge": [1, 1, 2], "constant": [0, 1, 2]}[mode]
    right = {"reflect": [3, 4, 3], "edge": [3, 4, 4], "constant": [3, 4, 0]}[mode]
    assert X[0].reshape(3, 3)[1].tolist() == left
    assert X[3].reshape(3, 3)[1].tolist() == right


# ----------------------------------------------------------------------------- dtypes and layouts

@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int16, np.uint8, np.int64])
def test_real_dtypes_are_computed_in_float32(rng, dtype):
    x = (rng.standard_normal((2, 7, 6, 3)) * 10).astype(dtype)
    got = window_features(x, 3)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, ref.window_features(x.astype(np.float32), 3))


def _layouts(x):
    """(name, array) pairs of one content in several memory layouts, each checked for its flags."""
    fortran = np.asfortranarray(x)
    assert fortran.flags.f_contiguous and not fortran.flags.c_contiguous
    big = np.zeros((x.shape[0], x.shape[1] * 2, x.shape[2] * 3, x.shape[3] * 2), dtype=x.dtype)
    big[:, ::2, ::3, ::2] = x
    strided = big[:, ::2, ::3, ::2]
    assert not strided.flags.c_contiguous and np.array_equal(strided, x)
    readonly = x.copy()
    readonly.flags.writeable = False
    reversed_ = x[:, ::-1, ::-1].copy()[:, ::-1, ::-1]
    assert reversed_.strides[1] < 0
    return [("C", x), ("F", fortran), ("strided", strided), ("readonly", readonly), ("negative", reversed_)]


@pytest.mark.parametrize("k", [1, 3, 5])
def test_memory_layouts(rng, k):
    x = random_images(rng, 2, 9, 8, 4)
    mask = rng.random((2, 9, 8)) < 0.4
    expected = ref.window_features(x, k)
    expected_masked = ref.window_features(x, k, mask=mask)
    for name, arr in _layouts(x):
        before = arr.copy()
        np.testing.assert_array_equal(window_features(arr, k), expected, err_msg=name)
        np.testing.assert_array_equal(window_features(arr, k, mask=np.asfortranarray(mask)), expected_masked, err_msg=name)
        np.testing.assert_array_equal(arr, before)


@pytest.mark.parametrize("mask_dtype", [bool, np.uint8, np.int32, np.float32])
def test_mask_dtypes(rng, mask_dtype):
    x = random_images(rng, 1, 6, 7, 2)
    mask = rng.random((1, 6, 7)) < 0.5
    np.testing.assert_array_equal(
        window_features(x, 3, mask=mask.astype(mask_dtype)), ref.window_features(x, 3, mask=mask)
    )


def test_inputs_are_not_modified(rng):
    x = random_images(rng, 2, 10, 10, 4)
    mask = rng.random((2, 10, 10)) < 0.3
    x0, m0 = x.copy(), mask.copy()
    window_features(x, 5, mask=mask, mode="edge")
    window_features(x, 5)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(mask, m0)


def test_out_is_filled_and_returned(rng):
    x = random_images(rng, 2, 6, 5, 3)
    out = np.full((60, 27), np.nan, dtype=np.float32)
    result = window_features(x, 3, out=out)
    assert result is out
    np.testing.assert_array_equal(out, ref.window_features(x, 3))
    mask = rng.random((2, 6, 5)) < 0.5
    out_m = np.empty((int(mask.sum()), 27), dtype=np.float32)
    assert window_features(x, 3, mask=mask, out=out_m) is out_m
    np.testing.assert_array_equal(out_m, ref.window_features(x, 3, mask=mask))


def test_empty_mask_gives_zero_rows(rng):
    x = random_images(rng, 2, 4, 4, 4)
    X = window_features(x, 3, mask=np.zeros((2, 4, 4), bool))
    assert X.shape == (0, 36) and X.dtype == np.float32


# ----------------------------------------------------------------------------- hypothesis

@st.composite
def cases(draw):
    n = draw(st.integers(1, 3))
    h = draw(st.integers(1, 12))
    w = draw(st.integers(1, 12))
    c = draw(st.integers(1, 5))
    mode = draw(st.sampled_from(MODES))
    max_r = min(h, w) - 1 if mode == "reflect" else max(h, w)
    k = 2 * draw(st.integers(0, min(max_r, 5))) + 1
    elements = st.floats(-1e6, 1e6, allow_nan=False, width=32)
    x = draw(hnp.arrays(np.float32, (n, h, w, c), elements=elements))
    mask = draw(st.none() | hnp.arrays(np.bool_, (n, h, w)))
    return x, k, mode, mask


@settings(deadline=None)  # example budget: the hypothesis profile (tests/conftest.py)
@given(cases())
def test_hypothesis_kernel_equals_reference(case):
    x, k, mode, mask = case
    np.testing.assert_array_equal(
        window_features(x, k, mode=mode, mask=mask), ref.window_features(x, k, mode=mode, mask=mask)
    )


# ----------------------------------------------------------------------------- bad input

def test_bad_images():
    good = np.zeros((4, 4, 2), np.float32)
    with pytest.raises(ValueError, match=r"images must have shape \(H, W, C\) or \(N, H, W, C\), got ndim=2"):
        window_features(good[..., 0])
    with pytest.raises(ValueError, match="ndim=5"):
        window_features(good[None, None])
    with pytest.raises(ValueError, match="images must not have zero-size axes"):
        window_features(np.zeros((0, 4, 2), np.float32))
    with pytest.raises(ValueError, match="zero-size"):
        window_features(np.zeros((4, 4, 0), np.float32))
    with pytest.raises(TypeError, match="images must have a real .* dtype, got dtype complex64"):
        window_features(good.astype(np.complex64))
    with pytest.raises(TypeError, match="dtype object"):
        window_features(good.astype(object))
    with pytest.raises(TypeError, match="dtype bool"):
        window_features(good.astype(bool))
    with pytest.raises(TypeError, match="images must be an array, got None"):
        window_features(None)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_images_are_rejected(bad):
    x = np.zeros((3, 3, 2), np.float32)
    x[1, 2, 1] = bad
    with pytest.raises(ValueError, match=r"images must contain only finite values, got 1 NaN or infinite"):
        window_features(x, 3)


def test_float64_overflowing_float32_is_rejected():
    x = np.full((3, 3, 1), 1e300)
    with pytest.raises(ValueError, match="finite"):
        window_features(x, 1)


@pytest.mark.parametrize(
    "k,exc,match",
    [
        (2, ValueError, "k must be an odd integer >= 1, got 2"),
        (0, ValueError, "got 0"),
        (-3, ValueError, "got -3"),
        (3.0, TypeError, "k must be an odd integer >= 1, got float 3.0"),
        (True, TypeError, "got bool True"),
        ("3", TypeError, "got str"),
        (None, TypeError, "got NoneType"),
    ],
)
def test_bad_k(k, exc, match):
    with pytest.raises(exc, match=match):
        window_features(np.zeros((5, 5, 1), np.float32), k)


def test_numpy_integer_k_is_accepted():
    x = np.ones((5, 5, 1), np.float32)
    assert window_features(x, np.int64(3)).shape == (25, 9)


def test_k_too_large_for_mode():
    x = np.zeros((4, 6, 1), np.float32)
    with pytest.raises(ValueError, match=r"k=9 is too large for mode='reflect' on 4x6 images"):
        window_features(x, 9)
    assert window_features(x, 7).shape == (24, 49)  # r=3 < 4: still a single reflection
    assert window_features(x, 9, mode="edge").shape == (24, 81)
    with pytest.raises(ValueError, match=r"k=15 is too large for 4x6 images"):
        window_features(x, 15, mode="constant")
    with pytest.raises(ValueError, match="too large"):
        window_features(x, 10**9 + 1, mode="edge")


def test_bad_mode():
    x = np.zeros((4, 4, 1), np.float32)
    with pytest.raises(ValueError, match=r"mode must be one of \('reflect', 'constant', 'edge'\), got 'wrap'"):
        window_features(x, 3, mode="wrap")
    with pytest.raises(TypeError, match="mode must be one of"):
        window_features(x, 3, mode=None)


def test_bad_mask():
    x = np.zeros((2, 4, 4, 1), np.float32)
    with pytest.raises(ValueError, match=r"mask must have shape \(2, 4, 4\), got shape \(4, 4\)"):
        window_features(x, 3, mask=np.ones((4, 4), bool))
    with pytest.raises(ValueError, match=r"mask must have shape \(4, 4\)"):
        window_features(x[0], 3, mask=np.ones((1, 4, 4), bool))
    with pytest.raises(TypeError, match="mask must be a boolean or integer mask, got dtype complex128"):
        window_features(x, 3, mask=np.ones((2, 4, 4), complex))
    with pytest.raises(ValueError, match="mask with a floating dtype may hold only 0 and 1, got value 0.5"):
        window_features(x, 3, mask=np.full((2, 4, 4), 0.5))


def test_bad_out():
    x = np.zeros((1, 3, 3, 2), np.float32)
    with pytest.raises(ValueError, match=r"out must have shape \(9, 18\), got shape \(9, 17\)"):
        window_features(x, 3, out=np.empty((9, 17), np.float32))
    with pytest.raises(TypeError, match="out must have dtype float32, got dtype float64"):
        window_features(x, 3, out=np.empty((9, 18)))
    with pytest.raises(ValueError, match="out must be C-contiguous"):
        window_features(x, 3, out=np.empty((18, 9), np.float32).T)
    ro = np.empty((9, 18), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out must be writeable"):
        window_features(x, 3, out=ro)
    with pytest.raises(TypeError, match="out must be a numpy.ndarray, got list"):
        window_features(x, 3, out=[[0.0] * 18] * 9)
    buf = np.zeros(9 * 18, np.float32)
    with pytest.raises(ValueError, match="out must not share memory with the input"):
        window_features(buf[:18].reshape(1, 3, 3, 2), 1, out=buf[:18].reshape(9, 2))


def test_kernel_rejects_inconsistent_buffers():
    """The compiled kernel re-checks the facts memory safety depends on, even if called directly."""
    from fastseg._ext import _windows
    from fastseg.features import pad_index, padded_scratch

    x = np.zeros((1, 5, 5, 2), np.float32)
    rm = pad_index(5, 1, "reflect")
    ok_out = np.empty((25, 18), np.float32)
    with pytest.raises(ValueError, match="out must have 25 rows"):
        _windows.gather_dense(x, rm, rm, 3, np.empty((24, 18), np.float32), padded_scratch(5, 5, 2, 3))
    with pytest.raises(ValueError, match="scratch must have shape"):
        _windows.gather_dense(x, rm, rm, 3, ok_out, padded_scratch(5, 5, 2, 5))
    with pytest.raises(ValueError, match="rowmap holds an index outside the image"):
        _windows.gather_dense(x, rm + 1, rm, 3, ok_out, padded_scratch(5, 5, 2, 3))
    with pytest.raises(ValueError, match="k must be odd"):
        _windows.gather_dense(x, rm, rm, 2, ok_out, padded_scratch(5, 5, 2, 3))
    with pytest.raises(ValueError, match="one row per masked pixel"):
        _windows.gather_masked(x, rm, rm, 3, np.ones((1, 5, 5), np.uint8), ok_out[:3], padded_scratch(5, 5, 2, 3))
