"""Running GIL-free kernels over a batch of images with several threads.

fastseg's kernels release the GIL for their whole loop, so a plain thread pool
over contiguous chunks of the batch gives real parallelism without OpenMP.
``n_jobs`` follows scikit-learn (see ``_validation.check_n_jobs``), and BLAS is
capped to one thread inside our own parallel region so the two do not
oversubscribe the cores.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable

_controller = None


def _blas_limited_to_one():
    """Context manager capping BLAS to one thread (threadpoolctl's controller, built once:
    building it scans the loaded libraries, about a millisecond)."""
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")

__all__ = ["chunk_bounds", "run_chunks"]


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
    with _blas_limited_to_one():
        with ThreadPoolExecutor(max_workers=len(bounds)) as pool:
            futures = [pool.submit(func, start, stop) for start, stop in bounds]
            return [f.result() for f in futures]
