"""Type stubs of the compiled convolution drivers (fastconv._conv)."""

import numpy as np
import numpy.typing as npt

Geometry = tuple[int, int, int, int, tuple[int, int, int], tuple[int, int, int],
                 tuple[int, int, int], tuple[int, int, int], tuple[int, int, int],
                 tuple[int, int, int]]

KERNELS: dict[str, int]

def packed_weight_size(geometry: Geometry, isa: int, dtype: npt.DTypeLike) -> int: ...
def pack_weight(geometry: Geometry, weight: npt.NDArray[np.floating], isa: int,
                nthreads: int = 1) -> npt.NDArray[np.floating]: ...
def deform(geometry: Geometry, offset_groups: int, x: npt.NDArray[np.floating],
           offset: npt.NDArray[np.floating], mask: npt.NDArray[np.floating] | None,
           weight: npt.NDArray[np.floating], bias: npt.NDArray[np.floating] | None,
           y: npt.NDArray[np.floating], isa: int, nthreads: int) -> None: ...

class Runner:
    def __init__(self, kernel: int, geometry: Geometry, dtype: npt.DTypeLike, weight_size: int,
                 isa: int, nthreads: int) -> None: ...
    def __call__(self, x: npt.NDArray[np.floating], weight: npt.NDArray[np.floating],
                 bias: npt.NDArray[np.floating] | None, y: npt.NDArray[np.floating]) -> None: ...
