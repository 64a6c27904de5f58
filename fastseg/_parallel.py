"""Running GIL-free kernels over a batch of images with several threads.

fastseg's kernels release the GIL for their whole loop, so a plain thread pool
over contiguous chunks of the batch gives real parallelism without OpenMP.
``n_jobs`` follows scikit-learn (see ``_validation.check_n_jobs``).  Kernels that
call BLAS inside their loop (the MLP) cap it to one thread themselves
(``scoring._single_threaded_blas``); capping it here for every kernel cost more
than it saved: restoring OpenBLAS's thread count wakes its spinning workers,
which then compete with ours (clean_mask on 256 masks: 10.9 ms serial, 13.7 ms
with two threads).
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np

__all__ = ["chunk_bounds", "run_chunks", "thread_buffer"]

_local = threading.local()


def thread_buffer(key: tuple, make: Callable[[], np.ndarray]) -> np.ndarray:
    """The scratch buffer ``make()`` allocates, kept per thread under ``key`` and reused.

    Fresh memory costs a page fault per 4 KB on first touch (~0.1 ms for the 1 MB
    padded copy of a 240x240x4 slice, as much as the k=3 kernel itself; buffers
    over 32 MB are always fresh from glibc, and under dask's
    ``MALLOC_TRIM_THRESHOLD_`` smaller ones are too), so each thread keeps its last
    few scratch buffers.  Thread-local: concurrent calls never share one.
    """
    cache = getattr(_local, "buffers", None)
    if cache is None:
        cache = _local.buffers = {}
    buf = cache.get(key)
    if buf is None:
        if len(cache) >= 8:
            cache.clear()
        buf = cache[key] = make()
    return buf


def chunk_bounds(n_items: int, n_chunks: int) -> list[tuple[int, int]]:
    """Split ``range(n_items)`` into at most ``n_chunks`` contiguous, near-equal ``(start, stop)`` pairs."""
    n_chunks = max(1, min(n_chunks, n_items))
    step, extra = divmod(n_items, n_chunks)
    bounds, start = [], 0
    for i in range(n_chunks):
        stop = start + step + (1 if i < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def run_chunks(func: Callable[[int, int], object], n_items: int, n_jobs: int) -> list:
    """Call ``func(start, stop)`` on contiguous chunks of ``range(n_items)``, using ``n_jobs`` threads.

    With ``n_jobs == 1`` (or a single item) it runs in the calling thread.  Each
    chunk's result is returned in chunk order; exceptions propagate.  ``func``
    must write to disjoint parts of its outputs for different chunks.
    """
    bounds = chunk_bounds(n_items, n_jobs)
    if len(bounds) <= 1:
        return [func(start, stop) for start, stop in bounds]
    with ThreadPoolExecutor(max_workers=len(bounds)) as pool:
        futures = [pool.submit(func, start, stop) for start, stop in bounds]
        return [f.result() for f in futures]
