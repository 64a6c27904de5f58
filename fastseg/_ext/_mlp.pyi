import numpy as np
from numpy.typing import NDArray

def mlp_scores(
    images: NDArray[np.float32],
    rowmap: NDArray[np.intp],
    colmap: NDArray[np.intp],
    k: int,
    weights: NDArray[np.float32],
    biases: NDArray[np.float32],
    sizes: NDArray[np.intp],
    activation: int,
    mask: NDArray[np.uint8] | None,
    fill_value: float,
    out: NDArray[np.float32],
    padded: NDArray[np.float32],
    tile: NDArray[np.float32],
    act: NDArray[np.float32],
    index: NDArray[np.intp],
    pos_start: int,
    pos_stop: int,
) -> None: ...
def mlp_rows(
    rows: NDArray[np.float32],
    weights: NDArray[np.float32],
    biases: NDArray[np.float32],
    sizes: NDArray[np.intp],
    code: int,
    out: NDArray[np.float32],
    act: NDArray[np.float32],
    tile_rows: int,
    output: int = 3,
) -> None: ...
