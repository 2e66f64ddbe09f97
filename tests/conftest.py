"""Shared test configuration: hypothesis profiles and the ISA / thread parametrisations."""

import os

import pytest
from hypothesis import HealthCheck, settings

# CI profile: deterministic and without deadlines (the machines are shared and noisy).
settings.register_profile("ci", deadline=None, derandomize=True, max_examples=60,
                          suppress_health_check=[HealthCheck.too_slow])
# Longer local runs: HYPOTHESIS_PROFILE=long python -m pytest
settings.register_profile("long", deadline=None, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

def isa_params():
    """Every ISA of the registry (include/fastconv/isa.h), the ones this machine or build lacks
    skipped with the reason."""
    try:
        from fastconv import _dispatch

        names, available = _dispatch.isa_names(), _dispatch.available_isas()
    except ImportError as exc:  # extension not built: every ISA-specific test is skipped
        return [pytest.param("any", marks=pytest.mark.skip(reason=str(exc)))]
    return [
        pytest.param(isa, marks=() if isa in available else pytest.mark.skip(
            reason=f"{isa} kernels are not compiled in or not supported by this CPU "
                   f"(available: {', '.join(available)})"))
        for isa in names
    ]


@pytest.fixture(params=isa_params())
def isa(request):
    """Run the test once per instruction set, with that ISA's kernels in use."""
    from fastconv import _dispatch

    with _dispatch.use_isa(request.param):
        yield request.param
