"""Whole models from ONNX files on fastconv's kernels (needs ``pip install "fastconv[onnx]"``).

>>> import fastconv.onnx                                      # doctest: +SKIP
>>> model = fastconv.onnx.load("resnet18.onnx")               # doctest: +SKIP
>>> y = model(x); print(model.summary()); print(model.profile(x))   # doctest: +SKIP
"""

from ._model import Model, Profile, load

__all__ = ["Model", "Profile", "load"]
