import numpy as np
from numpy.typing import NDArray

def gather_dense(
    images: NDArray[np.float32],
    rowmap: NDArray[np.intp],
    colmap: NDArray[np.intp],
    k: int,
    out: NDArray[np.float32],
    scratch: NDArray[np.float32],
) -> None: ...
def gather_masked(
    images: NDArray[np.float32],
    rowmap: NDArray[np.intp],
    colmap: NDArray[np.intp],
    k: int,
    mask: NDArray[np.uint8],
    out: NDArray[np.float32],
    scratch: NDArray[np.float32],
) -> None: ...
