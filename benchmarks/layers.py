"""Named real-network layer shapes: a re-export of :mod:`fastconv._suite`.

The catalogue lives inside the package so that the installed ``fastconv bench`` and these
pytest-benchmark files time exactly the same layers; edit it there.
"""

from fastconv._suite import (  # noqa: F401
    CONV,
    CONV_TRANSPOSE,
    EXTRA,
    POOL,
    SUITES,
    Conv,
    ConvTranspose,
    Pool,
    by_name,
    suite,
)
