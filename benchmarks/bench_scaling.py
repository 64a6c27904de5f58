"""Throughput as the work grows: 256 and 8,000 real slices, in process and on a 2-worker dask cluster.

The workload is ``bench_pipeline.py``'s: the k=5 linear segmenter with post-processing, the shipped
brain masks, the 20 real BraTS slices repeated.  8,000 slices of float32 are 7.4 GB, so the 8,000-slice
stack is the 256-slice batch tiled: slice i is slice ``i % 256`` of the batch (as it would be read
from a 256-slice-periodic file, without the file).  The work per slice is the same as on distinct
slices: every call reads and writes arrays far larger than the caches.

- ``in-process-{1,2}-threads``: ``PixelSegmenter.predict`` with ``n_jobs`` 1 / 2 over the stack, 256
  slices per call (one call for 256 slices), into one (N, 240, 240) output: the baseline.
- ``dask-threads``: ``fastseg.dask.predict`` in this process with dask's threaded scheduler, two
  threads, one task per 128 slices.
- ``local-cluster-*``: ``fastseg.dask.predict`` on a ``LocalCluster`` of two single-threaded worker
  processes, one task per 128 slices, the masks gathered into this process.  The input is already on
  the workers (scattered to both before timing), as the in-process input is already in memory.
  ``compute``: ``client.compute(masks)`` (a worker concatenates the chunks, then sends the result);
  ``compute_into``: ``fastseg.dask.compute_into(masks)`` (each chunk written into one preallocated
  array here as its task finishes).  ``dask-env``: the workers as dask starts them; ``untrimmed``:
  without the ``MALLOC_TRIM_THRESHOLD_=65536`` dask sets in its workers' environment (see
  ``fastseg/dask.py``).

Medians are per round (the whole stack); slices/s = slices / median (also stored in the JSON's
``extra_info``).  The 8,000-slice cases take seconds per round and are skipped under
``--benchmark-disable`` (CI's smoke run); the 256-slice ones run there once each.

Run:  pytest benchmarks/bench_scaling.py --benchmark-columns=median,iqr,rounds
"""
from __future__ import annotations

import copy
import os

import numpy as np
import pytest

SIZES = (256, 8000)
#: In-process batches: slices per predict call (also the period of the tiled stack).
BATCH = 256
#: Slices per dask task (a divisor of BATCH).  Chosen on the cluster (8,192 slices, compute_into, six
#: rounds alternating with in-process predict, measured while the tasks still copied their chunk):
#: 64 slices per task reached 66-75 % of the in-process throughput, 128 75-85 %, 256 58-77 %.
CHUNK = 128
THREADS = 2


def _skip_big_when_disabled(benchmark, n_slices):
    if n_slices > BATCH and benchmark.disabled:
        pytest.skip("8,000-slice cases are timed runs only (seconds per round); skipped under --benchmark-disable")


def _run(benchmark, func, n_slices):
    """Time ``func`` (whole stack per round), record slices/s, return its result."""
    benchmark.group = f"scaling-{n_slices}"
    if n_slices > BATCH:
        result = benchmark.pedantic(func, rounds=5, iterations=1, warmup_rounds=1)
    else:
        result = benchmark(func)
    if not benchmark.disabled:
        benchmark.extra_info["slices"] = n_slices
        benchmark.extra_info["slices_per_second"] = n_slices / benchmark.stats.stats.median
    return result


