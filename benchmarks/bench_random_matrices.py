"""Time the chain samplers of bnlessons.random_matrices (run by `make bench`).

Prints the median over repeats of:
- ``sample_chain_output_norms``: 100,000 draws of the notes' network (target: < 2 s);
- ``sample_chain_output_norms_full``: the same network with its full matrices, per 1,000 draws,
  and the time that would take for 100,000 draws (why the fast sampler exists);
- ``sample_frobenius_norms`` / ``sample_spectral_norms`` for the lesson's table sizes.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable

from bnlessons.random_matrices import (
    SEED_SHAPES,
    sample_chain_output_norms,
    sample_chain_output_norms_full,
    sample_frobenius_norms,
    sample_spectral_norms,
)

TARGET_S = 2.0

# Measured here, kept out of the library's docstrings (timings change with the machine):
# - sample_spectral_norms takes the largest eigenvalue of the smaller Gram matrix (eigvalsh)
#   rather than the largest singular value (np.linalg.svd(compute_uv=False)); on stacks of
#   100x100 matrices that ran 1.5 to 2 times faster, with the same values to rounding.


def median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    fast = median_time(lambda: sample_chain_output_norms(SEED_SHAPES, 100_000, rng=0), 11)
    full = median_time(lambda: sample_chain_output_norms_full(SEED_SHAPES, 1_000, rng=0), 5)
    frob = median_time(lambda: sample_frobenius_norms(100, 100, 2_000, rng=0), 5)
    spec = median_time(lambda: sample_spectral_norms(100, 100, 1_000, rng=0), 3)
    rows = [
        ("sample_chain_output_norms, seed network, 100,000 draws", fast),
        ("sample_chain_output_norms_full, seed network, 1,000 draws", full),
        ("  (full matrices, extrapolated to 100,000 draws)", 100 * full),
        ("sample_frobenius_norms 100x100, 2,000 draws", frob),
        ("sample_spectral_norms 100x100, 1,000 draws", spec),
    ]
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    # the spectral sampler calls LAPACK on many small matrices: on a busy machine, multithreaded
    # OpenBLAS can be ~10x slower than OPENBLAS_NUM_THREADS=1 there
    print(f"cpus {os.cpu_count()}, load average {load:.2f}, OPENBLAS_NUM_THREADS={threads}")
    print(f"{'benchmark':<62}{'median s':>12}")
    for name, t in rows:
        print(f"{name:<62}{t:>12.4f}")
    ok = fast < TARGET_S
    print(f"100,000-draw chain sampler under {TARGET_S:.0f} s: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
