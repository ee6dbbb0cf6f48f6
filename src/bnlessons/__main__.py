"""Command line: ``python -m bnlessons figure1 --steps 50000 --out figure1.png``.

Trains the Figure 1 network without and with BN on the same data and seed, prints the final
test accuracies, and writes the figure and a JSON file of the curves.
"""

from __future__ import annotations

import os

# One BLAS thread unless the caller says otherwise: the matrices of a batch of 60 are too small
# for threads to pay, and on a busy machine spinning BLAS threads slow every step down.
# (Read when numpy is first imported, which happens below.)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from bnlessons.figures import FIGURE_FORMATS, figure1, save_figure
from bnlessons.mnist import MnistData, load_mnist
from bnlessons.training import PERCENTILES, TrainingConfig, TrainingResult, train

__all__ = ["main"]


def _parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The top-level parser and the ``figure1`` sub-parser."""
    parser = argparse.ArgumentParser(
        prog="python -m bnlessons", description="Regenerate results of the lessons."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fig = commands.add_parser(
        "figure1",
        help="train the Figure 1 network with and without BN; draw Figure 1",
        description="Train the 784-100-100-100-10 sigmoid network with and without BN on "
        "MNIST and draw Figure 1 of Ioffe & Szegedy (2015).",
    )
    fig.add_argument("--steps", type=int, default=50_000, help="SGD steps (50000)")
    fig.add_argument(
        "--out", type=Path, required=True, help=f"figure file, one of {', '.join(FIGURE_FORMATS)}"
    )
    fig.add_argument("--json", type=Path, help="curves as JSON (default: OUT with .json)")
    fig.add_argument(
        "--data-dir", type=Path, help="directory of MNIST IDX files (default: bundled 10k subset)"
    )
    fig.add_argument("--init-std", type=float, default=0.1, help="weight std (0.1)")
    fig.add_argument("--learning-rate", type=float, default=0.5, help="SGD rate (0.5)")
    fig.add_argument("--batch-size", type=int, default=60, help="mini-batch (60)")
    fig.add_argument("--eval-every", type=int, default=500, help="steps (500)")
    fig.add_argument("--seed", type=int, default=0, help="seed (0)")
    fig.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return parser, fig


class _ProgressBar:
    """A one-line progress bar redrawn in place on a terminal stream."""

    def __init__(self, total: int, stream: TextIO, *, width: int = 30) -> None:
        self.total, self.stream, self.width = total, stream, width
        self.done = 0
        self.started = time.perf_counter()

    def show(self, done: int, label: str) -> None:
        self.done = done
        filled = self.width * done // self.total
        elapsed = time.perf_counter() - self.started
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r[{bar}] {100 * done // self.total:3d}% {elapsed:6.1f} s  {label}")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def _curves(result: TrainingResult) -> dict[str, object]:
    bands = result.sigmoid_input_percentiles
    return {
        "batch_norm": result.config.batch_norm,
        "seconds": round(result.seconds, 3),
        "steps": result.steps.tolist(),
        "test_accuracy": result.test_accuracy.tolist(),
        "test_loss": result.test_loss.tolist(),
        "sigmoid_input_percentiles": {
            f"{q:g}": bands[:, i].tolist() for i, q in enumerate(PERCENTILES)
        },
    }


def _figure1(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    out: Path = args.out
    json_path: Path = args.json if args.json is not None else out.with_suffix(".json")
    if out.suffix.lower() not in FIGURE_FORMATS:
        suffixes = ", ".join(FIGURE_FORMATS)
        parser.error(f"--out: expected a name ending in one of {suffixes}, got {out.name!r}")
    for flag, path in (("--out", out), ("--json", json_path)):
        if not path.parent.is_dir():
            parser.error(f"{flag}: directory {str(path.parent)!r} does not exist")
    try:
        data: MnistData = load_mnist(args.data_dir)
    except (OSError, ValueError) as err:
        parser.error(f"--data-dir: {err}")
    try:
        configs = [
            TrainingConfig(
                batch_norm=batch_norm,
                steps=args.steps,
                eval_every=args.eval_every,
                init_std=args.init_std,
                learning_rate=args.learning_rate,
                batch_size=args.batch_size,
                seed=args.seed,
            )
            for batch_norm in (False, True)
        ]
    except (TypeError, ValueError) as err:  # "steps: expected ..." -> "argument --steps: ..."
        name, _, reason = str(err).partition(": ")
        parser.error(f"argument --{name.replace('_', '-')}: {reason}")
    if args.batch_size > data.train_images.shape[0]:
        parser.error(
            f"--batch-size {args.batch_size} exceeds the {data.train_images.shape[0]} "
            "training examples"
        )

    evaluations = -(-args.steps // args.eval_every) + 1
    bar = None if args.no_progress else _ProgressBar(2 * evaluations, sys.stderr)
    results: list[TrainingResult] = []
    for config in configs:
        name = "with BN" if config.batch_norm else "without BN"
        offset = len(results) * evaluations
        progress: Callable[[int, float], None] | None = None
        if bar is not None:
            progress = _make_progress(bar, offset, name, args.eval_every, args.steps)
        results.append(train(config, data, progress=progress))
    if bar is not None:
        bar.close()

    without_bn, with_bn = results
    save_figure(figure1(without_bn, with_bn), out)
    record = {
        "settings": {
            "steps": args.steps,
            "batch_size": args.batch_size,
            "init_std": args.init_std,
            "learning_rate": args.learning_rate,
            "eval_every": args.eval_every,
            "seed": args.seed,
            "hidden_sizes": list(configs[0].hidden_sizes),
            "tracked_unit": configs[0].tracked_unit,
            "train_examples": int(data.train_images.shape[0]),
            "test_examples": int(data.test_images.shape[0]),
            "data": str(args.data_dir) if args.data_dir is not None else "bundled",
        },
        "without_bn": _curves(without_bn),
        "with_bn": _curves(with_bn),
    }
    json_path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    for name, result in (("without BN", without_bn), ("with BN", with_bn)):
        print(
            f"final test accuracy {name:10s}: {result.final_accuracy:.4f} "
            f"({result.seconds:.1f} s for {args.steps} steps)"
        )
    print(f"wrote {out} and {json_path}")
    return 0


def _make_progress(
    bar: _ProgressBar, offset: int, name: str, every: int, steps: int
) -> Callable[[int, float], None]:
    def progress(step: int, accuracy: float) -> None:
        index = -(-step // every)
        bar.show(offset + index + 1, f"{name}: step {step}/{steps}, test acc {accuracy:.3f}")

    return progress


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (bad arguments exit with status 2)."""
    parser, figure1_parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "figure1":
        return _figure1(args, figure1_parser)
    parser.error(f"unknown command {args.command!r}")


if __name__ == "__main__":
    sys.exit(main())
