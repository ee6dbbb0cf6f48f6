"""What a computation ran on: Python, numpy, and the BLAS kernel and threads it used.

The lessons' numbers come from one machine. OpenBLAS chooses a compute kernel for the CPU it
runs on (AVX-512, AVX2, AVX, ...), and the kernel and the thread count change the order of
floating-point sums, so another machine gives the same numbers only to rounding (and a chaotic
run, such as a diverging network, can end elsewhere). The site promises identical numbers for
the same configuration and identical claims on every configuration; this module names the
configuration, so a reader who sees other digits knows why.

>>> from bnlessons.provenance import blas_summary
>>> blas_summary().startswith("numpy ")
True
"""

from __future__ import annotations

import platform
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_info

__all__ = ["BlasInfo", "blas_info", "blas_summary"]


@dataclass(frozen=True)
class BlasInfo:
    """The BLAS library numpy calls, as threadpoolctl reports it.

    Attributes
    ----------
    library : str
        Its name, for example ``"openblas"`` (``"unknown"`` when none is found).
    version : str
        Its version string.
    kernel : str
        The compute kernel it chose for this CPU (OpenBLAS's ``architecture``, for example
        ``"SkylakeX"`` or ``"Haswell"``); set ``OPENBLAS_CORETYPE`` to force another.
    threads : int
        The number of threads it uses (``OPENBLAS_NUM_THREADS``).
    """

    library: str
    version: str
    kernel: str
    threads: int


def blas_info() -> BlasInfo:
    """Return the BLAS library numpy uses, its kernel and its thread count.

    >>> info = blas_info()
    >>> info.threads >= 1
    True
    """
    np.ones((2, 2)) @ np.ones((2, 2))  # make sure numpy's BLAS is loaded
    for entry in threadpool_info():
        if entry.get("user_api") == "blas":
            return BlasInfo(
                library=str(entry.get("internal_api", "unknown")),
                version=str(entry.get("version", "unknown")),
                kernel=str(entry.get("architecture", "unknown")),
                threads=int(entry.get("num_threads", 1)),
            )
    return BlasInfo(library="unknown", version="unknown", kernel="unknown", threads=1)


def blas_summary() -> str:
    """Return one line naming Python, numpy, the BLAS, its kernel and its threads.

    >>> "kernel" in blas_summary()
    True
    """
    info = blas_info()
    threads = "thread" if info.threads == 1 else "threads"
    return (
        f"numpy {np.__version__}, {info.library} {info.version}, kernel {info.kernel}, "
        f"{info.threads} BLAS {threads}, Python {platform.python_version()}"
    )
