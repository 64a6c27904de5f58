import numpy as np
from numpy.typing import NDArray

def n_context_columns(
    C: int, k: int, n_means: int, n_stds: int, asymmetry: bool, gradient: bool, position: bool, n_boxes: int
) -> int: ...
def scratch_size(H: int, W: int, C: int, n_columns: int) -> int: ...
def pixel_context(
    images: NDArray[np.float32],
    brain: NDArray[np.uint8],
    rows: NDArray[np.uint8],
    row_start: NDArray[np.intp],
    mirror: NDArray[np.intp],
    bbox: NDArray[np.intp],
    mean_sizes: NDArray[np.intp],
    std_sizes: NDArray[np.intp],
    brain_boxes: NDArray[np.intp],
    k: int,
    rowmap: NDArray[np.intp],
    colmap: NDArray[np.intp],
    asymmetry: bool,
    asymmetry_box: int,
    gradient_size: int,
    position: bool,
    out: NDArray[np.float32],
    offset: int,
    scratch: NDArray[np.float64],
    n0: int,
    n1: int,
) -> None: ...
def pixel_network_scores(
    images: NDArray[np.float32],
    brain: NDArray[np.uint8],
    rows: NDArray[np.uint8],
    row_start: NDArray[np.intp],
    mirror: NDArray[np.intp],
    bbox: NDArray[np.intp],
    mean_sizes: NDArray[np.intp],
    std_sizes: NDArray[np.intp],
    brain_boxes: NDArray[np.intp],
    k: int,
    rowmap: NDArray[np.intp],
    colmap: NDArray[np.intp],
    asymmetry: bool,
    asymmetry_box: int,
    gradient_size: int,
    position: bool,
    weights: NDArray[np.float32],
    biases: NDArray[np.float32],
    sizes: NDArray[np.intp],
    activation: int,
    output: int,
    scores: NDArray[np.float32],
    rowbuf: NDArray[np.float32],
    scratch: NDArray[np.float64],
    act: NDArray[np.float32],
    tile_rows: int,
    n0: int,
    n1: int,
    normalized: NDArray[np.float32] | None = None,
    min_std: float = 0.0,
) -> int: ...
def cpu_has_avx2() -> bool: ...
def cpu_has_avx2_fma() -> bool: ...
