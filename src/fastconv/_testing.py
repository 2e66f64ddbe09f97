"""Private test and benchmark hooks into the compiled core (not public API).

``gemm`` runs the packed GEMM driver of ``fastconv/gemm.h`` on plain NumPy matrices,
``gemm_config`` shows which micro-kernel an ISA uses, ``peak_gflops`` measures the FMA peak of
an ISA with the C loop compiled beside its kernels (12 independent FMA chains per thread).
"""

import numpy as np

from . import _dispatch, _threads, _validate
from ._extension import load


def _isa_index(isa: str | None) -> int:
    """The ISA number for ``isa`` (None: the one in use); it must be available here."""
    if isa is None:
        return _dispatch.isa_index()
    _validate.check_choice(isa, "isa", _dispatch.isa_names())
    if isa not in _dispatch.available_isas():
        raise ValueError(
            f"isa={isa!r} is not available here (available: "
            f"{', '.join(_dispatch.available_isas())})")
    return _dispatch.isa_names().index(isa)


def _element_strided(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``x`` as ``dtype`` keeping its strides when they are whole elements (no copy then)."""
    x = x.astype(dtype, copy=False)
    if any(s % x.itemsize for s in x.strides):
        x = np.ascontiguousarray(x)
    return x


def gemm(a: object, b: object, bias: object = None, *, threads: int = 1, isa: str | None = None,
         accumulate_into: object = None) -> np.ndarray:
    """``a @ b`` (+ ``bias[:, None]``) (+ ``accumulate_into``) with fastconv's packed GEMM.

    Parameters
    ----------
    a, b : array_like
        2-D matrices ``(M, K)`` and ``(K, N)``, any strides (transposed, negative, broadcast
        views are used without copying). Computed in float32 if both are float32 (or
        narrower), else float64.
    bias : array_like, optional
        Shape ``(M,)``, added to every column.
    threads : int
        Exact thread count (``-1``: every CPU).
    isa : str, optional
        ``"scalar"``, ``"avx2"``, ``"avx512"`` or ``"neon"``; default the ISA in use.
    accumulate_into : array_like, optional
        Shape ``(M, N)``; the result is added to it (the input is not modified).

    Returns
    -------
    numpy.ndarray
        ``(M, N)`` C-contiguous result of the computing dtype.
    """
    a = _validate.check_array(a, "a")
    b = _validate.check_array(b, "b")
    bias = None if bias is None else _validate.check_array(bias, "bias")
    acc = None if accumulate_into is None else _validate.check_array(
        accumulate_into, "accumulate_into")
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"a and b must be 2-D, got shapes {a.shape} and {b.shape}")
    (m, k), n = a.shape, b.shape[1]
    if b.shape[0] != k:
        raise ValueError(f"a {a.shape} and b {b.shape} do not multiply")
    if bias is not None and bias.shape != (m,):
        raise ValueError(f"bias must have shape ({m},), got {bias.shape}")
    if acc is not None and acc.shape != (m, n):
        raise ValueError(f"accumulate_into must have shape {(m, n)}, got {acc.shape}")
    if max(m, n, k) >= 2**31:
        raise ValueError(f"gemm dims must be < 2**31, got {(m, n, k)}")
    dtype = _validate.compute_dtype(a, b)
    nthreads = _threads.check_threads(threads)
    isa_index = _isa_index(isa)
    out = np.empty((m, n), dtype) if acc is None else np.array(acc, dtype=dtype, order="C")
    load("_gemm").gemm(
        _element_strided(a, dtype), _element_strided(b, dtype),
        None if bias is None else _element_strided(bias, dtype), out, acc is not None,
        isa_index, nthreads)
    return out


def packed_gemm(a: object, b: object, *, threads: int = 1, isa: str | None = None):
    """A runner for ``a @ b`` with ``a`` packed once (as a convolution layer packs its weights).

    Returns an object whose ``run()`` computes the product with the GEMM driver only (B is
    still packed on every call, through the strided callback) and returns the (reused) output.
    For benchmarks; ``a`` and ``b`` must be non-empty.
    """
    a = _validate.check_array(a, "a")
    b = _validate.check_array(b, "b")
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0] or 0 in a.shape + b.shape:
        raise ValueError(f"a {a.shape} and b {b.shape} must be non-empty multipliable matrices")
    dtype = _validate.compute_dtype(a, b)
    out = np.empty((a.shape[0], b.shape[1]), dtype)
    return load("_gemm").PackedGemm(_element_strided(a, dtype), _element_strided(b, dtype), out,
                                    _isa_index(isa), _threads.check_threads(threads))


def gemm_config(isa: str | None = None, dtype: object = "float32") -> dict:
    """``dict(mr=, nr=, kc=, mc=, nc=, kernel=name)`` of the micro-kernel ``isa`` uses."""
    f64 = np.dtype(dtype) == np.float64
    return load("_gemm").config(_isa_index(isa), f64)


def peak_gflops(isa: str | None = None, dtype: object = "float32", threads: int = 1,
                repeats: int = 5) -> float:
    """The FMA peak of ``isa`` in GFLOP/s on ``threads`` threads (best of ``repeats`` runs).

    Each run is 12 independent chains of full-vector FMAs per thread, sized to take ~50 ms
    (:func:`fastconv._peak.fma_peak_gflops`, which ``fastconv info --peak`` prints).
    """
    from . import _peak

    _isa_index(isa)  # validates
    return _peak.fma_peak_gflops(isa, dtype, threads, seconds=0.05, repeats=repeats)