def _check(masks, expected, n_slices):
    """The masks of the tiled stack are the batch's masks, tile after tile."""
    assert masks.shape == (n_slices,) + expected.shape[1:] and masks.dtype == bool
    for start in (0, (n_slices - 1) // BATCH * BATCH):
        stop = min(start + BATCH, n_slices)
        np.testing.assert_array_equal(masks[start:stop], expected[:stop - start])


@pytest.fixture(scope="module")
def expected(brats, linear_k5):
    _, _, _, images, brain = brats
    return linear_k5.predict(images, brain)


def predict_in_batches(segmenter, images, brain, n_slices):
    """``n_slices`` of the stack that tiles ``images``, ``BATCH`` slices per predict call, into one output."""
    out = np.empty((n_slices,) + images.shape[1:3], dtype=bool)
    for start in range(0, n_slices, BATCH):
        stop = min(start + BATCH, n_slices)
        out[start:stop] = segmenter.predict(images[:stop - start], brain[:stop - start])
    return out


@pytest.mark.parametrize("n_slices", SIZES)
@pytest.mark.parametrize("n_jobs", [1, THREADS], ids=lambda j: f"{j}-thread{'s' if j > 1 else ''}")
def test_in_process(benchmark, brats, linear_k5, expected, n_slices, n_jobs):
    _skip_big_when_disabled(benchmark, n_slices)
    _, _, _, images, brain = brats
    seg = copy.copy(linear_k5).set_params(n_jobs=n_jobs)  # the fitted weights are shared, not copied
    masks = _run(benchmark, lambda: predict_in_batches(seg, images, brain, n_slices), n_slices)
    _check(masks, expected, n_slices)


def _tiled(da, parts, n_slices, shape, dtype):
    """A dask array of ``n_slices`` whose chunk j is ``parts[j % len(parts)]`` (each CHUNK slices; the last
    chunk is cut to what is left)."""
    chunks = [da.from_delayed(parts[(i // CHUNK) % len(parts)], (CHUNK,) + shape, dtype)
              for i in range(0, n_slices, CHUNK)]
    chunks[-1] = chunks[-1][:n_slices - (len(chunks) - 1) * CHUNK]
    return da.concatenate(chunks)


@pytest.mark.parametrize("n_slices", SIZES)
def test_dask_threads(benchmark, brats, linear_k5, expected, n_slices):
    da = pytest.importorskip("dask.array")
    import dask
    import fastseg.dask

    _skip_big_when_disabled(benchmark, n_slices)
    _, _, _, images, brain = brats
    x_parts = [dask.delayed(images[i:i + CHUNK]) for i in range(0, BATCH, CHUNK)]
    b_parts = [dask.delayed(brain[i:i + CHUNK]) for i in range(0, BATCH, CHUNK)]
    masks = fastseg.dask.predict(linear_k5, _tiled(da, x_parts, n_slices, images.shape[1:], images.dtype),
                                 _tiled(da, b_parts, n_slices, brain.shape[1:], brain.dtype))
    result = _run(benchmark, lambda: masks.compute(scheduler="threads", num_workers=THREADS), n_slices)
    _check(result, expected, n_slices)


@pytest.fixture(scope="module", params=["dask-env", "untrimmed"])
def cluster(request, brats):
    """A LocalCluster of two single-threaded worker processes with the 256-slice batch on both workers."""
    pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    import dask

    settings = {}
    if request.param == "untrimmed":  # let glibc keep freed memory for reuse (its default)
        settings["distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"] = None
    environ = os.environ.copy()  # the nanny sets its workers' variables (OMP_NUM_THREADS=1, ...) in this process too
    with dask.config.set(settings):
        local = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                         dashboard_address=None)
    client = distributed.Client(local, set_as_default=False)
    _, _, _, images, brain = brats
    x_parts = client.scatter([images[i:i + CHUNK] for i in range(0, BATCH, CHUNK)], broadcast=True)
    b_parts = client.scatter([brain[i:i + CHUNK] for i in range(0, BATCH, CHUNK)], broadcast=True)
    try:
        yield request.param, client, x_parts, b_parts
    finally:
        client.close()
        local.close()
        os.environ.clear()
        os.environ.update(environ)


@pytest.mark.parametrize("n_slices", SIZES)
@pytest.mark.parametrize("gather", ["compute", "compute_into"])
def test_local_cluster(benchmark, brats, linear_k5, expected, cluster, gather, n_slices):
    import dask.array as da
    import fastseg.dask

    _skip_big_when_disabled(benchmark, n_slices)
    env, client, x_parts, b_parts = cluster
    _, _, _, images, brain = brats
    masks = fastseg.dask.predict(linear_k5, _tiled(da, x_parts, n_slices, images.shape[1:], images.dtype),
                                 _tiled(da, b_parts, n_slices, brain.shape[1:], brain.dtype))
    if gather == "compute":
        result = _run(benchmark, lambda: client.compute(masks, sync=True), n_slices)
    else:
        result = _run(benchmark, lambda: fastseg.dask.compute_into(masks, client=client), n_slices)
    _check(result, expected, n_slices)
