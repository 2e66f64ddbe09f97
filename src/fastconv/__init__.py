"""fastconv: fast CPU convolution and pooling on NumPy arrays.

The operators live in compiled modules that are loaded on first use, so ``import fastconv`` and
``import fastconv.shapes`` work even where the extension was never built; the first call of an
operator then raises an ``ImportError`` that says how to build it.
"""

import importlib

from ._subnormals import flush_denormal, get_flush_denormal, set_flush_denormal
from ._threads import get_num_threads, num_threads, set_num_threads
from ._version import __version__

# public name -> module that defines it
_LAZY = {
    **dict.fromkeys(("config", "show_config"), "_config"),
    **dict.fromkeys(("conv1d", "conv2d", "conv3d", "Conv1d", "Conv2d", "Conv3d"), "conv"),
    **dict.fromkeys(("conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
                     "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"),
                    "conv_transpose"),
    **dict.fromkeys(("deform_conv2d", "DeformConv2d"), "deform"),
    **dict.fromkeys(tuple(f"{kind}_pool{d}d" for kind in ("max", "avg", "lp")
                          for d in (1, 2, 3))
                    + tuple(f"adaptive_{kind}_pool{d}d" for kind in ("max", "avg")
                            for d in (1, 2, 3))
                    + tuple(f"max_unpool{d}d" for d in (1, 2, 3))
                    + ("global_avg_pool", "global_max_pool", "spatial_pyramid_pool2d",
                       "mixed_pool2d")
                    + tuple(f"{kind}Pool{d}d" for kind in ("Max", "Avg", "Lp", "AdaptiveAvg",
                                                             "AdaptiveMax")
                            for d in (1, 2, 3))
                    + ("MixedPool2d", "SpatialPyramidPool2d", "GlobalAvgPool", "GlobalMaxPool"),
                    "pool"),
    **dict.fromkeys(tuple(f"conv{d}d_backward" for d in (1, 2, 3))
                    + tuple(f"conv_transpose{d}d_backward" for d in (1, 2, 3))
                    + tuple(f"{kind}_pool{d}d_backward" for kind in ("max", "avg", "adaptive_avg",
                                                                      "adaptive_max")
                            for d in (1, 2, 3)),
                    "gradients"),
    **dict.fromkeys(("linear", "Linear"), "fully_connected"),
    "interpolate": "resize",
}

__all__ = ["__version__", "get_num_threads", "set_num_threads", "num_threads",
           "get_flush_denormal", "set_flush_denormal", "flush_denormal", "shapes", *_LAZY]


def __getattr__(name: str):
    if name in ("shapes", "onnx"):  # fastconv.onnx needs the onnx package
        return importlib.import_module(f"fastconv.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fastconv' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"fastconv.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    # not the helper module this file imports (``importlib`` is no part of fastconv's API)
    return sorted((set(globals()) - {"importlib"}) | set(__all__))
