"""fastseg.components against its _reference twins and scipy.ndimage as an independent oracle."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

import fastseg
from fastseg import _reference as ref
from fastseg import clean_mask, fill_holes, keep_largest, label, remove_small_components
from fastseg._ext import _components

CONNECTIVITIES = (1, 2)


def structure(connectivity):
    return ndimage.generate_binary_structure(2, connectivity)


# --------------------------------------------------------------------------- mask zoo

def checkerboard(h, w):
    return (np.add.outer(np.arange(h), np.arange(w)) % 2).astype(bool)


def spiral(n):
    """A one-pixel-wide square spiral: one long winding component (and one winding background)."""
    m = np.zeros((n, n), dtype=bool)
    top, left, bottom, right = 0, 0, n - 1, n - 1
    while top <= bottom and left <= right:
        m[top, left:right + 1] = True
        m[top:bottom + 1, right] = True
        if top + 2 <= bottom:
            m[bottom, left:right + 1] = True
        if left + 2 <= right and top + 2 <= bottom:
            m[top + 2:bottom + 1, left] = True
        top, left, bottom, right = top + 2, left + 2, bottom - 2, right - 2
    return m


def rings(h, w):
    """Rings with holes, a ring cut by the border (no hole) and a diagonal-only leak."""
    m = np.zeros((h, w), dtype=bool)
    m[2:9, 2:9] = True
    m[4:7, 4:7] = False            # a 3x3 hole
    m[0:5, w - 5:] = True
    m[0:3, w - 4:w - 1] = False    # open to the top border: not a hole
    m[h - 6:h - 1, 10:16] = True
    m[h - 5:h - 2, 11:15] = False
    m[h - 2, 10] = False           # corner removed: hole leaks to outside only diagonally
    return m


def speckle(h, w, step=2):
    """Isolated single pixels on a grid: many tiny components."""
    m = np.zeros((h, w), dtype=bool)
    m[::step, ::step] = True
    return m


def blobs(h, w, seed, n_blobs=4, speck=0.01):
    """Prediction-like: a few discs (some with holes) plus speckle."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    m = rng.random((h, w)) < speck
    for _ in range(n_blobs):
        cy, cx = rng.integers(0, h), rng.integers(0, w)
        r = rng.integers(2, max(3, min(h, w) // 4))
        d2 = (yy - cy) ** 2 + (xx - cx) ** 2
        m |= d2 < r * r
        if rng.random() < 0.5:
            m &= ~(d2 < (r // 2) ** 2)
    return m


def mask_zoo():
    rng = np.random.default_rng(2024)
    zoo = {}
    for shape in [(1, 1), (1, 17), (17, 1), (2, 2), (1, 240), (240, 1), (7, 13), (31, 17), (64, 64)]:
        for p in (0.0, 0.05, 0.3, 0.5, 0.7, 1.0):
            zoo[f"random{shape}-p{p}"] = rng.random(shape) < p
    for shape in [(1, 9), (9, 1), (8, 8), (15, 23)]:
        zoo[f"checker{shape}"] = checkerboard(*shape)
        zoo[f"checker-inv{shape}"] = ~checkerboard(*shape)
    for n in (1, 2, 5, 20, 33):
        zoo[f"spiral{n}"] = spiral(n)
        zoo[f"spiral-inv{n}"] = ~spiral(n)
    zoo["rings"] = rings(24, 30)
    zoo["rings-inv"] = ~rings(24, 30)
    zoo["speckle2"] = speckle(40, 41)
    zoo["speckle3"] = speckle(40, 41, step=3)
    # Runs straddling 8-byte words, and runs of exactly 8, 16 and 7 pixels.
    stripes = np.zeros((6, 50), dtype=bool)
    stripes[0, 8:16] = stripes[1, 0:16] = stripes[2, 7:14] = stripes[3, 16:48] = True
    stripes[4, 1:49] = stripes[5, 40:50] = True
    zoo["stripes"] = stripes
    zoo["blocky"] = np.kron(rng.random((6, 7)) < 0.5, np.ones((9, 11), dtype=bool))
    for seed in range(3):
        zoo[f"blobs240-{seed}"] = blobs(240, 240, seed)
    return zoo


ZOO = mask_zoo()


@pytest.fixture(params=sorted(ZOO), scope="module")
def mask(request):
    return ZOO[request.param]


# --------------------------------------------------------------------------- exactness

@pytest.mark.parametrize("connectivity", CONNECTIVITIES)
def test_label_matches_scipy_and_reference(mask, connectivity):
    labels, n = label(mask, connectivity)
    expected, expected_n = ndimage.label(mask, structure=structure(connectivity))
    assert labels.dtype == np.int32 and labels.shape == mask.shape
    assert isinstance(n, int) and n == expected_n
    np.testing.assert_array_equal(labels, expected)
    ref_labels, ref_n = ref.label(mask[None], connectivity)
    np.testing.assert_array_equal(labels, ref_labels[0])


@pytest.mark.parametrize("connectivity", CONNECTIVITIES)
def test_fill_holes_matches_scipy_and_reference(mask, connectivity):
    out = fill_holes(mask, connectivity)
    assert out.dtype == np.bool_ and out.shape == mask.shape
    np.testing.assert_array_equal(out, ndimage.binary_fill_holes(mask, structure=structure(connectivity)))
    np.testing.assert_array_equal(out, ref.fill_holes(mask[None], connectivity)[0])


@pytest.mark.parametrize("connectivity", CONNECTIVITIES)
@pytest.mark.parametrize("min_size", [0, 1, 2, 3, 10, 50, 10**6])
def test_remove_small_components_matches_reference(mask, connectivity, min_size):
    out = remove_small_components(mask, min_size, connectivity)
    assert out.dtype == np.bool_ and out.shape == mask.shape
    np.testing.assert_array_equal(out, ref.remove_small_components(mask[None], min_size, connectivity)[0])


@pytest.mark.parametrize("connectivity", CONNECTIVITIES)
@pytest.mark.parametrize("n", [0, 1, 2, 5, 10**6])
def test_keep_largest_matches_reference(mask, connectivity, n):
    out = keep_largest(mask, n, connectivity)
    assert out.dtype == np.bool_ and out.shape == mask.shape
    np.testing.assert_array_equal(out, ref.keep_largest(mask[None], n, connectivity)[0])


@pytest.mark.parametrize("connectivity", CONNECTIVITIES)
@pytest.mark.parametrize("min_size", [0, 2, 5, 50])
@pytest.mark.parametrize("fill", [True, False])
def test_clean_mask_matches_reference(mask, connectivity, min_size, fill):
    out = clean_mask(mask, min_size, fill, connectivity)
    assert out.dtype == np.bool_ and out.shape == mask.shape
    np.testing.assert_array_equal(out, ref.clean_mask(mask[None], min_size, fill, connectivity)[0])


def test_keep_largest_ties_go_to_the_lower_label():
    m = np.zeros((5, 9), dtype=bool)
    m[0, 0:2] = m[2, 4:6] = m[4, 7:9] = True   # three components of 2 pixels
    m[4, 0] = True                              # and one of 1
    np.testing.assert_array_equal(keep_largest(m, 1), m & (np.arange(9) < 2) & (np.arange(5) == 0)[:, None])
    assert keep_largest(m, 2).sum() == 4 and keep_largest(m, 2)[2, 4]
    assert not keep_largest(m, 3)[4, 0] and keep_largest(m, 4)[4, 0]


def test_clean_mask_fills_the_space_of_removed_components_inside_holes():
    m = np.zeros((9, 9), dtype=bool)
    m[1:8, 1:8] = True
    m[2:7, 2:7] = False
    m[4, 4] = True                              # speck inside the hole
    out = clean_mask(m, min_size=2)
    np.testing.assert_array_equal(out, ndimage.binary_fill_holes(m))
    assert out[1:8, 1:8].all() and out.sum() == 49


def test_fill_holes_connectivity_is_the_backgrounds():
    m = np.ones((5, 5), dtype=bool)
    m[1:4, 1:4] = False
    m[4, 4] = False                # the inside meets the outside only through a corner
    assert fill_holes(m, 1)[2, 2] and not fill_holes(m, 2)[2, 2]


# --------------------------------------------------------------------------- batches, threads

def batch_of(n=9, shape=(37, 41), seed=0):
    rng = np.random.default_rng(seed)
    ps = np.linspace(0.05, 0.95, n)
    return np.stack([rng.random(shape) < p for p in ps])


@pytest.mark.parametrize("connectivity", CONNECTIVITIES)
def test_batches_match_reference_slice_by_slice(connectivity):
    masks = batch_of()
    labels, counts = label(masks, connectivity)
    ref_labels, ref_counts = ref.label(masks, connectivity)
    assert labels.shape == masks.shape and counts.shape == (len(masks),)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_array_equal(counts, ref_counts)
    np.testing.assert_array_equal(fill_holes(masks, connectivity), ref.fill_holes(masks, connectivity))
    np.testing.assert_array_equal(remove_small_components(masks, 4, connectivity),
                                  ref.remove_small_components(masks, 4, connectivity))
    np.testing.assert_array_equal(keep_largest(masks, 2, connectivity),
                                  ref.keep_largest(masks, 2, connectivity))
    np.testing.assert_array_equal(clean_mask(masks, 6, True, connectivity),
                                  ref.clean_mask(masks, 6, True, connectivity))


@pytest.mark.parametrize("n_jobs", [2, -1])
def test_threads_equal_serial(n_jobs):
    masks = np.concatenate([batch_of(7, (64, 64), seed=1), np.stack([blobs(64, 64, s) for s in range(6)])])
    for func, args in [(label, (2,)), (fill_holes, (1,)), (remove_small_components, (5,)),
                       (keep_largest, (2,)), (clean_mask, (20,))]:
        serial = func(masks, *args)
        threaded = func(masks, *args, n_jobs=n_jobs)
        if func is label:
            np.testing.assert_array_equal(serial[0], threaded[0])
            np.testing.assert_array_equal(serial[1], threaded[1])
        else:
            np.testing.assert_array_equal(serial, threaded)


def test_batch_of_one_and_single_mask_agree():
    m = blobs(50, 60, 3)
    assert np.array_equal(clean_mask(m[None])[0], clean_mask(m))
    labels, counts = label(m[None])
    assert counts.shape == (1,) and np.array_equal(labels[0], label(m)[0])


# --------------------------------------------------------------------------- dtypes, layouts, inputs untouched

ALL_CALLS = [
    ("label", lambda m: label(m, 2)[0]),
    ("fill_holes", lambda m: fill_holes(m)),
    ("remove_small_components", lambda m: remove_small_components(m, 3)),
    ("keep_largest", lambda m: keep_largest(m, 2)),
    ("clean_mask", lambda m: clean_mask(m, 5)),
]


@pytest.mark.parametrize("name,call", ALL_CALLS, ids=[c[0] for c in ALL_CALLS])
@pytest.mark.parametrize("dtype", [np.bool_, np.uint8, np.int8, np.int32, np.int64, np.uint16,
                                   np.float32, np.float64])
def test_dtypes_accepted_non_zero_is_foreground(name, call, dtype):
    m = blobs(30, 33, 5)
    expected = call(m)
    arr = m.astype(dtype)
    if np.dtype(dtype).kind in "iu":
        arr = arr * np.array(7, dtype=dtype) if np.dtype(dtype).itemsize > 1 else arr  # any non-zero
        if np.dtype(dtype).kind == "i":
            arr[::3] *= -1
    np.testing.assert_array_equal(call(arr), expected)


def layouts(m):
    """The same mask as C, Fortran, strided and read-only arrays (each asserts its own flags)."""
    c = np.ascontiguousarray(m)
    f = np.asfortranarray(m)
    assert f.flags.f_contiguous and not f.flags.c_contiguous
    big = np.zeros((m.shape[0] * 2, m.shape[1] * 3), dtype=m.dtype)
    big[::2, ::3] = m
    strided = big[::2, ::3]
    assert not strided.flags.c_contiguous and not strided.flags.f_contiguous
    ro = m.copy()
    ro.setflags(write=False)
    assert not ro.flags.writeable
    return {"C": c, "F": f, "strided": strided, "readonly": ro,
            "uint8-strided": big.astype(np.uint8)[::2, ::3]}


@pytest.mark.parametrize("name,call", ALL_CALLS, ids=[c[0] for c in ALL_CALLS])
def test_layouts_and_inputs_never_modified(name, call):
    m = blobs(40, 45, 6)
    expected = call(m)
    for layout, arr in layouts(m).items():
        before = arr.copy()
        np.testing.assert_array_equal(call(arr), expected, err_msg=layout)
        np.testing.assert_array_equal(arr, before, err_msg=layout)
    stack = np.stack([m, ~m, m])
    before = stack.copy()
    call(stack)
    np.testing.assert_array_equal(stack, before)


def test_output_does_not_alias_input():
    m = blobs(20, 20, 1)
    for _, call in ALL_CALLS:
        assert not np.shares_memory(call(m), m)


def test_lists_are_accepted():
    assert label([[1, 0, 1]])[1] == 2
    assert fill_holes([[1, 1, 1], [1, 0, 1], [1, 1, 1]]).all()


# --------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("name,call", ALL_CALLS, ids=[c[0] for c in ALL_CALLS])
def test_bad_masks(name, call):
    with pytest.raises(ValueError, match=r"masks must have 2 or 3 dimensions, got shape \(5,\)"):
        call(np.ones(5, dtype=bool))
    with pytest.raises(ValueError, match=r"masks must have 2 or 3 dimensions, got shape \(1, 2, 3, 4\)"):
        call(np.ones((1, 2, 3, 4), dtype=bool))
    with pytest.raises(ValueError, match="may hold only 0 and 1, got value 0.5"):
        call(np.array([[0.0, 0.5], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="masks with a floating dtype may hold only 0 and 1"):
        call(np.array([[0.0, np.nan]]))
    with pytest.raises(TypeError, match="masks must be a boolean or integer mask, got dtype object"):
        call(np.array([[None, 1]], dtype=object))
    with pytest.raises(TypeError, match="masks must be a boolean or integer mask, got dtype <U1"):
        call(np.array([["a"]]))
    with pytest.raises(ValueError, match="masks must not have zero-size axes"):
        call(np.zeros((3, 0), dtype=bool))
    with pytest.raises(TypeError, match="masks must be an array, got None"):
        call(None)


@pytest.mark.parametrize("func", [label, fill_holes, remove_small_components, keep_largest, clean_mask])
def test_bad_connectivity(func):
    m = np.ones((3, 3), dtype=bool)
    args = (1,) if func in (remove_small_components, keep_largest, clean_mask) else ()
    with pytest.raises(ValueError, match=r"connectivity must be 1 \(4-neighbour\) or 2 \(8-neighbour\), got 3"):
        func(m, *args, connectivity=3)
    with pytest.raises(ValueError, match="connectivity must be 1 .* got 0"):
        func(m, *args, connectivity=0)
    with pytest.raises(TypeError, match="connectivity must be 1 or 2, got bool True"):
        func(m, *args, connectivity=True)
    with pytest.raises(TypeError, match="connectivity must be 1 or 2, got float 1.0"):
        func(m, *args, connectivity=1.0)


@pytest.mark.parametrize("func", [remove_small_components, clean_mask])
def test_bad_min_size(func):
    m = np.ones((3, 3), dtype=bool)
    with pytest.raises(ValueError, match="min_size must be >= 0, got -1"):
        func(m, min_size=-1)
    with pytest.raises(TypeError, match="min_size must be an integer >= 0, got float 2.5"):
        func(m, min_size=2.5)
    with pytest.raises(TypeError, match="min_size must be an integer >= 0, got bool True"):
        func(m, min_size=True)
    # numpy integers and huge values are fine
    assert func(m, min_size=np.int64(9)).all()
    assert not func(m, min_size=10**30).any()


def test_bad_n_for_keep_largest():
    m = np.ones((3, 3), dtype=bool)
    with pytest.raises(ValueError, match="n must be >= 0, got -1"):
        keep_largest(m, n=-1)
    with pytest.raises(TypeError, match="n must be an integer >= 0, got float 1.0"):
        keep_largest(m, n=1.0)
    assert not keep_largest(m, n=0).any()
    assert keep_largest(m, n=np.uint8(3)).all()


@pytest.mark.parametrize("func", [label, fill_holes, keep_largest])
def test_bad_n_jobs(func):
    m = np.ones((2, 3, 3), dtype=bool)
    with pytest.raises(ValueError, match="n_jobs must be None or a non-zero integer, got 0"):
        func(m, n_jobs=0)
    with pytest.raises(TypeError, match="n_jobs must be None or a non-zero integer, got float"):
        func(m, n_jobs=1.5)


def test_kernels_check_what_memory_safety_needs():
    masks = np.zeros((2, 5, 6), dtype=np.uint8)
    out = np.empty_like(masks)
    scratch = np.empty(_components.scratch_size(5, 6), dtype=np.int32)
    with pytest.raises(ValueError, match="scratch must hold"):
        _components.clean_batch(masks, 2, 0.0, 2, True, 1, out, scratch[:-1])
    with pytest.raises(ValueError, match=r"out must have shape \(2, 5, 6\)"):
        _components.clean_batch(masks, 2, 0.0, 2, True, 1, out[:1], scratch)
    with pytest.raises(ValueError, match="connectivity must be 1 or 2, got 3"):
        _components.clean_batch(masks, 2, 0.0, 3, True, 1, out, scratch)
    with pytest.raises(ValueError, match="hole_connectivity must be 1 or 2, got 0"):
        _components.clean_batch(masks, 2, 0.0, 2, True, 0, out, scratch)
    labels = np.empty(masks.shape, dtype=np.int32)
    with pytest.raises(ValueError, match=r"counts must have shape \(2,\)"):
        _components.label_batch(masks, 1, labels, np.empty(3, dtype=np.intp), scratch)
    keys = np.empty(5 * 3 + 1, dtype=np.int64)
    with pytest.raises(ValueError, match="keys must hold 16 int64"):
        _components.keep_largest_batch(masks, 1, 2, out, scratch, keys[:-1])
    with pytest.raises(ValueError, match="n must be >= 0"):
        _components.keep_largest_batch(masks, -1, 2, out, scratch, keys)
    with pytest.raises(ValueError, match="buffer is not C-contiguous|ndarray is not C-contiguous"):
        _components.clean_batch(np.asfortranarray(masks), 2, 0.0, 2, True, 1, out, scratch)


def test_exported_from_package():
    for name in ["label", "remove_small_components", "fill_holes", "keep_largest", "clean_mask"]:
        assert name in fastseg.__all__ and getattr(fastseg, name) is globals()[name]


# --------------------------------------------------------------------------- properties

small_masks = st.one_of(
    arrays(np.bool_, st.tuples(st.integers(1, 12), st.integers(1, 12))),
    arrays(np.bool_, st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9))),
)


def as_batch(m):
    return m if m.ndim == 3 else m[None]


@settings(deadline=None)  # example budget: the hypothesis profile (tests/conftest.py)
@given(m=small_masks, connectivity=st.sampled_from(CONNECTIVITIES))
def test_property_label_equals_scipy(m, connectivity):
    labels, counts = label(as_batch(m), connectivity)
    for i, s in enumerate(as_batch(m)):
        expected, n = ndimage.label(s, structure=structure(connectivity))
        np.testing.assert_array_equal(labels[i], expected)
        assert counts[i] == n


@settings(deadline=None)  # example budget: the hypothesis profile (tests/conftest.py)
@given(m=small_masks, a=st.integers(0, 20), b=st.integers(0, 20),
       connectivity=st.sampled_from(CONNECTIVITIES))
def test_property_removal_only_removes_idempotent_monotone(m, a, b, connectivity):
    lo, hi = min(a, b), max(a, b)
    out_lo = remove_small_components(m, lo, connectivity)
    out_hi = remove_small_components(m, hi, connectivity)
    assert not (out_lo & ~m).any()                          # only removes
    assert not (out_hi & ~out_lo).any()                     # monotone in min_size
    np.testing.assert_array_equal(remove_small_components(out_lo, lo, connectivity), out_lo)
    np.testing.assert_array_equal(out_lo, ref.remove_small_components(as_batch(m), lo, connectivity).reshape(m.shape))


@settings(deadline=None)  # example budget: the hypothesis profile (tests/conftest.py)
@given(m=small_masks, connectivity=st.sampled_from(CONNECTIVITIES))
def test_property_filling_only_adds(m, connectivity):
    out = fill_holes(m, connectivity)
    assert not (m & ~out).any()
    np.testing.assert_array_equal(fill_holes(out, connectivity), out)
    np.testing.assert_array_equal(out, ref.fill_holes(as_batch(m), connectivity).reshape(m.shape))


@settings(deadline=None)  # example budget: the hypothesis profile (tests/conftest.py)
@given(m=small_masks, min_size=st.integers(0, 12), fill=st.booleans(),
       connectivity=st.sampled_from(CONNECTIVITIES), n=st.integers(0, 4))
def test_property_clean_mask_and_keep_largest_equal_reference(m, min_size, fill, connectivity, n):
    np.testing.assert_array_equal(
        clean_mask(m, min_size, fill, connectivity),
        ref.clean_mask(as_batch(m), min_size, fill, connectivity).reshape(m.shape),
    )
    np.testing.assert_array_equal(
        keep_largest(m, n, connectivity), ref.keep_largest(as_batch(m), n, connectivity).reshape(m.shape)
    )


# ----------------------------------------------------------------------------- relative size filter

@pytest.mark.parametrize("rel", [0.0, 0.05, 0.2, 0.5, 1.0])
@pytest.mark.parametrize("connectivity", [1, 2])
def test_clean_mask_relative_size_equals_reference(rel, connectivity):
    rng = np.random.default_rng(7)
    for density in (0.05, 0.3, 0.6):
        masks = rng.random((4, 37, 29)) < density
        for min_size in (0, 3, 20):
            for fill in (True, False):
                got = fastseg.clean_mask(masks, min_size=min_size, fill_holes=fill, connectivity=connectivity,
                                         min_relative_size=rel)
                want = ref.clean_mask(masks, min_size, fill, connectivity, min_relative_size=rel)
                np.testing.assert_array_equal(got, want)


def test_clean_mask_relative_size_example():
    m = np.zeros((1, 30, 30), bool)
    m[0, 2:12, 2:12] = True    # 100 px
    m[0, 20:24, 20:24] = True  # 16 px < 0.2 * 100: removed
    m[0, 20:26, 2:6] = True    # 24 px: kept
    out = fastseg.clean_mask(m, min_size=3, fill_holes=False, min_relative_size=0.2)
    assert out[0, 2:12, 2:12].all() and not out[0, 20:24, 20:24].any() and out[0, 20:26, 2:6].all()


@pytest.mark.parametrize("bad,exc", [(-0.1, ValueError), (1.5, ValueError), (True, TypeError), ("0.2", TypeError)])
def test_clean_mask_bad_relative_size(bad, exc):
    with pytest.raises(exc, match="min_relative_size must be a number in"):
        fastseg.clean_mask(np.ones((3, 3), bool), min_relative_size=bad)


# ----------------------------------------------------------------------------- 3-D clean-up of a volume

@pytest.mark.parametrize("density", [0.0, 0.05, 0.3, 0.6])
@pytest.mark.parametrize("fraction", [0.0, 0.2, 1.0])
def test_clean_volume_equals_whole_volume_scipy(rng, density, fraction):
    from fastseg.components import clean_volume

    v = rng.random((9, 20, 17)) < density
    labels, _ = ndimage.label(v, structure=np.ones((3, 3, 3)))
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    expected = (sizes >= fraction * sizes.max())[labels] & (labels > 0) if sizes.max() else v
    v0 = v.copy()
    np.testing.assert_array_equal(clean_volume(v, fraction), expected)
    np.testing.assert_array_equal(v, v0)


def _clean_volume_reference(v, fraction):
    """The whole volume through scipy: 26-connected labels, sizes, the size filter."""
    labels, n = ndimage.label(v, structure=np.ones((3, 3, 3)))
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return ((sizes >= fraction * sizes.max())[labels] & (labels > 0) if n else v.copy()), n


@settings(deadline=None)  # example budget: the hypothesis profile (tests/conftest.py)
@given(v=arrays(bool, st.tuples(st.integers(1, 6), st.integers(1, 12), st.integers(1, 21))),
       fraction=st.floats(0, 1))
def test_clean_volume_kernel_equals_scipy_on_any_volume(v, fraction):
    """The run-based 3-D kernel, on whole volumes of any shape (no bounding box), equals scipy's labels."""
    from fastseg._ext import _components

    expected, n = _clean_volume_reference(v, fraction)
    out = np.full(v.shape, 7, dtype=np.uint8)
    scratch = np.empty(_components.volume_scratch_size(*v.shape), dtype=np.int32)
    assert _components.clean_volume(v.view(np.uint8), fraction, out, scratch) == n
    np.testing.assert_array_equal(out.view(bool), expected)


def test_clean_volume_kernel_checks_its_arguments():
    from fastseg._ext import _components

    v = np.zeros((3, 4, 5), np.uint8)
    ok = np.empty(_components.volume_scratch_size(3, 4, 5), np.int32)
    with pytest.raises(ValueError, match="scratch must hold at least"):
        _components.clean_volume(v, 0.2, np.empty_like(v), ok[:-1])
    with pytest.raises(ValueError, match=r"out must have shape \(3, 4, 5\)"):
        _components.clean_volume(v, 0.2, np.empty((3, 4, 4), np.uint8), ok)
    with pytest.raises(ValueError, match="min_relative_size must be a number in"):
        _components.clean_volume(v, 1.5, np.empty_like(v), ok)
    with pytest.raises(ValueError, match="min_relative_size must be a number in"):
        _components.clean_volume(v, float("nan"), np.empty_like(v), ok)
    assert _components.clean_volume(v[:0], 0.2, np.empty((0, 4, 5), np.uint8), ok) == 0


def test_clean_volume_keeps_the_tumour_and_drops_far_detections():
    from fastseg.components import clean_volume

    v = np.zeros((20, 30, 30), bool)
    v[5:12, 10:20, 10:20] = True   # the tumour: 700 voxels over 7 slices
    v[16, 2:5, 2:5] = True         # 9 voxels on a far slice
    v[12, 20, 20] = True           # touches the tumour by a corner: kept (26-connectivity)
    out = clean_volume(v, 0.2)
    assert out[5:12, 10:20, 10:20].all() and out[12, 20, 20] and not out[16].any()
    assert clean_volume(v, 0.0).sum() == v.sum()


def test_clean_volume_bad_input():
    from fastseg.components import clean_volume

    with pytest.raises(ValueError, match="masks must"):
        clean_volume(np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="min_relative_size must be a number in"):
        clean_volume(np.zeros((2, 4, 4), bool), 1.5)
