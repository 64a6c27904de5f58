"""Pixel features (the context kernel) against the scipy twin, over families, shapes, masks and layouts."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fastseg import _reference as ref
from fastseg.features import pixel_feature_names, pixel_features, window_features

FAMILIES = [
    dict(),                                                   # the defaults
    dict(std_sizes=(), asymmetry=False, gradient_size=0, position=False),  # values only
    dict(mean_sizes=(1, 3, 31), std_sizes=(1, 5), asymmetry=False, gradient_size=0, position=False),
    dict(std_sizes=(), asymmetry=True, asymmetry_box=3, gradient_size=0, position=False),
    dict(std_sizes=(), asymmetry=False, gradient_size=3, position=False),
    dict(std_sizes=(), asymmetry=False, gradient_size=0, position=True),
    dict(mean_sizes=(7,), std_sizes=(15,), gradient_size=7),
]


def _brain(rng, shape, kind):
    N, H, W = shape
    if kind == "random":
        return rng.random(shape) < 0.8
    if kind == "disc":
        yy, xx = np.mgrid[:H, :W]
        disc = (yy - H / 2) ** 2 + (xx - W / 2.5) ** 2 < (min(H, W) / 2.5) ** 2
        return np.broadcast_to(disc, shape).copy()
    if kind == "full":
        return np.ones(shape, bool)
    b = rng.random(shape) < 0.8
    b[0] = False  # an empty brain: no rows unless a mask asks for them
    return b


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 9, 1, 3), (1, 1, 12, 2), (3, 17, 13, 4), (1, 240, 240, 4)])
@pytest.mark.parametrize("brain_kind", ["random", "disc", "full", "with-empty"])
def test_equal_reference(rng, family, shape, brain_kind):
    x = rng.standard_normal(shape).astype(np.float32)
    b = _brain(rng, shape[:3], brain_kind)
    got = pixel_features(x, b, **family)
    expected = ref.pixel_features(x, b, **family)
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert got.shape == (b.sum(), len(pixel_feature_names(shape[3], **family)))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=2e-5)


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("mode", ["reflect", "constant", "edge"])
def test_window_columns_come_first(rng, k, mode):
    x = rng.standard_normal((2, 15, 14, 4)).astype(np.float32)
    b = _brain(rng, (2, 15, 14), "disc")
    got = pixel_features(x, b, k, mode=mode)
    n_window = k * k * 4
    np.testing.assert_array_equal(got[:, :n_window], window_features(x, k, mask=b, mode=mode))
    np.testing.assert_allclose(got, ref.pixel_features(x, b, k, mode=mode), rtol=1e-5, atol=2e-5)
    names = pixel_feature_names(4, k)
    assert names[0] == f"window[{-(k // 2)},{-(k // 2)},c0]" and len(names) == got.shape[1]


@pytest.mark.parametrize("C", [1, 3, 4, 5])
@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("density", [0.5, 1.0])
@pytest.mark.parametrize("mode", ["reflect", "constant"])
def test_every_kernel_instance_equals_reference(rng, C, k, density, mode):
    """The kernel's steps are instantiated for k = 3 and C = 4 (the MRI slices), for C = 4 with any k,
    and for any k and C: a grid over k and C, every family on, reaches each instance; whole rows
    requested (density 1: context written in place, windows copied without checks where inside) and
    scattered pixels (context rows copied), windows at the borders included."""
    x = rng.standard_normal((2, 19, 17, C)).astype(np.float32)
    b = _brain(rng, (2, 19, 17), "random")
    b[:, 0], b[:, :, -1] = True, True  # brain at the image's border: windows through the padding
    mask = rng.random(b.shape) < density
    family = dict(mean_sizes=(1, 7), std_sizes=(5,), asymmetry=True, asymmetry_box=5, gradient_size=5, position=True)
    got = pixel_features(x, b, k, mask=mask, mode=mode, **family)
    expected = ref.pixel_features(x, b, k, mask=mask, mode=mode, **family)
    assert got.shape == expected.shape == (mask.sum(), len(pixel_feature_names(C, k, **family)))
    np.testing.assert_array_equal(got[:, :k * k * C], window_features(x, k, mask=mask, mode=mode))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=2e-5)


@pytest.mark.parametrize("density", [0.0, 0.3, 1.0])
def test_mask_selects_rows_in_raster_order(rng, density):
    x = rng.standard_normal((3, 20, 22, 4)).astype(np.float32)
    b = _brain(rng, (3, 20, 22), "disc")
    mask = rng.random(b.shape) < density
    got = pixel_features(x, b, mask=mask)
    dense = ref.pixel_features(x, b, mask=np.ones_like(b))  # every pixel, brain or not
    np.testing.assert_allclose(got, dense[mask.ravel()], rtol=1e-5, atol=2e-5)


def test_single_image_layouts_threads_and_inputs_unchanged(rng):
    x = rng.standard_normal((4, 30, 28, 4)).astype(np.float32)
    b = _brain(rng, (4, 30, 28), "random")
    expected = pixel_features(x, b)
    fortran = np.asfortranarray(x)
    strided = np.zeros((4, 30, 56, 4), np.float32)
    strided[:, :, ::2] = x
    readonly = x.copy()
    readonly.flags.writeable = False
    x0, b0 = x.copy(), b.copy()
    for variant in (fortran, strided[:, :, ::2], readonly, x.astype(np.float64)):
        np.testing.assert_array_equal(pixel_features(variant, b), expected)
    for n_jobs in (2, 3, -1):
        np.testing.assert_array_equal(pixel_features(x, b, n_jobs=n_jobs), expected)
    rows = b[:1].sum()
    np.testing.assert_array_equal(pixel_features(x[0], b[0]), expected[:rows])
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(b, b0)


def test_background_values_do_not_leak_into_statistics(rng):
    """Box statistics count pixels outside the brain as 0, whatever they hold."""
    x = rng.standard_normal((1, 25, 25, 2)).astype(np.float32)
    b = _brain(rng, (1, 25, 25), "disc")
    y = x.copy()
    y[~b] = 1000.0
    np.testing.assert_array_equal(pixel_features(x, b), pixel_features(y, b))


@settings(deadline=None)  # example budget: the hypothesis profile (tests/conftest.py)
@given(
    hnp.arrays(np.float32, st.tuples(st.integers(1, 3), st.integers(1, 14), st.integers(1, 14), st.integers(1, 4)),
               elements=st.floats(-50, 50, width=32)),
    st.data(),
)
def test_hypothesis_equal_reference(x, data):
    b = data.draw(hnp.arrays(np.bool_, x.shape[:3]))
    mask = data.draw(hnp.arrays(np.bool_, x.shape[:3]))
    family = dict(
        mean_sizes=data.draw(st.lists(st.integers(0, 8).map(lambda r: 2 * r + 1), max_size=2)),
        std_sizes=data.draw(st.lists(st.integers(0, 8).map(lambda r: 2 * r + 1), max_size=2)),
        asymmetry=data.draw(st.booleans()),
        asymmetry_box=data.draw(st.integers(0, 8).map(lambda r: 2 * r + 1)),
        gradient_size=data.draw(st.sampled_from([0, 3, 5, 9])),
        position=data.draw(st.booleans()),
    )
    got = pixel_features(x, b, mask=mask, **family)
    # tolerance: float64 integral images against scipy's float64 filters, values up to 50
    np.testing.assert_allclose(got, ref.pixel_features(x, b, mask=mask, **family), rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(std_sizes=(4,)), ValueError, "std_sizes must be an odd integer >= 1, got 4"),
        (dict(mean_sizes=7), TypeError, "mean_sizes must be a sequence of odd integers, got 7"),
        (dict(gradient_size=1), ValueError, "gradient_size must be 0 .* got 1"),
        (dict(gradient_size=4), ValueError, "gradient_size must be 0 .* got 4"),
        (dict(gradient_size=True), TypeError, "gradient_size must be 0 .* got True"),
        (dict(asymmetry="yes"), TypeError, "asymmetry must be"),
        (dict(position=None), TypeError, "position must be"),
        (dict(asymmetry_box=2), ValueError, "asymmetry_box must be an odd integer >= 1, got 2"),
        (dict(k=2), ValueError, "k must be an odd integer >= 1, got 2"),
        (dict(mode="wrap"), ValueError, "mode must be one of"),
        (dict(n_jobs=0), ValueError, "n_jobs"),
    ],
)
def test_bad_input(rng, kwargs, error, message):
    x = rng.standard_normal((2, 9, 9, 4)).astype(np.float32)
    b = np.ones((2, 9, 9), bool)
    with pytest.raises(error, match=message):
        pixel_features(x, b, **kwargs)


def test_bad_arrays(rng):
    x = rng.standard_normal((2, 9, 9, 4)).astype(np.float32)
    b = np.ones((2, 9, 9), bool)
    with pytest.raises(ValueError, match=r"brain must have shape \(2, 9, 9\)"):
        pixel_features(x, b[0])
    with pytest.raises(ValueError, match=r"mask must have shape \(2, 9, 9\)"):
        pixel_features(x, b, mask=b[:, :5])
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="images must contain only finite values, got 1 NaN"):
        pixel_features(bad, b)


def test_kernel_rejects_inconsistent_buffers(rng):
    from fastseg._ext import _pixfeat

    x = rng.standard_normal((1, 5, 5, 2)).astype(np.float32)
    b = np.ones((1, 5, 5), np.uint8)
    none = np.zeros(0, np.intp)
    good = dict(row_start=np.array([0, 25], np.intp), mirror=np.tile(np.arange(5)[::-1], (1, 1)).astype(np.intp),
                bbox=np.array([[0, 4, 0, 4]], np.intp), out=np.empty((25, 2), np.float32),
                scratch=np.empty(_pixfeat.scratch_size(5, 5, 2, 2)), rowmap=np.arange(5, dtype=np.intp),
                colmap=np.arange(5, dtype=np.intp))

    def call(**changes):
        a = {**good, **changes}
        _pixfeat.pixel_context(x, b, b, a["row_start"], a["mirror"], a["bbox"], none, none, none,
                               1, a["rowmap"], a["colmap"], False, 15, 0, False, a["out"], 0,
                               a["scratch"], 0, 1)

    call()
    np.testing.assert_array_equal(good["out"], x.reshape(25, 2))
    with pytest.raises(ValueError, match="out must have"):
        call(out=np.empty((24, 2), np.float32))
    with pytest.raises(ValueError, match="scratch must hold"):
        call(scratch=good["scratch"][:-1])
    with pytest.raises(ValueError, match="bbox must lie in the image"):
        call(bbox=np.array([[0, 5, 0, 4]], np.intp))
    with pytest.raises(ValueError, match="mirror columns must lie in the image"):
        call(mirror=np.full((1, 5), 5, np.intp))
    with pytest.raises(ValueError, match="rowmap holds an index outside the image"):
        call(rowmap=np.array([0, 1, 2, 3, 5], np.intp))
    with pytest.raises(ValueError, match="row_start must be non-decreasing"):
        call(row_start=np.array([3, 0], np.intp))


# ------------------------------------------------ pixel_network_scores: rows, network and scatter in one kernel

def _fused_mlp_scores(x, b, rows, family, weights, tile_rows=256, output=3, normalize=False):
    """``_pixfeat.pixel_network_scores`` over the whole batch, its arguments made as PixelSegmenter makes them;
    ``weights`` an MLPWeights or a ``scoring.Network``; with ``normalize``, the kernel
    normalises each image over ``b`` itself (x is then raw)."""
    from fastseg._ext import _pixfeat
    from fastseg.features import FeatureSpec
    from fastseg.scoring import MLPWeights, Network

    N, H, W, C = x.shape
    spec = FeatureSpec(1, family.get("k", 1), "reflect", family.get("mean_sizes", ()), family.get("std_sizes", (7, 15)),
                     family.get("asymmetry", True), family.get("asymmetry_box", 15),
                     family.get("gradient_size", 5), family.get("position", True))
    plan = spec._kernel_plan(b.view(np.uint8), rows.view(np.uint8))
    flat_w, flat_b, sizes, code = _network_arrays(Network.mlp(*weights) if isinstance(weights, MLPWeights) else weights)
    F = int(sizes[0])
    widest = int(sizes[1:].max())
    scores = np.full((N, H, W), np.nan, np.float32)  # every pixel must be written
    # the smallest row buffer the kernel accepts: a tile and an image row, or an image's rows if fewer
    most = int(np.diff(plan["row_start"]).max(initial=0))
    _pixfeat.pixel_network_scores(
        x, weights=flat_w, biases=flat_b, sizes=sizes, activation=code, output=output, scores=scores,
        rowbuf=np.empty((min(most, tile_rows + W - 1), F), np.float32),
        scratch=np.empty(_pixfeat.scratch_size(H, W, C, F)),
        act=np.empty((2, tile_rows * widest), np.float32), tile_rows=tile_rows, n0=0, n1=N,
        normalized=np.empty((H, W, C), np.float32) if normalize else None, min_std=1e-6, **plan)
    return scores


def _network_arrays(network):
    """A network's arrays as the row kernels take them."""
    return network.weights, network.biases, network.sizes, network.activation_code


