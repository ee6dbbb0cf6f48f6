"""Time one SGD step of the Figure 1 network (784-100-100-100-10, batch 60), numpy vs PyTorch.

Prints the median time of one step with and without BN, float32, and, when PyTorch is
importable, the same network in PyTorch on the CPU (``nn.Linear``, ``nn.BatchNorm1d``,
sigmoid, ``cross_entropy``, ``torch.optim.SGD``) with the same thread count, and the ratio
numpy / torch. It also times the step's matrix products alone ("matmul floor": the eleven
products of the layers, at the step's shapes and layouts), the time no step in numpy can beat,
and prints the step's ratio to it. Steps run in blocks; the blocks of every variant alternate
so that all see the same machine load, and the medians over blocks are reported. The step
with BN has two goals (issue 10): at most 0.6x PyTorch's time and at most 1.6x the floor.

``--cpu-time`` times the CPU time of the thread instead of the wall-clock time (with one
thread only): on a shared machine it leaves out the time other processes hold the CPU.

Usage: ``python benchmarks/bench_training.py [--threads N] [--repeats R] [--block B]
[--cpu-time]``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from collections.abc import Callable


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--threads", type=int, default=1, help="BLAS / torch threads (1)")
    parser.add_argument("--repeats", type=int, default=15, help="timed blocks per variant (15)")
    parser.add_argument("--block", type=int, default=200, help="steps per timed block (200)")
    parser.add_argument("--cpu-time", action="store_true", help="CPU time of the thread")
    args = parser.parse_args()
    if args.threads < 1 or args.repeats < 1 or args.block < 1:
        parser.error("--threads, --repeats and --block must be >= 1")
    if args.cpu_time and args.threads != 1:
        parser.error("--cpu-time counts one thread: use it with --threads 1")
    return args


ARGS = _parse()
# Measured here, kept out of the library (timings change with the machine):
# - SigmoidMLP.backward takes a layer's bias gradient, the column sums of d, as ones^T d: one
#   BLAS call, several times faster than np.sum(d, axis=0) at batch 60.

# The BLAS thread pool is sized when numpy is first imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(ARGS.threads)

import numpy as np  # noqa: E402

from bnlessons.mlp import SigmoidMLP  # noqa: E402
from bnlessons.mnist import images_to_features, load_mnist  # noqa: E402
from bnlessons.training import evaluate  # noqa: E402

SIZES = (784, 100, 100, 100, 10)
BATCH = 60
RATE = 0.5
INIT_STD = 0.1
# Goals of issue 10 for the step with BN: at most this many times PyTorch's step, and at most
# this many times the step's own matrix products ("matmul floor"), measured in the same run.
TORCH_GOAL = 0.6
FLOOR_GOAL = 1.6


def numpy_step(batch_norm: bool, x: np.ndarray, y: np.ndarray) -> Callable[[int], None]:
    net = SigmoidMLP(
        SIZES,
        batch_norm=batch_norm,
        init_std=INIT_STD,
        rng=np.random.default_rng(0),
        dtype=np.float32,
    )
    batches = len(x)

    def run(steps: int) -> None:
        for i in range(steps):
            k = i % batches
            net.sgd_step(x[k], y[k], learning_rate=RATE)

    return run


def torch_step(batch_norm: bool, x: np.ndarray, y: np.ndarray) -> Callable[[int], None] | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(ARGS.threads)
    torch.manual_seed(0)
    layers: list[torch.nn.Module] = []
    for fan_in, fan_out in itertools.pairwise(SIZES[:-1]):
        layers.append(torch.nn.Linear(fan_in, fan_out, bias=not batch_norm))
        if batch_norm:
            layers.append(torch.nn.BatchNorm1d(fan_out))
        layers.append(torch.nn.Sigmoid())
    layers.append(torch.nn.Linear(SIZES[-2], SIZES[-1]))
    net = torch.nn.Sequential(*layers)
    with torch.no_grad():
        for p in net.parameters():
            if p.ndim == 2:
                p.normal_(0.0, INIT_STD)
    opt = torch.optim.SGD(net.parameters(), lr=RATE)
    xs = torch.from_numpy(x)
    ys = torch.from_numpy(y.astype(np.int64))
    batches = len(x)

    def run(steps: int) -> None:
        for i in range(steps):
            k = i % batches
            opt.zero_grad(set_to_none=False)
            loss = torch.nn.functional.cross_entropy(net(xs[k]), ys[k])
            loss.backward()
            opt.step()

    return run


def matmul_floor(x: np.ndarray) -> Callable[[int], None]:
    """The step's matrix products alone, at its shapes and layouts: the time no step can beat.

    Forward ``h @ W`` for every layer (the last one transposed, ``W.T @ h.T``); backward
    ``h.T @ d`` (weight gradients) for every layer and ``d @ W.T`` for every layer but the
    first, as ``SigmoidMLP.sgd_step`` computes them at batch 60. Like the timed steps, step
    ``i`` reads the batch ``x[i % len(x)]`` (the batches do not all fit in the CPU cache:
    reading the same one every time would make the floor lower than any step can reach).
    """
    rng = np.random.default_rng(0)
    weights = [
        rng.standard_normal((m, n), dtype=np.float32) * INIT_STD
        for m, n in itertools.pairwise(SIZES)
    ]
    grads = [np.empty_like(w) for w in weights]
    inputs = [x[0]] + [rng.random((BATCH, n), dtype=np.float32) for n in SIZES[1:-1]]
    batches = len(x)
    outputs = [np.empty((BATCH, n), np.float32) for n in SIZES[1:]]
    deltas = [rng.standard_normal((BATCH, n), dtype=np.float32) for n in SIZES[1:]]
    back = [np.empty((BATCH, n), np.float32) for n in SIZES[1:-1]]

    # The step keeps the logits and their gradient transposed, (classes, batch): so here.
    outputs[-1] = np.empty((SIZES[-1], BATCH), np.float32)
    deltas[-1] = np.ascontiguousarray(deltas[-1].T).T

    def run(steps: int) -> None:
        for step in range(steps):
            inputs[0] = x[step % batches]
            for h, w, z in zip(inputs[:-1], weights[:-1], outputs[:-1], strict=True):
                np.matmul(h, w, out=z)
            np.matmul(weights[-1].T, inputs[-1].T, out=outputs[-1])
            for i in range(len(weights) - 1, -1, -1):
                np.matmul(inputs[i].T, deltas[i], out=grads[i])
                if i > 0:
                    np.matmul(deltas[i], weights[i].T, out=back[i - 1])

    return run


def verdict(value: float, goal: float) -> str:
    return f"goal <= {goal:.2f}x: {'met' if value <= goal else 'NOT met'}"


def main() -> None:
    data = load_mnist()
    batches = 20
    x = images_to_features(data.train_images[: batches * BATCH]).reshape(batches, BATCH, -1)
    y = data.train_labels[: batches * BATCH].astype(np.intp).reshape(batches, BATCH)
    variants: dict[str, Callable[[int], None]] = {}
    for batch_norm in (False, True):
        tag = "BN" if batch_norm else "no BN"
        variants[f"numpy {tag}"] = numpy_step(batch_norm, x, y)
        reference = torch_step(batch_norm, x, y)
        if reference is not None:
            variants[f"torch {tag}"] = reference
    variants["matmul floor"] = matmul_floor(x)
    clock = time.thread_time if ARGS.cpu_time else time.perf_counter
    for run in variants.values():
        run(ARGS.block)  # warm up: allocate buffers, fault pages in
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(ARGS.repeats):
        for name, run in variants.items():
            start = clock()
            run(ARGS.block)
            times[name].append((clock() - start) / ARGS.block)
    median = {name: float(np.median(t)) for name, t in times.items()}
    print(
        f"one SGD step, 784-100-100-100-10, batch {BATCH}, float32, {ARGS.threads} thread(s), "
        f"median of {ARGS.repeats} blocks of {ARGS.block} steps, "
        + ("CPU time of the thread" if ARGS.cpu_time else "wall-clock time")
    )
    for name, seconds in median.items():
        print(f"  {name:12s} {seconds * 1e6:8.1f} us")
    for tag in ("no BN", "BN"):
        ratio = median[f"numpy {tag}"] / median["matmul floor"]
        goal = f"   {verdict(ratio, FLOOR_GOAL)}" if tag == "BN" else ""
        print(f"  ratio numpy/matmul floor, {tag:5s}: {ratio:.2f}x{goal}")
    for tag in ("no BN", "BN"):
        if f"torch {tag}" in median:
            ratio = median[f"numpy {tag}"] / median[f"torch {tag}"]
            goal = f"   {verdict(ratio, TORCH_GOAL)}" if tag == "BN" else ""
            print(f"  ratio numpy/torch, {tag:5s}: {ratio:.2f}x{goal}")
    if not any(name.startswith("torch") for name in median):
        print("  (PyTorch not importable: no ratio)", file=sys.stderr)
    per_step = median["numpy BN"] + median["numpy no BN"]
    print(f"  estimated 2 x 50,000 steps (no eval): {per_step * 50_000:.1f} s")

    # The cost of one evaluation (test accuracy + percentiles), BN network in eval mode.
    x_test = images_to_features(data.test_images)
    y_test = data.test_labels.astype(np.intp)
    net = SigmoidMLP(
        SIZES, batch_norm=True, init_std=INIT_STD, rng=np.random.default_rng(0), dtype=np.float32
    )
    evaluate(net, x_test, y_test, unit=0)
    spent = []
    for _ in range(ARGS.repeats):
        start = time.perf_counter()
        evaluate(net, x_test, y_test, unit=0)
        spent.append(time.perf_counter() - start)
    once = float(np.median(spent))
    print(
        f"  one evaluation on {len(y_test)} test digits (BN net): {once * 1e3:.1f} ms, "
        f"i.e. {once / 500 / median['numpy BN']:.1%} of the step time when done every 500 steps"
    )


if __name__ == "__main__":
    main()
