import numpy as np

MAX: int
AVG: int
LP: int

def pool(kind: int, dtype: int, x: np.ndarray, y: np.ndarray, indices: np.ndarray | None,
         isize: tuple[int, int, int], osize: tuple[int, int, int],
         kernel: tuple[int, int, int], stride: tuple[int, int, int],
         dilation: tuple[int, int, int], pad: tuple[int, int, int],
         limit: tuple[int, int, int], count_include_pad: bool, divisor: float, p: float,
         isa: int, nthreads: int) -> None: ...
def adaptive_pool(kind: int, dtype: int, x: np.ndarray, y: np.ndarray,
                  indices: np.ndarray | None, isize: tuple[int, int, int],
                  osize: tuple[int, int, int], bins: np.ndarray, nthreads: int) -> None: ...
def global_pool(kind: int, dtype: int, x: np.ndarray, y: np.ndarray, isa: int,
                nthreads: int) -> None: ...
def max_unpool(x: np.ndarray, indices: np.ndarray, y: np.ndarray, nthreads: int) -> None: ...
def max_pool_backward(g: np.ndarray, indices: np.ndarray, y: np.ndarray, nthreads: int) -> None: ...