def _random_mlp(rng, n_in, hidden, activation):
    sizes = [n_in, *hidden, 1]
    coefs = [(rng.standard_normal((a, c)) / np.sqrt(a)).astype(np.float32) for a, c in zip(sizes, sizes[1:])]
    intercepts = [rng.standard_normal(c).astype(np.float32) for c in sizes[1:]]
    from fastseg.scoring import MLPWeights

    return MLPWeights(coefs, intercepts, activation)


@settings(deadline=None)  # example budget: the hypothesis profile (tests/conftest.py)
@given(
    hnp.arrays(np.float32, st.tuples(st.integers(1, 3), st.integers(1, 20), st.integers(1, 20), st.integers(1, 4)),
               elements=st.floats(-20, 20, width=32)),
    st.data(),
)
def test_fused_mlp_scores_equal_rows_then_network(x, data):
    """The fused kernel gives, bit for bit, what the row kernel and the row scorer give in turn, image by
    image (the path it replaced), and what a float64 numpy network gives on the reference rows."""
    from fastseg.scoring import OUTPUT_CODES, Network, _network_row_scores

    N, H, W, C = x.shape
    b = data.draw(hnp.arrays(np.bool_, (N, H, W)))
    rows = data.draw(hnp.arrays(np.bool_, (N, H, W)))
    family = dict(
        k=data.draw(st.sampled_from([1, 3])) if min(H, W) >= 2 else 1,
        mean_sizes=data.draw(st.lists(st.integers(0, 4).map(lambda r: 2 * r + 1), max_size=1)),
        std_sizes=data.draw(st.lists(st.integers(0, 4).map(lambda r: 2 * r + 1), max_size=2)),
        asymmetry=data.draw(st.booleans()),
        asymmetry_box=data.draw(st.integers(0, 4).map(lambda r: 2 * r + 1)),
        gradient_size=data.draw(st.sampled_from([0, 3, 5])),
        position=data.draw(st.booleans()),
    )
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    F = len(pixel_feature_names(C, **family))
    hidden = data.draw(st.sampled_from([(1,), (7,), (32,), (5, 3)]))
    weights = _random_mlp(rng, F, hidden, data.draw(st.sampled_from(["relu", "tanh", "logistic", "identity"])))
    got = _fused_mlp_scores(x, b, rows, family, weights)

    expected = np.zeros((N, H, W), np.float32)
    for n in range(N):
        R = pixel_features(x[n:n + 1], b[n:n + 1], mask=rows[n:n + 1], **family)
        if R.shape[0]:
            expected[n][rows[n]] = _network_row_scores(R, Network.mlp(*weights), OUTPUT_CODES["proba"])
    np.testing.assert_array_equal(got, expected)

    a = ref.pixel_features(x, b, mask=rows, **family).astype(np.float64)
    for i, (w, c) in enumerate(zip(weights.coefs, weights.intercepts)):
        a = a @ w.astype(np.float64) + c
        a = ref._ACTIVATIONS[weights.activation if i < len(weights.coefs) - 1 else "logistic"](a)
    # tolerance: float32 rows and sums against float64 ones (rows checked to rtol 1e-5, atol 1e-3 above)
    np.testing.assert_allclose(got[rows], a[:, 0], rtol=1e-3, atol=1e-3)
    assert (got[~rows] == 0).all()


