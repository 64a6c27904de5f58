import numpy as np
from numpy.typing import NDArray

BLOCK: int

def simd_path() -> str: ...
def cpu_has_avx2_fma() -> bool: ...
def interleaved_ok(n_channels: int, width: int) -> bool: ...
def linear_scores_planar(
    images: NDArray[np.float32],
    rowmap: NDArray[np.intp],
    colmap: NDArray[np.intp],
    weights: NDArray[np.float32],
    intercept: float,
    mask: NDArray[np.uint8] | None,
    fill_value: float,
    out: NDArray[np.float32],
    planes: NDArray[np.float32],
) -> int: ...
def linear_scores_interleaved(
    images: NDArray[np.float32],
    rowmap: NDArray[np.intp],
    colmap: NDArray[np.intp],
    weights: NDArray[np.float32],
    intercept: float,
    mask: NDArray[np.uint8] | None,
    fill_value: float,
    out: NDArray[np.float32],
    padded: NDArray[np.float32],
) -> int: ...
