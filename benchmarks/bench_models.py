"""Whole torchvision models (and a UNet): fastconv.onnx against ONNX Runtime, end to end.

The code lives in ``fastconv._bench_models`` (also ``fastconv bench --suite models``)::

    flock /tmp/cpu.lock python benchmarks/bench_models.py --models resnet18 mobilenet_v2
"""

import sys

from fastconv._bench_models import main

if __name__ == "__main__":
    sys.exit(main())