@pytest.mark.parametrize("tile_rows", [1, 3, 256, 100_000])
def test_fused_mlp_scores_any_tile_size(rng, tile_rows):
    x = rng.standard_normal((2, 30, 25, 4)).astype(np.float32)
    b = _brain(rng, (2, 30, 25), "disc")
    weights = _random_mlp(rng, len(pixel_feature_names(4, 3)), (16,), "relu")
    got = _fused_mlp_scores(x, b, b, dict(k=3), weights, tile_rows=tile_rows)
    expected = _fused_mlp_scores(x, b, b, dict(k=3), weights)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)  # the BLAS blocking may differ
    assert (got[~b] == 0).all() and (got[b] > 0).all()


@settings(deadline=None)  # example budget: the hypothesis profile (tests/conftest.py)
@given(
    hnp.arrays(np.float32, st.tuples(st.integers(1, 3), st.integers(1, 20), st.integers(1, 20), st.integers(1, 4)),
               elements=st.floats(-20, 20, width=32)),
    st.data(),
)
def test_fused_linear_scores_equal_rows_then_dot(x, data):
    """A linear model through the fused kernel (the network without hidden layers): its decision values
    (output identity) or logistic regression's probabilities (output logistic), bit for bit what the
    row scorer gives image by image, and close to a float64 dot product on the reference rows."""
    from fastseg.scoring import OUTPUT_CODES, Network, _network_row_scores

    N, H, W, C = x.shape
    b = data.draw(hnp.arrays(np.bool_, (N, H, W)))
    rows = b if data.draw(st.booleans()) else data.draw(hnp.arrays(np.bool_, (N, H, W)))
    family = dict(k=data.draw(st.sampled_from([1, 3])) if min(H, W) >= 2 else 1,
                  std_sizes=data.draw(st.lists(st.integers(0, 4).map(lambda r: 2 * r + 1), max_size=2)),
                  asymmetry=data.draw(st.booleans()), gradient_size=data.draw(st.sampled_from([0, 3])),
                  position=data.draw(st.booleans()))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    F = len(pixel_feature_names(C, **family))
    coef, intercept = rng.standard_normal(F) / np.sqrt(F), float(rng.standard_normal())
    kind = data.draw(st.sampled_from(["decision", "proba"]))
    network = Network.linear(coef, intercept)
    got = _fused_mlp_scores(x, b, rows, family, network, output=OUTPUT_CODES[kind])

    expected = np.zeros((N, H, W), np.float32)
    for n in range(N):
        R = pixel_features(x[n:n + 1], b[n:n + 1], mask=rows[n:n + 1], **family)
        if R.shape[0]:
            expected[n][rows[n]] = _network_row_scores(R, network, OUTPUT_CODES[kind])
    np.testing.assert_array_equal(got, expected)

    z = ref.pixel_features(x, b, mask=rows, **family).astype(np.float64) @ network.coefs[0][:, 0] \
        + network.intercepts[0][0]
    want = z if kind == "decision" else 1.0 / (1.0 + np.exp(-z))
    # tolerance: float32 rows and sums against float64 ones (values up to 20, F up to 60 columns)
    np.testing.assert_allclose(got[rows], want, rtol=1e-4, atol=2e-3)
    assert (got[~rows] == 0).all()


