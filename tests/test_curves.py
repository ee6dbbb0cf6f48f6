"""Tests of bnlessons.curves on hand-made curves whose answers are known in closed form."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from bnlessons.curves import percentile_drift, steps_to_accuracy
from bnlessons.mlp import SigmoidMLP
from bnlessons.training import TrainingConfig, TrainingResult


def make_result(
    steps: list[int], accuracy: list[float], bands: NDArray[np.float64] | None = None
) -> TrainingResult:
    """A TrainingResult with the given curves (the network is a placeholder)."""
    n = len(steps)
    if bands is None:
        bands = np.tile([-1.0, 0.0, 1.0], (n, 1))
    net = SigmoidMLP((2, 2, 2), batch_norm=False, init_std=1.0, rng=np.random.default_rng(0))
    return TrainingResult(
        config=TrainingConfig(steps=max(steps[-1], 1), eval_every=1, hidden_sizes=(2,)),
        steps=np.array(steps, dtype=np.int64),
        test_accuracy=np.array(accuracy, dtype=np.float64),
        test_loss=np.zeros(n),
        sigmoid_input_percentiles=np.asarray(bands, dtype=np.float64),
        network=net,
        seconds=0.0,
    )


def test_steps_to_accuracy_first_crossing() -> None:
    run = make_result([0, 10, 20, 30, 40], [0.1, 0.5, 0.9, 0.8, 0.95])
    assert steps_to_accuracy(run, 0.9) == 20  # first time, though it dips afterwards
    assert steps_to_accuracy(run, 0.91) == 40
    assert steps_to_accuracy(run, 0.1) == 0
    assert steps_to_accuracy(run, 0.96) is None
    assert steps_to_accuracy(run, 0.91, end_step=30) is None  # as a run cut at step 30
    assert steps_to_accuracy(run, 0.9, end_step=20) == 20


def test_steps_to_accuracy_bad_arguments() -> None:
    run = make_result([0, 10], [0.1, 0.5])
    with pytest.raises(ValueError, match="target"):
        steps_to_accuracy(run, 1.5)
    with pytest.raises(TypeError, match="target"):
        steps_to_accuracy(run, "0.5")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="end_step"):
        steps_to_accuracy(run, 0.5, end_step=2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="result"):
        steps_to_accuracy(np.zeros(3), 0.5)  # type: ignore[arg-type]


def test_percentile_drift_of_a_band_sliding_at_constant_width() -> None:
    # The band [m - 1, m, m + 1] slides from m = 0 to m = 3 and back to m = 2: each percentile
    # sweeps a range of 3, the final width is 2, so every D_q is 3/2 over the whole run.
    centres = np.array([0.0, 1.0, 3.0, 2.0])
    bands = centres[:, None] + np.array([-1.0, 0.0, 1.0])
    run = make_result([0, 5, 10, 15], [0.0] * 4, bands)
    np.testing.assert_allclose(percentile_drift(run), [1.5, 1.5, 1.5], rtol=1e-15)
    # Window [10, 15]: the centre moves from 3 to 2, range 1, width 2.
    np.testing.assert_allclose(percentile_drift(run, start_step=10), [0.5] * 3, rtol=1e-15)
    # Window [5, 5]: a single record has not moved.
    np.testing.assert_allclose(percentile_drift(run, start_step=5, end_step=5), [0.0] * 3)


def test_percentile_drift_yardstick_is_the_band_at_the_window_end() -> None:
    # Median fixed at 0, half-width 1, then 3, then 2: window [0, 5] sweeps 2 at the outer
    # percentiles and ends with width 6; a run cut at step 5 gives the same number.
    bands = np.array([[-1.0, 0.0, 1.0], [-3.0, 0.0, 3.0], [-2.0, 0.0, 2.0]])
    run = make_result([0, 5, 10], [0.0] * 3, bands)
    cut = make_result([0, 5], [0.0] * 2, bands[:2])
    expected = [2.0 / 6.0, 0.0, 2.0 / 6.0]
    np.testing.assert_allclose(percentile_drift(run, end_step=5), expected, rtol=1e-15)
    np.testing.assert_allclose(percentile_drift(cut), expected, rtol=1e-15)
    np.testing.assert_allclose(percentile_drift(run), [0.5, 0.0, 0.5], rtol=1e-15)


def test_percentile_drift_of_a_widening_band() -> None:
    # Median fixed at 0, band widening from +-1 to +-2: the outer percentiles move by 1, the
    # median not at all; width at the end 4.
    bands = np.array([[-1.0, 0.0, 1.0], [-1.5, 0.0, 1.5], [-2.0, 0.0, 2.0]])
    run = make_result([0, 1, 2], [0.0] * 3, bands)
    np.testing.assert_allclose(percentile_drift(run), [0.25, 0.0, 0.25], rtol=1e-15)


def test_percentile_drift_is_invariant_under_increasing_affine_maps() -> None:
    rng = np.random.default_rng(0)
    bands = np.sort(rng.normal(size=(12, 3)), axis=1)
    bands[-1] = [-1.0, 0.2, 1.3]
    run = make_result(list(range(0, 120, 10)), [0.0] * 12, bands)
    moved = make_result(list(range(0, 120, 10)), [0.0] * 12, 7.5 * bands - 3.0)
    np.testing.assert_allclose(
        percentile_drift(moved, start_step=20), percentile_drift(run, start_step=20), rtol=1e-12
    )


def test_percentile_drift_bad_windows_and_degenerate_band() -> None:
    run = make_result([0, 10, 20], [0.0] * 3)
    with pytest.raises(ValueError, match="no recorded step"):
        percentile_drift(run, start_step=11, end_step=19)
    with pytest.raises(ValueError, match="start_step"):
        percentile_drift(run, start_step=20, end_step=10)
    with pytest.raises(TypeError, match="start_step"):
        percentile_drift(run, start_step=1.5)  # type: ignore[arg-type]
    flat = make_result([0, 1], [0.0] * 2, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="width"):
        percentile_drift(flat)
