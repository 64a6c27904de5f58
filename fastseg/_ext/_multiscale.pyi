import numpy as np
from numpy.typing import NDArray

def cpu_has_avx2_fma() -> bool: ...
def tile_features(
    images: NDArray[np.float32],
    weights: NDArray[np.float32],
    radii: NDArray[np.intp],
    three_d: bool,
    intensity: bool,
    edges: bool,
    texture: bool,
    mask: NDArray[np.uint8] | None,
    row_start: NDArray[np.intp],
    need: NDArray[np.uint8],
    span: NDArray[np.intp],
    out: NDArray[np.float32],
    t0: int,
    t1: int,
    gauss: NDArray[np.float32],
) -> None: ...