def test_fused_mlp_scores_reject_inconsistent_arguments(rng):
    from fastseg._ext import _pixfeat
    from fastseg.features import FeatureSpec
    from fastseg.scoring import Network

    x = rng.standard_normal((2, 6, 5, 2)).astype(np.float32)
    b = np.ones((2, 6, 5), np.uint8)
    b[1, :2] = 0
    spec = FeatureSpec(1, 1, "reflect", (), (3,), False, 15, 0, False)
    plan = spec._kernel_plan(b, b)
    flat_w, flat_b, sizes, code = _network_arrays(Network.mlp(*_random_mlp(rng, 4, (3,), "relu")))
    good = dict(weights=flat_w, biases=flat_b, sizes=sizes, activation=code, output=3, scores=np.empty((2, 6, 5), np.float32),
                rowbuf=np.empty((30, 4), np.float32), scratch=np.empty(_pixfeat.scratch_size(6, 5, 2, 4)),
                act=np.empty((2, 8 * 3), np.float32), tile_rows=8, n0=0, n1=2)

    def call(**changes):
        _pixfeat.pixel_network_scores(x, **{**plan, **good, **changes})

    call()
    assert np.isfinite(good["scores"]).all()
    # rows are scored a tile at a time as they are made: a tile and an image row of buffer are enough
    smallest = good["scores"].copy()
    call(rowbuf=np.empty((12, 4), np.float32), scores=smallest)
    np.testing.assert_array_equal(smallest, good["scores"])
    cases = [
        (dict(row_start=np.array([0, 30, 51], np.intp)), "row_start must count the requested pixels"),
        (dict(row_start=np.array([0, 29, 49], np.intp)), "row_start must count the requested pixels"),
        (dict(rowbuf=np.empty((11, 4), np.float32)), r"rowbuf must have shape \(>= 12, 4\)"),  # 8 + 5 - 1
        (dict(rowbuf=np.empty((30, 5), np.float32)), r"rowbuf must have shape"),
        (dict(sizes=np.array([5, 3, 1], np.intp)), "sizes must run from the row width 4 to 1"),
        (dict(sizes=np.array([4, 3, 2], np.intp)), "sizes must run from the row width 4 to 1"),
        (dict(weights=flat_w[:-1]), "weights/biases must hold 15/4 values"),
        (dict(scores=np.empty((2, 6, 6), np.float32)), r"scores must have shape \(2, 6, 5\)"),
        (dict(act=np.empty((2, 23), np.float32)), "act of shape"),
        (dict(tile_rows=0), "tile_rows"),
        (dict(output=4), "output must be an activation code 0-3, got 4"),
        (dict(scratch=good["scratch"][:-1]), "scratch must hold"),
        (dict(n1=3), "need 0 <= n0 <= n1 <= N"),
        (dict(bbox=np.array([[0, 6, 0, 4]] * 2, np.intp)), "bbox must lie in the image"),
        (dict(normalized=np.empty((6, 5, 1), np.float32)), r"normalized must have shape \(6, 5, 2\)"),
        (dict(normalized=np.empty((6, 5, 2), np.float32), min_std=-1.0), "min_std must be >= 0, got -1.0"),
    ]
    for changes, message in cases:
        with pytest.raises(ValueError, match=message):
            call(**changes)


