import numpy as np
from numpy.typing import NDArray

def normalize_brain(
    images: NDArray[np.float32],
    brain: NDArray[np.uint8],
    out: NDArray[np.float32],
    stats: NDArray[np.float64],
    min_std: float,
) -> int: ...
def divide_into_slices(
    volume: NDArray[np.float64], divisor: float, out: NDArray[np.float32], channel: int
) -> None: ...
