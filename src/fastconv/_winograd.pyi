"""Type stubs of the compiled Winograd driver (fastconv._winograd)."""

import numpy as np
import numpy.typing as npt

def packed_weights_size(isa: int, f64: bool, tile: int, c_out: int, cin_per_group: int,
                        groups: int) -> int: ...
def transform_weights(w: npt.NDArray[np.floating], g: npt.NDArray[np.float64], tile: int,
                      groups: int, isa: int, nthreads: int,
                      packed: npt.NDArray[np.floating]) -> None: ...
def plan(x_shape: tuple[int, int, int, int], c_out: int, tile: int, groups: int, out_h: int,
         out_w: int, isa: int, f64: bool, nthreads: int, block_tiles: int = 0,
         k_split: int = 0) -> dict[str, int]: ...
def conv2d(x: npt.NDArray[np.floating], packed: npt.NDArray[np.floating],
           bias: npt.NDArray[np.floating] | None, out: npt.NDArray[np.floating], tile: int,
           groups: int, pad_top: int, pad_left: int, isa: int, nthreads: int,
           block_tiles: int = 0, k_split: int = 0) -> None: ...
