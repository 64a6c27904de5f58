import numpy as np
from numpy.typing import NDArray

def scratch_size(height: int, width: int) -> int: ...
def label_batch(
    masks: NDArray[np.uint8] | NDArray[np.bool_],
    connectivity: int,
    labels: NDArray[np.int32],
    counts: NDArray[np.intp],
    scratch: NDArray[np.int32],
) -> None: ...
def clean_batch(
    masks: NDArray[np.uint8] | NDArray[np.bool_],
    min_size: int,
    min_relative_size: float,
    connectivity: int,
    fill: bool,
    hole_connectivity: int,
    out: NDArray[np.uint8] | NDArray[np.bool_],
    scratch: NDArray[np.int32],
) -> None: ...
def keep_largest_batch(
    masks: NDArray[np.uint8] | NDArray[np.bool_],
    n_keep: int,
    connectivity: int,
    out: NDArray[np.uint8] | NDArray[np.bool_],
    scratch: NDArray[np.int32],
    keys: NDArray[np.int64],
) -> None: ...
def volume_scratch_size(depth: int, height: int, width: int) -> int: ...
def clean_volume(
    mask: NDArray[np.uint8] | NDArray[np.bool_],
    min_relative_size: float,
    out: NDArray[np.uint8] | NDArray[np.bool_],
    scratch: NDArray[np.int32],
) -> int: ...
