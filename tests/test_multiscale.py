"""fastseg.features.multiscale_features against scikit-image's multiscale_basic_features and against
its float64 reference twin (fastseg._reference.multiscale_features)."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastseg import _multiscale
from fastseg import _reference as ref
from fastseg._ext import _multiscale as baseline_kernel
from fastseg.features import multiscale_features

EPS = float(np.finfo(np.float32).eps)
#: The stated tolerance (the function's Notes): per channel, |difference| <= ATOL_EPS * eps * max|image|.
ATOL_EPS = 16

DTYPES = ["uint8", "uint16", "int16", "float32", "float64"]


def _as_float(image):
    """The image's values as multiscale_features reads them (skimage's img_as_float32 rescaling)."""
    if image.dtype.kind == "f":
        return image.astype(np.float32)
    return np.maximum(image.astype(np.float64) / np.iinfo(image.dtype).max, -1.0).astype(np.float32)


def _random_image(rng, shape, dtype):
    if dtype.startswith("float"):
        return (rng.normal(size=shape) * rng.choice([1e-3, 1.0, 300.0])).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)


def _assert_close(got, want, image, channel_axis):
    """Every column within ATOL_EPS * eps * max|its channel| of ``want``."""
    values = _as_float(image)
    values = values[..., None] if channel_axis is None else np.moveaxis(values, channel_axis, -1)
    n_channels = values.shape[-1]
    assert got.shape == want.shape and got.dtype == np.float32
    per_channel = got.shape[-1] // n_channels
    scale = np.repeat(np.abs(values.reshape(-1, n_channels)).max(axis=0), per_channel)
    atol = ATOL_EPS * EPS * np.maximum(scale, np.finfo(np.float32).tiny)
    err = np.abs(got.astype(np.float64) - want).reshape(-1, got.shape[-1]).max(axis=0)
    bad = np.flatnonzero(err > atol)
    assert bad.size == 0, f"columns {bad[:5]}: error {err[bad[:5]] / (EPS * scale[bad[:5]])} eps x max|image|"


@st.composite
def cases(draw, min_side=2):
    ndim = draw(st.sampled_from([2, 3]))
    high = 24 if ndim == 2 else 9
    shape = tuple(draw(st.integers(min_side, high)) for _ in range(ndim))
    n_channels = draw(st.integers(1, 4))
    dtype = draw(st.sampled_from(DTYPES))
    sigma_min = draw(st.sampled_from([0.3, 0.5, 1.0, 1.7]))
    sigma_max = sigma_min * draw(st.sampled_from([1, 2, 5, 16]))
    num_sigma = draw(st.sampled_from([None, 1, 3]))
    kinds = draw(st.sampled_from([(True, True, True), (True, False, False), (False, True, False),
                                  (False, False, True), (False, True, True)]))
    axis = draw(st.sampled_from([None, 0, -1])) if n_channels > 1 or draw(st.booleans()) else None
    if axis is None:
        n_channels = 1
    seed = draw(st.integers(0, 2**32 - 1))
    return dict(ndim=ndim, shape=shape, n_channels=n_channels, dtype=dtype, sigma_min=sigma_min,
                sigma_max=sigma_max, num_sigma=num_sigma, kinds=kinds, axis=axis, seed=seed)


def _build(case):
    rng = np.random.default_rng(case["seed"])
    shape = case["shape"]
    if case["axis"] is not None:
        shape = (case["n_channels"], *shape) if case["axis"] == 0 else (*shape, case["n_channels"])
    image = _random_image(rng, shape, case["dtype"])
    intensity, edges, texture = case["kinds"]
    kwargs = dict(intensity=intensity, edges=edges, texture=texture, sigma_min=case["sigma_min"],
                  sigma_max=case["sigma_max"], num_sigma=case["num_sigma"], channel_axis=case["axis"])
    return image, kwargs


@settings(deadline=None)
@given(case=cases())
def test_hypothesis_equals_skimage(case):
    feature = pytest.importorskip("skimage.feature")
    image, kwargs = _build(case)
    want = feature.multiscale_basic_features(image, workers=1, **kwargs)
    got = multiscale_features(image, workers=1, **kwargs)
    _assert_close(got, want, image, kwargs["channel_axis"])


@settings(deadline=None)
@given(case=cases(min_side=1))
def test_hypothesis_equals_reference(case):
    # sides of one pixel included: scikit-image cannot take them (numpy.gradient needs two), the
    # reference gives them zero derivatives
    image, kwargs = _build(case)
    want = ref.multiscale_features(_as_float(image), **kwargs)
    got = multiscale_features(image, workers=1, **kwargs)
    _assert_close(got, want, image, kwargs["channel_axis"])


@pytest.mark.parametrize("shape, axis, n_features", [((240, 240, 4), -1, 96), ((12, 20, 16), None, 30),
                                                     ((4, 10, 12, 14), 0, 120)])
def test_default_columns(shape, axis, n_features):
    image = np.random.default_rng(0).random(shape, dtype=np.float32)
    out = multiscale_features(image, channel_axis=axis)
    spatial = shape if axis is None else tuple(np.delete(np.array(shape), axis))
    assert out.shape == (*spatial, n_features)


def test_column_order_follows_channels_then_scales_then_kinds():
    rng = np.random.default_rng(1)
    image = rng.random((20, 22, 2), dtype=np.float32)
    both = multiscale_features(image, channel_axis=-1, sigma_max=2)
    for c in range(2):
        alone = multiscale_features(image[..., c], sigma_max=2)
        np.testing.assert_array_equal(both[..., c * 12:(c + 1) * 12], alone)
    per_scale = [multiscale_features(image[..., 0], sigma_min=s, sigma_max=s) for s in (0.5, 1.0, 2.0)]
    np.testing.assert_array_equal(both[..., :12], np.concatenate(per_scale, axis=-1))
    kinds = [multiscale_features(image[..., 0], intensity=i, edges=e, texture=t, sigma_min=1, sigma_max=1)
             for i, e, t in ((True, False, False), (False, True, False), (False, False, True))]
    np.testing.assert_array_equal(per_scale[1], np.concatenate(kinds, axis=-1))
    assert np.all(per_scale[1][..., 2] >= per_scale[1][..., 3])  # eigenvalues decreasing


def test_eigenvalues_3d_near_double_roots():
    # volumes whose Hessians have (near) repeated eigenvalues: a radial bump and a ridge
    z, y, x = np.mgrid[:15, :17, :19].astype(np.float32)
    bump = np.exp(-((z - 7) ** 2 + (y - 8) ** 2 + (x - 9) ** 2) / 20.0).astype(np.float32)
    ridge = np.exp(-((y - 8) ** 2) / 8.0).astype(np.float32) * np.ones_like(z)
    for volume in (bump, ridge, np.zeros_like(bump), np.full_like(bump, 0.25)):
        got = multiscale_features(volume, sigma_max=4)
        _assert_close(got, ref.multiscale_features(volume, sigma_max=4), volume, None)


def test_large_sigma_on_tiny_images():
    rng = np.random.default_rng(2)
    for shape in [(1, 1), (1, 5), (3, 1), (2, 2), (1, 1, 1), (2, 1, 3), (5, 4, 1)]:
        image = rng.random(shape, dtype=np.float32)
        got = multiscale_features(image, sigma_min=4, sigma_max=64)
        _assert_close(got, ref.multiscale_features(image, sigma_min=4, sigma_max=64), image, None)


@pytest.mark.parametrize("ndim", [2, 3])
def test_mask_rows_equal_dense_rows(ndim):
    rng = np.random.default_rng(3)
    shape = (37, 41, 3) if ndim == 2 else (11, 23, 19, 2)
    image = rng.random(shape, dtype=np.float32)
    dense = multiscale_features(image, channel_axis=-1, sigma_max=4)
    spatial = shape[:-1]
    for mask in (rng.random(spatial) < 0.1, rng.random(spatial) < 0.7, np.zeros(spatial, bool),
                 np.ones(spatial, bool)):
        masked = multiscale_features(image, channel_axis=-1, sigma_max=4, mask=mask)
        assert masked.shape == (int(mask.sum()), dense.shape[-1])
        np.testing.assert_array_equal(masked, dense[mask])
    one = np.zeros(spatial, bool)
    one[(0,) * ndim] = True
    np.testing.assert_array_equal(multiscale_features(image, channel_axis=-1, sigma_max=4, mask=one),
                                  dense[one])


def test_mask_rows_of_every_span_width_equal_dense_rows():
    # every run of filter taps, y-pass and x-pass alike, covers a row span of its own width: widths
    # 1 to 83 (not multiples of 8 or 32, so blocks end ragged), starting anywhere, touching the left
    # and right borders, with empty rows between, and radii (up to 48) wider than the image
    rng = np.random.default_rng(11)
    image = rng.normal(size=(90, 83, 2)).astype(np.float32)
    dense = multiscale_features(image, channel_axis=-1, sigma_max=12, workers=1)
    _assert_close(dense, ref.multiscale_features(image, channel_axis=-1, sigma_max=12), image, -1)
    mask = np.zeros(image.shape[:2], bool)
    for y in range(0, 90, 2):  # odd rows empty
        width = int(rng.integers(1, 84))
        start = [0, 83 - width, int(rng.integers(0, 84 - width))][y % 3]
        mask[y, start:start + width] = True
    mask[40:44] = False  # a gap wider than the second differences' reach
    masked = multiscale_features(image, channel_axis=-1, sigma_max=12, workers=1, mask=mask)
    np.testing.assert_array_equal(masked, dense[mask])


def test_out_is_written_and_returned():
    image = np.random.default_rng(4).random((16, 18, 2), dtype=np.float32)
    want = multiscale_features(image, channel_axis=-1)
    out = np.full(want.shape, np.nan, dtype=np.float32)
    assert multiscale_features(image, channel_axis=-1, out=out) is out
    np.testing.assert_array_equal(out, want)
    mask = image[..., 0] > 0.5
    out = np.empty((int(mask.sum()), want.shape[-1]), dtype=np.float32)
    assert multiscale_features(image, channel_axis=-1, mask=mask, out=out) is out
    np.testing.assert_array_equal(out, want[mask])


@pytest.mark.parametrize("shape", [(70, 53, 3), (19, 25, 21)])
def test_threads_equal_serial(shape, monkeypatch):
    monkeypatch.setattr(_multiscale, "MIN_PARALLEL_WORK", 0)  # threads even for these small images
    started = []
    real_thread = threading.Thread

    def counting_thread(*args, **kwargs):
        started.append(1)
        return real_thread(*args, **kwargs)
    monkeypatch.setattr(_multiscale.threading, "Thread", counting_thread)
    image = np.random.default_rng(5).random(shape, dtype=np.float32)
    axis = -1 if len(shape) == 3 and shape[-1] == 3 else None
    serial = multiscale_features(image, channel_axis=axis, workers=1)
    for workers in (2, 3, 8, None):
        np.testing.assert_array_equal(multiscale_features(image, channel_axis=axis, workers=workers), serial)
    assert started  # the kernel did run on threads
    # concurrent calls from several threads
    results = [None] * 4

    def run(i):
        results[i] = multiscale_features(image, channel_axis=axis, workers=2)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_array_equal(r, serial)


def test_small_images_run_on_the_calling_thread(monkeypatch):
    monkeypatch.setattr(_multiscale.threading, "Thread", None)  # any thread started would fail
    image = np.random.default_rng(5).random((40, 40, 4), dtype=np.float32)
    multiscale_features(image, channel_axis=-1, workers=4)


def test_tiles_do_not_change_results(monkeypatch):
    image = np.random.default_rng(6).random((40, 30), dtype=np.float32)
    volume = np.random.default_rng(6).random((13, 12, 11), dtype=np.float32)
    want2, want3 = multiscale_features(image, workers=1), multiscale_features(volume, workers=1)
    monkeypatch.setattr(_multiscale, "TILE_ROWS_2D", 3)
    monkeypatch.setattr(_multiscale, "MIN_SCRATCH", 1)
    np.testing.assert_array_equal(multiscale_features(image, workers=1), want2)
    np.testing.assert_array_equal(multiscale_features(volume, workers=1), want3)


def test_avx2_build_gives_the_baseline_bits():
    avx2 = _multiscale._kernel
    if avx2 is baseline_kernel:
        pytest.skip("no AVX2 build on this CPU")
    image = np.random.default_rng(7).random((9, 20, 24), dtype=np.float32)
    want = multiscale_features(image)
    try:
        _multiscale._kernel = baseline_kernel
        got = multiscale_features(image)
    finally:
        _multiscale._kernel = avx2
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("layout", ["fortran", "strided", "negative", "readonly"])
def test_any_layout_and_input_unchanged(layout):
    base = (np.random.default_rng(8).random((24, 26, 3)) * 1000).astype(np.uint16)
    want = multiscale_features(base, channel_axis=-1)
    image = {"fortran": np.asfortranarray(base), "strided": np.repeat(base, 2, axis=1)[:, ::2],
             "negative": base[::-1, ::-1][::-1, ::-1], "readonly": base.copy()}[layout]
    if layout == "readonly":
        image.flags.writeable = False
    before = image.copy()
    np.testing.assert_array_equal(multiscale_features(image, channel_axis=-1), want)
    np.testing.assert_array_equal(image, before)


def test_list_input_and_integer_rescaling():
    image = [[0, 255], [128, 64]]
    arr = np.array(image, dtype=np.uint8)
    np.testing.assert_array_equal(multiscale_features(arr), multiscale_features(arr / np.float32(255)))
    signed = np.array([[-32768, 32767], [0, -5]], dtype=np.int16)
    got = multiscale_features(signed, edges=False, texture=False, sigma_max=0.5)
    want = ref.multiscale_features(_as_float(signed), edges=False, texture=False, sigma_max=0.5)
    _assert_close(got, want, signed, None)


GOOD = np.zeros((8, 9), dtype=np.float32)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(image=None), TypeError, "image must be an array, got None"),
    (dict(image=np.zeros((4, 4), complex)), TypeError, "image must have a real"),
    (dict(image=np.zeros((4, 4), bool)), TypeError, "image must have a real"),
    (dict(image=np.zeros(5)), ValueError, "2 or 3 spatial dimensions, got shape \\(5,\\)"),
    (dict(image=np.zeros((2, 3, 4, 5))), ValueError, "2 or 3 spatial dimensions"),
    (dict(image=np.zeros((2, 3, 4, 5, 6)), channel_axis=-1), ValueError, "plus the channel axis"),
    (dict(image=np.zeros((0, 4))), ValueError, "zero-size axes"),
    (dict(image=np.array([[np.nan, 1.0], [0, 0]])), ValueError, "finite values, got 1 NaN"),
    (dict(image=np.array([[1e300, 1.0], [0, 0]])), ValueError, "beyond float32"),
    (dict(channel_axis=2), ValueError, "channel_axis must be None or an axis of image \\(ndim=2\\), got 2"),
    (dict(channel_axis=1.0), TypeError, "channel_axis must be None or an integer, got float"),
    (dict(sigma_min=0), ValueError, "sigma_min must be a number in \\(0, 100000.0\\], got 0.0"),
    (dict(sigma_min=-1), ValueError, "sigma_min must be"),
    (dict(sigma_min="1"), TypeError, "sigma_min must be a number"),
    (dict(sigma_max=0.25), ValueError, "sigma_max must be >= sigma_min=0.5, got 0.25"),
    (dict(sigma_max=1e9), ValueError, "sigma_max must be a number in"),
    (dict(sigma_min=1e-300), ValueError, "more than 1000 scales"),
    (dict(num_sigma=0), ValueError, "num_sigma must be an integer in \\[1, 1000\\], got 0"),
    (dict(num_sigma=2.5), TypeError, "num_sigma must be an integer"),
    (dict(num_sigma=10**9), ValueError, "num_sigma must be an integer in"),
    (dict(workers=0), ValueError, "workers must be an integer >= 1, got 0"),
    (dict(workers="2"), TypeError, "workers must be an integer"),
    (dict(intensity=False, edges=False, texture=False), ValueError, "at least one of intensity"),
    (dict(edges=1), TypeError, "edges must be True or False, got int 1"),
    (dict(mask=np.ones((8, 8), bool)), ValueError, "mask must have shape \\(8, 9\\), got shape \\(8, 8\\)"),
    (dict(mask=np.full((8, 9), 0.5)), ValueError, "mask with a floating dtype may hold only 0 and 1"),
    (dict(out=np.zeros((8, 9, 23), np.float32)), ValueError, "out must have shape \\(8, 9, 24\\)"),
    (dict(out=np.zeros((8, 9, 24), np.float64)), TypeError, "out must have dtype float32, got dtype float64"),
    (dict(out=np.zeros((8, 9, 24), np.float32, order="F")), ValueError, "out must be C-contiguous"),
    (dict(out=[0.0]), TypeError, "out must be a numpy.ndarray"),
])
def test_bad_input(kwargs, error, match):
    args = dict(image=GOOD, **kwargs) if "image" not in kwargs else kwargs
    with pytest.raises(error, match=match):
        multiscale_features(**args)


def test_out_sharing_the_image_is_rejected():
    buf = np.zeros((8, 9, 25), dtype=np.float32)
    with pytest.raises(ValueError, match="out must not share memory"):
        multiscale_features(buf[..., 0], texture=False, edges=False, sigma_max=0.5, num_sigma=25,
                            out=buf)


def test_kernel_rechecks_its_plan():
    img = np.zeros((1, 1, 4, 5), dtype=np.float32)
    w = np.ones((1, 2), dtype=np.float32)
    radii = np.array([1], dtype=np.intp)
    row_start, need, span = _multiscale.needed_rows(None, (1, 4, 5), False)
    out = np.zeros((20, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="gauss must hold"):
        baseline_kernel.tile_features(img, w, radii, False, True, True, True, None, row_start, need, span, out,
                                      0, 4, np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="radii must lie"):
        baseline_kernel.tile_features(img, w, np.array([2], np.intp), False, True, True, True, None,
                                      row_start, need, span, out, 0, 4, np.zeros(100, np.float32))
    with pytest.raises(ValueError, match="out must have at least 20 rows"):
        baseline_kernel.tile_features(img, w, radii, False, True, True, True, None, row_start, need, span,
                                      out[:5], 0, 4, np.zeros(100, np.float32))
    with pytest.raises(ValueError, match="span must hold column ranges"):
        baseline_kernel.tile_features(img, w, radii, False, True, True, True, None, row_start, need, span + 1,
                                      out, 0, 4, np.zeros(100, np.float32))
