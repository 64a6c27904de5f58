"""The shared validation and parallel helpers."""
from __future__ import annotations

import os

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from fastseg._parallel import chunk_bounds, run_chunks
from fastseg._validation import check_images, check_masks, check_n_jobs


def test_check_images_copies_only_when_needed():
    x = np.zeros((2, 3, 4, 1), np.float32)
    batch, single = check_images(x)
    assert batch is x and not single
    batch, single = check_images(x[0])
    assert single and batch.shape == (1, 3, 4, 1) and np.shares_memory(batch, x)
    batch, _ = check_images(x.astype(np.float64))
    assert batch.dtype == np.float32 and not np.shares_memory(batch, x)


def test_check_images_accepts_lists():
    batch, single = check_images([[[1, 2]], [[3, 4]]])
    assert single and batch.shape == (1, 2, 1, 2) and batch.dtype == np.float32


def test_check_masks_rules():
    assert check_masks(np.array([[0, 2], [-1, 0]])).tolist() == [[0, 1], [1, 0]]
    assert check_masks(np.array([[0.0, 1.0]])).dtype == np.uint8
    with pytest.raises(ValueError, match=r"masks must have 2 or 3 dimensions, got shape \(3,\)"):
        check_masks(np.zeros(3, bool))
    with pytest.raises(TypeError, match="got dtype <U1"):
        check_masks(np.array([["a"]]))


def test_check_masks_passes_zero_one_bytes_through():
    masks = np.array([[0, 1], [1, 0]], np.uint8)
    assert check_masks(masks) is masks
    twos = np.array([[0, 2], [1, 0]], np.uint8)  # non-zero = foreground: converted, the input untouched
    out = check_masks(twos)
    assert out.tolist() == [[0, 1], [1, 0]] and twos.tolist() == [[0, 2], [1, 0]]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_check_images_finiteness_is_exact(bad):
    huge = np.full((2, 3, 4, 2), 3e38, np.float32)  # finite, but their sum overflows float32
    assert check_images(huge)[0] is huge
    x = np.zeros((2, 3, 4, 2), np.float32)
    x[1, 2, 3, 1] = bad
    with pytest.raises(ValueError, match=r"images must contain only finite values, got 1 NaN or infinite"):
        check_images(x)
    huge[0, 0, 0, 0] = bad
    with pytest.raises(ValueError, match="got 1 NaN or infinite"):
        check_images(huge)


def test_n_jobs_follows_scikit_learn():
    n_cpu = os.cpu_count()
    assert check_n_jobs(None) == 1
    assert check_n_jobs(1) == 1
    assert check_n_jobs(-1) == n_cpu
    assert check_n_jobs(-(n_cpu + 5)) == 1
    with pytest.raises(ValueError, match="n_jobs must be None or a non-zero integer, got 0"):
        check_n_jobs(0)
    with pytest.raises(TypeError, match="n_jobs must be None or a non-zero integer, got float 2.0"):
        check_n_jobs(2.0)


def test_n_jobs_obeys_threadpool_limits():
    pytest.importorskip("sklearn.cluster")  # loads scikit-learn's OpenMP runtime so the limit has a target
    import sklearn.cluster  # noqa: F401

    with threadpool_limits(limits=1):
        assert check_n_jobs(-1) == 1
        assert check_n_jobs(4) == 1


@pytest.mark.parametrize("n,k", [(10, 3), (3, 8), (1, 1), (0, 2), (256, 2)])
def test_chunk_bounds_cover_the_range(n, k):
    bounds = chunk_bounds(n, k)
    covered = [i for start, stop in bounds for i in range(start, stop)]
    assert covered == list(range(n))
    assert len(bounds) <= max(1, k)


def test_run_chunks_returns_in_order_and_propagates_errors():
    assert run_chunks(lambda a, b: (a, b), 5, 2) == [(0, 3), (3, 5)]
    with pytest.raises(ZeroDivisionError):
        run_chunks(lambda a, b: 1 / 0, 4, 2)
