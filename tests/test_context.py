"""Context channels: the box-mean kernel against scipy.ndimage.uniform_filter, mirroring, stacking."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import ndimage

from fastseg import _reference as ref
from fastseg.features import box_means, context_channels, mirror_columns

#: The 0.1 context API (box_means, context_channels, mirror_columns) warns that it goes in 0.4; its
#: tests stay until then.
pytestmark = pytest.mark.filterwarnings("ignore:fastseg.features.* is deprecated:FutureWarning")


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 1, 9, 3), (1, 9, 1, 2), (3, 13, 17, 4), (1, 240, 240, 4)])
@pytest.mark.parametrize("sizes", [(1,), (3,), (7, 15, 31), (5, 61)])
def test_box_means_equal_uniform_filter(rng, shape, sizes):
    x = rng.standard_normal(shape).astype(np.float32)
    got = box_means(x, sizes)
    C = shape[3]
    assert got.shape == shape[:3] + (C * len(sizes),) and got.dtype == np.float32
    for j, s in enumerate(sizes):
        expected = ndimage.uniform_filter(x.astype(np.float64), size=(1, s, s, 1), mode="constant")
        np.testing.assert_allclose(got[..., j * C:(j + 1) * C], expected, rtol=1e-5, atol=1e-6)


@settings(deadline=None)  # example budget: the hypothesis profile (tests/conftest.py)
@given(
    hnp.arrays(np.float32, st.tuples(st.integers(1, 3), st.integers(1, 15), st.integers(1, 15), st.integers(1, 4)),
               elements=st.floats(-100, 100, width=32)),
    st.lists(st.integers(0, 10).map(lambda r: 2 * r + 1), min_size=1, max_size=3),
)
def test_box_means_hypothesis(x, sizes):
    got = box_means(x, sizes)
    C = x.shape[3]
    for j, s in enumerate(sizes):
        expected = ndimage.uniform_filter(x.astype(np.float64), size=(1, s, s, 1), mode="constant")
        np.testing.assert_allclose(got[..., j * C:(j + 1) * C], expected, rtol=1e-5, atol=1e-4)


def test_context_channels_equal_reference(rng):
    x = rng.standard_normal((4, 31, 27, 4)).astype(np.float32)
    b = rng.random((4, 31, 27)) < 0.5
    b[1] = False  # empty brain: mirror about the image centre
    b[2, :, :20] = False
    got = context_channels(x, b)
    assert got.shape == (4, 31, 27, 24)
    np.testing.assert_allclose(got, ref.context_channels(x, b), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(got[..., :4], x)
    single = context_channels(x[0], b[0], box_sizes=(3,), asymmetry=False)
    np.testing.assert_allclose(single, ref.context_channels(x[:1], b[:1], box_sizes=(3,), asymmetry=False)[0], rtol=1e-5, atol=1e-5)


def test_mirror_columns():
    b = np.zeros((2, 3, 8), bool)
    b[0, :, 2:6] = True  # columns 2..5: midline 3.5
    assert mirror_columns(b)[0].tolist() == [7, 6, 5, 4, 3, 2, 1, 0]
    assert mirror_columns(b)[1].tolist() == [7, 6, 5, 4, 3, 2, 1, 0]  # empty: image centre
    b[0, :, 2:5] = True
    b[0, :, 5] = False  # columns 2..4: midline 3
    assert mirror_columns(b[0]).tolist() == [6, 5, 4, 3, 2, 1, 0, 0]


def test_inputs_unchanged_and_bad_input(rng):
    x = rng.standard_normal((2, 9, 9, 2)).astype(np.float32)
    b = np.ones((2, 9, 9), bool)
    x0 = x.copy()
    context_channels(x, b)
    np.testing.assert_array_equal(x, x0)
    with pytest.raises(ValueError, match="sizes must be an odd integer >= 1, got 4"):
        box_means(x, (3, 4))
    with pytest.raises(TypeError, match="box_sizes must be a sequence of odd integers, got 7"):
        context_channels(x, b, box_sizes=7)
    with pytest.raises(ValueError, match=r"brain must have shape \(2, 9, 9\)"):
        context_channels(x, b[0])


def test_kernel_rejects_inconsistent_buffers(rng):
    from fastseg._ext import _boxmeans

    x = rng.standard_normal((1, 5, 5, 2)).astype(np.float32)
    sizes = np.array([3], dtype=np.intp)
    with pytest.raises(ValueError, match="out must have shape"):
        _boxmeans.box_means(x, sizes, np.empty((1, 5, 5, 1), np.float32), np.empty((6, 6, 2)))
    with pytest.raises(ValueError, match="out must have shape"):
        _boxmeans.box_means(x, sizes, np.empty((1, 5, 5, 3), np.float32), np.empty((6, 6, 2)), 2)
    with pytest.raises(ValueError, match="out must have shape"):
        _boxmeans.copy_channels(x, np.empty((1, 5, 5, 3), np.float32), 2)
    with pytest.raises(ValueError, match="integral must have shape"):
        _boxmeans.box_means(x, sizes, np.empty((1, 5, 5, 2), np.float32), np.empty((5, 6, 2)))
    with pytest.raises(ValueError, match="box sizes must be odd"):
        _boxmeans.box_means(x, np.array([2], np.intp), np.empty((1, 5, 5, 2), np.float32), np.empty((6, 6, 2)))


@pytest.mark.filterwarnings("default")
def test_the_context_api_warns_that_it_goes(rng):
    x = rng.standard_normal((1, 8, 8, 2)).astype(np.float32)
    brain = np.ones((1, 8, 8), bool)
    for call in (lambda: box_means(x, (3,)), lambda: context_channels(x, brain), lambda: mirror_columns(brain)):
        with pytest.warns(FutureWarning, match=r"is deprecated since fastseg 0\.3 and will be removed in 0\.4"):
            call()
