from typing import Any

import numpy as np

def config(isa: int, f64: bool) -> dict[str, Any] | None: ...
def scratch_bytes(isa: int, f64: bool, n: int, k: int) -> int: ...
def gemm(
    a: np.ndarray,
    b: np.ndarray,
    bias: np.ndarray | None,
    out: np.ndarray,
    accumulate: bool,
    isa: int,
    nthreads: int,
) -> None: ...
def fma_peak_flops(isa: int, f64: bool, iters: int, nthreads: int) -> float: ...

class PackedGemm:
    def __init__(
        self, a: np.ndarray, b: np.ndarray, out: np.ndarray, isa: int, nthreads: int
    ) -> None: ...
    def run(self) -> np.ndarray: ...
