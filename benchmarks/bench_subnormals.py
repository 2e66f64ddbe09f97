"""Subnormal inputs against normal ones, every operator and algorithm, with fastconv's default
flush-to-zero and with IEEE subnormals (``fastconv.set_flush_denormal(False)``).

    python benchmarks/bench_subnormals.py [--threads 1,2]   # = fastconv bench --subnormals

With flushing every ratio should be ~1 on any CPU; the IEEE column is what this CPU charges for
subnormal arithmetic.
"""

import sys

from fastconv._bench_cli import main

if __name__ == "__main__":
    sys.exit(main(["--subnormals", *sys.argv[1:]]))