@settings(deadline=None)  # example budget: the hypothesis profile (tests/conftest.py)
@given(
    hnp.arrays(np.float32, st.tuples(st.integers(1, 3), st.integers(1, 20), st.integers(1, 20), st.integers(1, 4)),
               elements=st.floats(-1e3, 1e3, width=32)),
    st.data(),
)
def test_fused_mlp_scores_normalising_each_image_equal_normalize_brain_first(x, data):
    """Given the raw images and a one-image buffer, the kernel normalises each image itself: bit for bit
    the scores of normalize_brain's images (the predict path it replaced), the raw input untouched."""
    from fastseg import normalize_brain

    N, H, W, C = x.shape
    b = data.draw(hnp.arrays(np.bool_, (N, H, W)))
    rows = b if data.draw(st.booleans()) else data.draw(hnp.arrays(np.bool_, (N, H, W)))
    family = dict(k=data.draw(st.sampled_from([1, 3])) if min(H, W) >= 2 else 1,
                  std_sizes=data.draw(st.sampled_from([(), (3,), (7, 15)])),
                  asymmetry=data.draw(st.booleans()), gradient_size=data.draw(st.sampled_from([0, 3])),
                  position=data.draw(st.booleans()))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    weights = _random_mlp(rng, len(pixel_feature_names(C, **family)), (7,), "relu")
    raw = x.copy()
    got = _fused_mlp_scores(x, b, rows, family, weights, normalize=True)
    np.testing.assert_array_equal(x, raw)
    expected = _fused_mlp_scores(normalize_brain(x, b), b, rows, family, weights)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("where", ["brain", "background", "last value"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_fused_mlp_scores_normalising_report_the_first_non_finite_image(rng, where, value):
    from fastseg._ext import _pixfeat
    from fastseg.features import FeatureSpec
    from fastseg.scoring import Network

    x = rng.standard_normal((3, 12, 10, 4)).astype(np.float32)
    b = _brain(rng, (3, 12, 10), "disc")
    at = {"brain": (6, 4, 0), "background": (0, 0, 1), "last value": (11, 9, 3)}[where]
    assert b[1][at[:2]] == (where == "brain")
    x[1][at] = value
    raw = x.copy()
    spec = FeatureSpec(1, 3, "reflect", (), (7, 15), True, 15, 5, True)
    plan = spec._kernel_plan(b.view(np.uint8), b.view(np.uint8))
    flat_w, flat_b, sizes, code = _network_arrays(Network.mlp(*_random_mlp(rng, len(pixel_feature_names(4, 3)), (5,), "relu")))
    scores = np.full((3, 12, 10), np.nan, np.float32)
    bad = _pixfeat.pixel_network_scores(
        x, weights=flat_w, biases=flat_b, sizes=sizes, activation=code, output=3, scores=scores,
        rowbuf=np.empty((120, int(sizes[0])), np.float32), scratch=np.empty(_pixfeat.scratch_size(12, 10, 4, int(sizes[0]))),
        act=np.empty((2, 256 * 5), np.float32), tile_rows=256, n0=0, n1=3,
        normalized=np.empty((12, 10, 4), np.float32), min_std=1e-6, **plan)
    assert bad == 1
    np.testing.assert_array_equal(x, raw, strict=True)
    assert np.isfinite(scores[0]).all() and np.isnan(scores[1:]).all()  # image 0 scored, then stopped
    # without the buffer the kernel does not look at the values: nothing to report
    assert _pixfeat.pixel_network_scores(
        np.nan_to_num(x), weights=flat_w, biases=flat_b, sizes=sizes, activation=code, output=3, scores=scores,
        rowbuf=np.empty((120, int(sizes[0])), np.float32), scratch=np.empty(_pixfeat.scratch_size(12, 10, 4, int(sizes[0]))),
        act=np.empty((2, 256 * 5), np.float32), tile_rows=256, n0=0, n1=3, **plan) == -1


# ------------------------------------------------ the AVX2 build of the pixel-feature kernels

def _avx2_module():
    from fastseg._ext import _pixfeat

    if not _pixfeat.cpu_has_avx2_fma():
        pytest.skip("this CPU has no AVX2 and FMA")
    from fastseg._ext import _pixfeat_avx2

    return _pixfeat_avx2


def test_features_use_the_avx2_build_where_the_cpu_has_it():
    import fastseg.features as features
    from fastseg._ext import _pixfeat

    expected = "fastseg._ext._pixfeat_avx2" if _pixfeat.cpu_has_avx2_fma() else "fastseg._ext._pixfeat"
    assert features._pixfeat.__name__ == expected


def test_the_avx2_build_can_be_turned_off(tmp_path):
    import os
    import subprocess
    import sys

    code = "import fastseg.features as f, fastseg.scoring as s; print(f._pixfeat.__name__, s._linear.__name__)"
    env = {**os.environ, "FASTSEG_DISABLE_AVX2": "1"}
    # outside the repository: from its root, "-c" would import the uncompiled source tree
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout.strip() == "fastseg._ext._pixfeat fastseg._ext._linear", out.stderr


@settings(deadline=None)  # example budget: the hypothesis profile (tests/conftest.py)
@given(
    hnp.arrays(np.float32, st.tuples(st.integers(1, 3), st.integers(1, 24), st.integers(1, 24), st.integers(1, 4)),
               elements=st.floats(-1e4, 1e4, width=32)),
    st.data(),
)
def test_avx2_build_gives_the_same_bits(x, data):
    """Both builds of the kernels, on the same arguments, write the same rows and scores, bit for bit
    (AVX2 and FMA instructions, but no multiply-add fused and nothing reassociated)."""
    from fastseg._ext import _pixfeat
    from fastseg.features import FeatureSpec
    from fastseg.scoring import Network

    avx2 = _avx2_module()
    N, H, W, C = x.shape
    b = data.draw(hnp.arrays(np.bool_, (N, H, W))) | data.draw(st.booleans())  # random, or every pixel
    rows = b if data.draw(st.booleans()) else data.draw(hnp.arrays(np.bool_, (N, H, W)))
    k = data.draw(st.sampled_from([1, 3, 5])) if min(H, W) >= 3 else 1
    spec = FeatureSpec(1, k, data.draw(st.sampled_from(["reflect", "constant", "edge"])),
                     data.draw(st.lists(st.sampled_from([1, 3, 7]), max_size=2)),
                     data.draw(st.lists(st.sampled_from([1, 5, 15]), max_size=2)), data.draw(st.booleans()),
                     data.draw(st.sampled_from([3, 15])), data.draw(st.sampled_from([0, 3, 5])),
                     data.draw(st.booleans()))
    plan = spec._kernel_plan(b.view(np.uint8), rows.view(np.uint8))
    F = _pixfeat.n_context_columns(C, k, len(spec.mean_sizes), len(spec.std_sizes), spec.asymmetry, spec.gradient_size > 0, spec.position,
                                   len(plan["brain_boxes"]))
    size = _pixfeat.scratch_size(H, W, C, F)
    n_rows = int(plan["row_start"][-1])
    got = {}
    for module in (_pixfeat, avx2):
        out = np.full((n_rows, F), np.nan, np.float32)
        module.pixel_context(x, out=out, offset=0, scratch=np.empty(size), n0=0, n1=N, **plan)
        got[module.__name__] = out
    np.testing.assert_array_equal(got["fastseg._ext._pixfeat"], got["fastseg._ext._pixfeat_avx2"])

    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    flat_w, flat_b, sizes, code = _network_arrays(Network.mlp(*_random_mlp(rng, F, (9,), "relu")))
    for module in (_pixfeat, avx2):
        scores = np.full((N, H, W), np.nan, np.float32)
        module.pixel_network_scores(x, weights=flat_w, biases=flat_b, sizes=sizes, activation=code, output=3, scores=scores,
                                rowbuf=np.empty((H * W, F), np.float32), scratch=np.empty(size),
                                act=np.empty((2, 64 * 9), np.float32), tile_rows=64, n0=0, n1=N, **plan)
        got[module.__name__] = scores
    np.testing.assert_array_equal(got["fastseg._ext._pixfeat"], got["fastseg._ext._pixfeat_avx2"])
