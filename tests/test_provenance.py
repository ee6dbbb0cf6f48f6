"""Tests for bnlessons.provenance: the BLAS configuration is read from the process itself."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from bnlessons.provenance import blas_info, blas_summary

CODE = "from bnlessons.provenance import blas_info; i = blas_info(); print(i.kernel, i.threads)"


def _child(**env: str) -> tuple[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", CODE],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    kernel, threads = done.stdout.split()
    return kernel, int(threads)


def test_thread_count_follows_the_environment() -> None:
    assert _child(OPENBLAS_NUM_THREADS="1")[1] == 1
    assert _child(OPENBLAS_NUM_THREADS="2")[1] == 2


def test_forced_kernel_is_reported() -> None:
    # Sandybridge (AVX) runs on every x86-64 CPU this project is built on.
    assert blas_info().library == "openblas", "numpy's bundled OpenBLAS is expected"
    assert _child(OPENBLAS_CORETYPE="Sandybridge")[0] == "Sandybridge"
    assert _child(OPENBLAS_CORETYPE="Haswell")[0] == "Haswell"


def test_summary_names_numpy_and_the_kernel() -> None:
    info = blas_info()
    line = blas_summary()
    assert line.startswith(f"numpy {np.__version__}, ")
    assert f"kernel {info.kernel}, {info.threads} BLAS thread" in line
