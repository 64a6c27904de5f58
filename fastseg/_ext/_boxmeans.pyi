import numpy as np
from numpy.typing import NDArray

def box_means(
    images: NDArray[np.float32],
    sizes: NDArray[np.intp],
    out: NDArray[np.float32],
    integral: NDArray[np.float64],
    offset: int = 0,
) -> None: ...
def copy_channels(images: NDArray[np.float32], out: NDArray[np.float32], offset: int) -> None: ...
