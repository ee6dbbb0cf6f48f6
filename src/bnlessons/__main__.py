"""Command line: ``python -m bnlessons figure1 --out figure1.png``.

Trains the Figure 1 network without and with BN on the same data and seed, prints the final
test accuracies, and writes the figure and a JSON file of the curves. The defaults are the
preset :data:`bnlessons.training.FIGURE1` (initial scale 1, the paper's 50,000 steps); each
option overrides one field of it. Lesson 5's main figure is at ``--init-std 0.1``, the paper's
"small" initial weights; with ``--data-dir`` on full MNIST (or Fashion-MNIST) files the command
trains the paper's full setting, one seed per network. The JSON records the
configuration the two runs share under ``"config"`` (the fields of
:class:`~bnlessons.training.TrainingConfig` by name; the runs differ only in ``batch_norm``,
recorded with each run) and, per run, the curves the figure draws.
"""

from __future__ import annotations

import os

# One BLAS thread unless the caller says otherwise: the matrices of a batch of 60 are too small
# for threads to pay, and on a busy machine spinning BLAS threads slow every step down.
# (Read when numpy is first imported, which happens below.)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from bnlessons.figures import FIGURE_FORMATS, figure1, save_figure
from bnlessons.mnist import MnistData, load_mnist
from bnlessons.training import (
    FIGURE1,
    PERCENTILES,
    TrainingConfig,
    TrainingResult,
    train,
    with_step0_in_training_mode,
)

__all__ = ["main"]


#: The fields of FIGURE1 that ``figure1`` takes as options (``--init-std`` sets ``init_std``).
_TUNABLE: tuple[tuple[str, type, str], ...] = (
    ("steps", int, "SGD steps"),
    ("init_std", float, "std of the initial weights"),
    ("learning_rate", float, "SGD step size"),
    ("batch_size", int, "mini-batch size"),
    ("eval_every", int, "steps between evaluations"),
    ("seed", int, "seed of the weights and the batch order"),
)


def _parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The top-level parser and the ``figure1`` sub-parser (defaults: the preset FIGURE1)."""
    parser = argparse.ArgumentParser(
        prog="python -m bnlessons", description="Regenerate results of the lessons."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fig = commands.add_parser(
        "figure1",
        help="train the Figure 1 network with and without BN; draw Figure 1",
        description="Train the 784-100-100-100-10 sigmoid network with and without BN on "
        "MNIST and draw Figure 1 of Ioffe & Szegedy (2015). The defaults are the preset "
        "bnlessons.training.FIGURE1; lesson 5's main figure uses --init-std 0.1.",
    )
    fig.add_argument(
        "--out", type=Path, required=True, help=f"figure file, one of {', '.join(FIGURE_FORMATS)}"
    )
    fig.add_argument("--json", type=Path, help="curves as JSON (default: OUT with .json)")
    fig.add_argument(
        "--data-dir", type=Path, help="directory of MNIST IDX files (default: bundled 10k subset)"
    )
    for name, kind, help_text in _TUNABLE:
        default = getattr(FIGURE1, name)
        flag = "--" + name.replace("_", "-")
        fig.add_argument(flag, type=kind, default=default, help=f"{help_text} ({default})")
    fig.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return parser, fig


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


def _config_record(config: TrainingConfig) -> dict[str, object]:
    """The fields of ``config`` by name, as JSON values (less ``batch_norm``)."""
    record: dict[str, object] = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.name == "batch_norm":
            continue
        if field.name == "dtype":
            value = np.dtype(value).name
        elif isinstance(value, tuple):
            value = list(value)
        record[field.name] = value
    return record


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
        config = dataclasses.replace(
            FIGURE1, **{name: getattr(args, name) for name, *_ in _TUNABLE}
        )
    except (TypeError, ValueError) as err:  # "steps: expected ..." -> "argument --steps: ..."
        name, _, reason = str(err).partition(": ")
        parser.error(f"argument --{name.replace('_', '-')}: {reason}")
    if config.batch_size > data.train_images.shape[0]:
        parser.error(
            f"--batch-size {config.batch_size} exceeds the {data.train_images.shape[0]} "
            "training examples"
        )

    configs = [dataclasses.replace(config, batch_norm=b) for b in (False, True)]
    results: list[TrainingResult] = []
    total = len(configs) * len(config.evaluation_steps)
    with tqdm(total=total, unit="eval", file=sys.stderr, disable=args.no_progress) as bar:
        for run in configs:
            results.append(train(run, data, progress=_progress(bar, run)))
    without_bn, with_bn = (with_step0_in_training_mode(r, data) for r in results)
    save_figure(figure1(without_bn, with_bn), out)
    record = {
        "config": _config_record(config),
        "data": {
            "source": str(args.data_dir) if args.data_dir is not None else "bundled",
            "train_examples": int(data.train_images.shape[0]),
            "test_examples": int(data.test_images.shape[0]),
        },
        "without_bn": _curves(without_bn),
        "with_bn": _curves(with_bn),
    }
    json_path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    for name, result in (("without BN", without_bn), ("with BN", with_bn)):
        print(
            f"final test accuracy {name:10s}: {result.final_accuracy:.4f} "
            f"({result.seconds:.1f} s for {config.steps} steps)"
        )
    print(f"wrote {out} and {json_path}")
    return 0


def _progress(bar: tqdm[Any], config: TrainingConfig) -> Callable[[int, float], None]:
    """A ``train`` progress callback that moves ``bar`` one evaluation on."""
    name = "with BN" if config.batch_norm else "without BN"

    def progress(step: int, accuracy: float) -> None:
        bar.set_postfix_str(f"{name}: step {step}/{config.steps}, test acc {accuracy:.3f}")
        bar.update(1)

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
