from typing import Any

import numpy as np

ALGORITHMS: dict[str, int]
MAX_PHASE_KERNEL: int

class PreparedWeight:
    data: np.ndarray
    algorithm: str
    isa: int
    weight_shape: tuple[int, ...]
    groups: int
    stride: tuple[int, int, int]
    dilation: tuple[int, int, int]
    def __init__(
        self,
        weight: np.ndarray,
        groups: int,
        stride: tuple[int, int, int],
        dilation: tuple[int, int, int],
        algorithm: str,
        isa: int,
    ) -> None: ...

def run(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    y: np.ndarray,
    groups: int,
    stride: tuple[int, int, int],
    dilation: tuple[int, int, int],
    pad: tuple[int, int, int],
    algorithm: str,
    isa: int,
    nthreads: int,
    prepared: PreparedWeight | None = None,
) -> Any: ...
