"""Benchmark: BatchNorm forward + backward (training mode), bnlessons against PyTorch on CPU.

Prints, per shape, the median time of one forward + backward of ``bnlessons.BatchNorm``
(and, in parentheses, the minimum, which is steadier on a loaded machine),
the effective bandwidth (5 passes over x's bytes: read x, write y, read dy, read x or x_hat,
write dx, divided by the time) and, when PyTorch is installed, the ratio to
``torch.nn.BatchNorm1d/2d`` forward + backward with one thread (numpy's ufuncs are
single-threaded; BLAS is pinned to one thread too), beside the goal of issue 10 for that ratio
(at most 0.7 at (60, 100), at most 1.3 from (256, 1024) up). Inputs and upstream gradients are
allocated once and reused by both; the two implementations are timed in alternation so that
load from other processes hits both alike. A benchmark, not a test: numbers vary with the
machine and its load; compare the ratios.

``--cpu-time`` times the CPU time of the (single) thread that runs both instead of the
wall-clock time: on a machine shared with other work it leaves out the time the others hold
the CPU, which a median of wall-clock times does not fully remove.

Run: ``python benchmarks/bench_batchnorm.py [--quick] [--cpu-time]`` (``make bench`` runs it).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy (and torch) start their thread pools

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from bnlessons.batchnorm import BatchNorm  # noqa: E402

try:
    import torch
except ImportError:  # pragma: no cover - torch is optional
    torch = None

SHAPES: list[tuple[int, ...]] = [
    (60, 100),
    (256, 1024),
    (4096, 1024),
    (65536, 256),
    (32, 64, 56, 56),
]
# Goals of issue 10: the median time at most this many times PyTorch's, measured in the same run
# (the batch of the Figure 1 network, then every shape from (256, 1024) up).
GOALS = {(60, 100): 0.7} | {shape: 1.3 for shape in SHAPES[1:]}


def ours(shape: tuple[int, ...], x: np.ndarray, dy: np.ndarray) -> Callable[[], None]:
    layer = BatchNorm(shape[1], dtype=np.float32)

    def step() -> None:
        layer(x)
        layer.backward(dy)

    return step


def theirs(shape: tuple[int, ...], x: np.ndarray, dy: np.ndarray) -> Callable[[], None]:
    assert torch is not None
    module = torch.nn.BatchNorm1d if len(shape) <= 3 else torch.nn.BatchNorm2d
    layer = module(shape[1], dtype=torch.float32)
    xt = torch.from_numpy(x).requires_grad_(True)
    dyt = torch.from_numpy(dy)
    params = list(layer.parameters())

    def step() -> None:
        xt.grad = None  # fresh gradients, as in a training step after zero_grad
        for p in params:
            p.grad = None
        layer(xt).backward(dyt)

    return step


def median_times(
    steps: list[Callable[[], None]], budget: float, rounds: int, clock: Callable[[], float]
) -> list[tuple[float, float]]:
    """(median, min) seconds per call of each step, timed in alternating rounds."""
    # warm up, in alternation, for a quarter of the budget: lazy initialisation, caches, and
    # the C allocator's thresholds (for the first few dozen calls, PyTorch's large outputs
    # come from fresh pages, each faulted in on first write: ~2000 faults per call at (4096, 1024))
    end = time.perf_counter() + budget / 4
    while True:
        for step in steps:
            step()
            step()
        if time.perf_counter() >= end:
            break
    start = time.perf_counter()
    steps[0]()
    once = max(time.perf_counter() - start, 1e-6)
    per_round = max(1, int(budget / rounds / len(steps) / once))
    samples: list[list[float]] = [[] for _ in steps]
    for _ in range(rounds):
        for i, step in enumerate(steps):
            for _ in range(per_round):
                t0 = clock()
                step()
                samples[i].append(clock() - t0)
    return [(statistics.median(s), min(s)) for s in samples]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter timing budget")
    parser.add_argument("--budget", type=float, default=None, help="seconds per shape")
    parser.add_argument("--cpu-time", action="store_true", help="CPU time of the thread")
    args = parser.parse_args()
    clock = time.thread_time if args.cpu_time else time.perf_counter
    budget = args.budget if args.budget is not None else (1.0 if args.quick else 4.0)
    if torch is not None:
        torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    print(
        f"numpy {np.__version__}"
        + (f", torch {torch.__version__}" if torch else ", no torch")
        + (", CPU time of the thread" if args.cpu_time else ", wall-clock time")
    )
    header = f"{'shape (float32)':>18} {'bnlessons':>10} {'GB/s':>6}"
    if torch is not None:
        header += f" {'torch':>10} {'ratio':>6}   (min: bnlessons, torch, ratio)"
    print(header)
    for shape in SHAPES:
        x = rng.standard_normal(shape, dtype=np.float32)
        dy = rng.standard_normal(shape, dtype=np.float32)
        steps = [ours(shape, x, dy)]
        if torch is not None:
            steps.append(theirs(shape, x, dy))
        (ours_med, ours_min), *rest = median_times(steps, budget, rounds=5, clock=clock)
        gbs = 5 * x.nbytes / ours_med / 1e9
        line = f"{shape!s:>18} {ours_med * 1e6:8.0f}us {gbs:6.2f}"
        if rest:
            torch_med, torch_min = rest[0]
            line += f" {torch_med * 1e6:8.0f}us {ours_med / torch_med:6.2f}"
            line += f"   ({ours_min * 1e6:.0f}us, {torch_min * 1e6:.0f}us, "
            line += f"{ours_min / torch_min:.2f})"
            ratio, goal = ours_med / torch_med, GOALS[shape]
            line += f"   goal <= {goal:.2f}x: {'met' if ratio <= goal else 'NOT met'}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
