"""Figure 1 of Ioffe & Szegedy (2015), drawn from our own training runs.

(a) test accuracy against training steps, with and without BN; (b, c) the 15th, 50th and 85th
percentiles of the input to one sigmoid of the last hidden layer over the test set, without BN
(b) and with BN (c), on a shared vertical scale so that the drift can be compared by eye.

Figures are :class:`matplotlib.figure.Figure` objects built without ``pyplot`` (no global
state); :func:`save_figure` writes them byte-for-byte reproducibly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from bnlessons import _validate as _v
from bnlessons.training import PERCENTILES, TrainingResult

__all__ = ["FIGURE_FORMATS", "Runs", "figure1", "save_figure"]

#: File suffixes :func:`save_figure` writes.
FIGURE_FORMATS = (".png", ".svg", ".pdf")

#: One run, or several runs of one network (for example the same config with other seeds).
Runs = TrainingResult | Sequence[TrainingResult]

_WITHOUT_STYLE = {"color": "#1f77b4", "linestyle": "--"}
_WITH_STYLE = {"color": "#d62728", "linestyle": "-"}


def _as_runs(runs: Runs, name: str, batch_norm: bool) -> list[TrainingResult]:
    """``runs`` as a non-empty list of runs with ``batch_norm`` evaluated at the same steps."""
    if isinstance(runs, TrainingResult):
        group = [runs]
    else:
        group = list(_v.sequence(runs, name, "a TrainingResult or a sequence of them"))
        if not group:
            raise ValueError(f"{name}: expected at least one run, got an empty sequence")
    for i, result in enumerate(group):
        label = name if isinstance(runs, TrainingResult) else f"{name}[{i}]"
        _v.instance(result, TrainingResult, label)
        if result.config.batch_norm is not batch_norm:
            raise ValueError(
                f"{label}: expected a run with batch_norm={batch_norm}, "
                f"got batch_norm={result.config.batch_norm}"
            )
        if not np.array_equal(result.steps, group[0].steps):
            raise ValueError(
                f"{label}: expected the evaluation steps of {name}[0] "
                f"({len(group[0].steps)} steps to {int(group[0].steps[-1])}), "
                f"got {len(result.steps)} steps to {int(result.steps[-1])}"
            )
    return group


def figure1(without_bn: Runs, with_bn: Runs) -> Figure:
    """Return Figure 1 (a), (b), (c) laid out in a row as in the paper.

    Parameters
    ----------
    without_bn, with_bn : TrainingResult or sequence of TrainingResult
        Runs of :func:`bnlessons.training.train` with ``batch_norm=False`` and ``True``. Given
        several runs of a network (evaluated at the same steps, e.g. one per seed), panel (a)
        draws the median of their test accuracies at each step and shades the range from the
        lowest to the highest; panels (b) and (c) show the first run of each.

    Returns
    -------
    matplotlib.figure.Figure
        Three axes: accuracy curves, percentile bands without BN, percentile bands with BN.

    Raises
    ------
    TypeError, ValueError
        If a run is not a :class:`~bnlessons.training.TrainingResult`, has the other
        ``batch_norm``, or is evaluated at other steps than the first of its group.

    Examples
    --------
    >>> from bnlessons.training import TrainingConfig, train
    >>> from bnlessons.mnist import load_mnist
    >>> data = load_mnist()
    >>> runs = [train(TrainingConfig(batch_norm=b, steps=20, eval_every=10), data)
    ...         for b in (False, True)]
    >>> [ax.get_title() for ax in figure1(*runs).axes]
    ['(a)', '(b) Without BN', '(c) With BN']
    """
    groups = (_as_runs(without_bn, "without_bn", False), _as_runs(with_bn, "with_bn", True))
    fig = Figure(figsize=(10.0, 3.0), layout="constrained")
    ax_a, ax_b, ax_c = fig.subplots(1, 3)
    ax_c.sharey(ax_b)

    low = 0.9
    for group, label, style in zip(
        groups, ("Without BN", "With BN"), (_WITHOUT_STYLE, _WITH_STYLE), strict=True
    ):
        steps = group[0].steps
        accuracy = np.stack([result.test_accuracy for result in group])
        ax_a.plot(steps, np.median(accuracy, axis=0), label=label, **style)
        if len(group) > 1:
            ax_a.fill_between(
                steps,
                accuracy.min(axis=0),
                accuracy.max(axis=0),
                color=style["color"],
                alpha=0.2,
                linewidth=0,
            )
        low = min(low, float(accuracy[:, 1:].min(initial=1.0)))
    ax_a.set_ylim(max(0.0, low - 0.02), 1.0)
    ax_a.set_title("(a)")
    ax_a.set_ylabel("test accuracy")
    ax_a.legend(loc="lower right", frameon=False)

    for ax, result, title, style in (
        (ax_b, groups[0][0], "(b) Without BN", _WITHOUT_STYLE),
        (ax_c, groups[1][0], "(c) With BN", _WITH_STYLE),
    ):
        bands = result.sigmoid_input_percentiles
        for column, q in enumerate(PERCENTILES):
            ax.plot(
                result.steps,
                bands[:, column],
                color=style["color"],
                linewidth=1.6 if q == 50.0 else 0.9,
                label=f"{q:g}th percentile",
            )
        ax.set_title(title)
        ax.set_ylabel("sigmoid input: " + ", ".join(f"{q:g}" for q in PERCENTILES) + "th pct.")

    for ax in (ax_a, ax_b, ax_c):
        ax.set_xlabel("training steps")
        ax.xaxis.set_major_formatter(FuncFormatter(_thousands))
        ax.grid(True, linewidth=0.4, alpha=0.5)
    return fig


def _thousands(value: float, _position: int | None) -> str:
    """Tick label as in the paper: 20000 -> '20K'."""
    return f"{value / 1000:g}K" if value else "0"


def save_figure(fig: Figure, path: str | Path, *, dpi: int = 150) -> Path:
    """Write ``fig`` to ``path`` (PNG, SVG or PDF, from the suffix) with no timestamp in it.

    The files carry no creation date or software version and SVG ids use a fixed salt, so the
    same figure gives the same bytes on every run.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> fig = Figure()
    >>> _ = fig.subplots().plot([0, 1], [1, 0])
    >>> p = save_figure(fig, pathlib.Path(tempfile.mkdtemp()) / "line.png")
    >>> p.read_bytes()[:4]
    b'\\x89PNG'
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FIGURE_FORMATS:
        raise ValueError(
            _v.expected("path", f"a name ending in one of {FIGURE_FORMATS}", str(path))
        )
    blank = {
        ".png": ("Software",),
        ".svg": ("Date", "Creator"),
        ".pdf": ("CreationDate", "ModDate", "Creator", "Producer"),
    }[suffix]
    metadata: dict[str, str | None] = dict.fromkeys(blank)
    with mpl.rc_context({"svg.hashsalt": "bnlessons"}):
        fig.savefig(path, dpi=dpi, metadata=metadata)
    return path
