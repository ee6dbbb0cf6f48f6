r"""Measures on the curves a training run records: time to an accuracy, drift of a distribution.

:func:`bnlessons.training.train` records, every few steps, the test accuracy and the 15th, 50th and
85th percentiles of the input of one sigmoid (Figure 1 of Ioffe & Szegedy, 2015). Two numbers
summarize what the paper reads off those curves by eye:

* :func:`steps_to_accuracy`: the first recorded step at which the test accuracy reaches a
  target, e.g. the other network's final accuracy ("trains faster");
* :func:`percentile_drift`: how far each percentile moves within a window of training, in units
  of the width of the distribution at the end of the window ("the distribution is more
  stable").
"""

from __future__ import annotations

import math

import numpy as np

from bnlessons import _validate as _v
from bnlessons._typing import Float64Array
from bnlessons.training import PERCENTILES, TrainingResult

__all__ = ["percentile_drift", "steps_to_accuracy"]


def steps_to_accuracy(
    result: TrainingResult, target: float, *, end_step: int | None = None
) -> int | None:
    """Return the first recorded step at which the test accuracy is at least ``target``.

    Only the evaluated steps are looked at (every ``config.eval_every`` steps), so the answer
    is exact up to that spacing. With ``end_step``, only steps up to it count, so the first
    ``end_step`` steps of a long run answer as a run of ``end_step`` steps would.

    Parameters
    ----------
    result : TrainingResult
        A run of :func:`bnlessons.training.train`.
    target : float
        Accuracy to reach, in [0, 1].
    end_step : int or None
        Last step to look at; None means the whole run.

    Returns
    -------
    int or None
        The step, or None if the run never reaches ``target``.

    Examples
    --------
    >>> from bnlessons.training import TrainingConfig, train
    >>> from bnlessons.mnist import load_mnist
    >>> run = train(TrainingConfig(steps=200, eval_every=100), load_mnist())
    >>> run.steps.tolist()
    [0, 100, 200]
    >>> steps_to_accuracy(run, 0.0), steps_to_accuracy(run, 1.0)
    (0, None)
    >>> steps_to_accuracy(run, float(run.test_accuracy[2]), end_step=100) is None
    True
    """
    _v.instance(result, TrainingResult, "result")
    target = _v.probability(target, "target")
    if end_step is not None:
        _v.integer(end_step, "end_step")
    reached = np.flatnonzero(result.test_accuracy >= target)
    if end_step is not None:
        reached = reached[result.steps[reached] <= end_step]
    return int(result.steps[reached[0]]) if reached.size else None


def percentile_drift(
    result: TrainingResult, *, start_step: int = 0, end_step: int | None = None
) -> Float64Array:
    r"""Return how far each recorded percentile moves in a window, in units of the band's width.

    With :math:`P_q(t)` the :math:`q`-th percentile of the tracked sigmoid input at the
    recorded step :math:`t` and the window :math:`a \le t \le b` (:math:`b` the last recorded
    step in it),

    .. math::

        D_q(a, b) = \frac{\max_{a \le t \le b} P_q(t) - \min_{a \le t \le b} P_q(t)}
                         {P_{85}(b) - P_{15}(b)}.

    The numerator is the range the percentile sweeps; the denominator is the width of the
    central 70% of the distribution at the end of the window (for the default window, the
    final distribution). :math:`D_q = 0` means the percentile never moved, :math:`D_q = 1`
    that it swept as far as the band is wide. Because the yardstick is taken at :math:`b`, a
    run cut at :math:`b` gives the same :math:`D_q(a, b)` as a longer run. Changing the
    tracked input to :math:`c\,u + d` with :math:`c > 0` leaves :math:`D_q` unchanged, so a
    network whose sigmoid inputs are simply larger does not count as drifting more.

    Parameters
    ----------
    result : TrainingResult
        A run of :func:`bnlessons.training.train`.
    start_step, end_step : int
        The window :math:`[a, b]` of recorded steps; ``end_step=None`` means the last one.

    Returns
    -------
    NDArray[float64], shape (3,)
        :math:`D_{15}, D_{50}, D_{85}`, in the order of :data:`bnlessons.training.PERCENTILES`.

    Raises
    ------
    ValueError
        If the window holds no recorded step, or the band at its end has zero width.

    Examples
    --------
    >>> from bnlessons.training import TrainingConfig, train
    >>> from bnlessons.mnist import load_mnist
    >>> run = train(TrainingConfig(steps=200, eval_every=100), load_mnist())
    >>> drift = percentile_drift(run, start_step=100)
    >>> drift.shape, bool(np.all(drift >= 0))
    ((3,), True)
    """
    _v.instance(result, TrainingResult, "result")
    _v.integer(start_step, "start_step")
    if end_step is not None:
        _v.integer(end_step, "end_step")
    steps = result.steps
    last = int(steps[-1])
    end = last if end_step is None else end_step
    if start_step > end:
        raise ValueError(
            f"start_step: expected at most end_step={end}, got start_step={start_step}"
        )
    window = (steps >= start_step) & (steps <= end)
    if not window.any():
        raise ValueError(
            f"start_step, end_step: the window [{start_step}, {end}] holds no recorded step "
            f"(recorded: {int(steps[0])} to {last})"
        )
    bands = np.asarray(result.sigmoid_input_percentiles, dtype=np.float64)
    low, high = PERCENTILES.index(15.0), PERCENTILES.index(85.0)
    inside = bands[window]
    width = float(inside[-1, high] - inside[-1, low])
    if not (width > 0 and math.isfinite(width)):
        raise ValueError(
            f"result: expected a 15-85 band of positive width at step "
            f"{int(steps[window][-1])}, got {width}"
        )
    drift: Float64Array = (inside.max(axis=0) - inside.min(axis=0)) / width
    return drift
