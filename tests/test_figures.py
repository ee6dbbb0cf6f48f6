"""Tests of bnlessons.figures: what is drawn is the data given, and the files are reproducible."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from bnlessons.figures import figure1, save_figure
from bnlessons.mlp import SigmoidMLP
from bnlessons.training import TrainingConfig, TrainingResult


def fake_result(batch_norm: bool, seed: int) -> TrainingResult:
    """A TrainingResult with made-up curves (drawing does not need a real run)."""
    rng = np.random.default_rng(seed)
    steps = np.arange(0, 5001, 500, dtype=np.int64)
    accuracy = np.clip(0.5 + 0.45 * (1 - np.exp(-steps / 1500)) + rng.normal(0, 0.01, 11), 0, 1)
    middle = np.cumsum(rng.normal(0, 0.2, 11))
    bands = np.stack([middle - 1, middle, middle + 1], axis=1)
    net = SigmoidMLP((2, 2, 2), batch_norm=batch_norm, init_std=1.0, rng=rng)
    return TrainingResult(
        config=TrainingConfig(batch_norm=batch_norm, steps=5000),
        steps=steps,
        test_accuracy=accuracy,
        test_loss=1 - accuracy,
        sigmoid_input_percentiles=bands,
        network=net,
        seconds=1.0,
    )


@pytest.fixture
def runs() -> tuple[TrainingResult, TrainingResult]:
    return fake_result(False, 1), fake_result(True, 2)


def test_layout_and_data(runs: tuple[TrainingResult, TrainingResult]) -> None:
    without_bn, with_bn = runs
    fig = figure1(without_bn, with_bn)
    ax_a, ax_b, ax_c = fig.axes
    assert [ax.get_title() for ax in fig.axes] == ["(a)", "(b) Without BN", "(c) With BN"]
    # Panels side by side, left to right.
    lefts = [ax.get_position().x0 for ax in fig.axes]
    assert lefts == sorted(lefts)
    # (a): one accuracy curve per run, labelled.
    lines = ax_a.get_lines()
    assert [line.get_label() for line in lines] == ["Without BN", "With BN"]
    for line, result in zip(lines, runs, strict=True):
        np.testing.assert_array_equal(line.get_xdata(), result.steps)
        np.testing.assert_array_equal(line.get_ydata(), result.test_accuracy)
    # (b), (c): the three percentiles of each run, on one shared vertical scale.
    for ax, result in ((ax_b, without_bn), (ax_c, with_bn)):
        curves = ax.get_lines()
        assert len(curves) == 3
        for column, line in enumerate(curves):
            np.testing.assert_array_equal(
                line.get_ydata(), result.sigmoid_input_percentiles[:, column]
            )
    assert ax_b.get_ylim() == ax_c.get_ylim()
    low, high = ax_b.get_ylim()
    every = np.concatenate(
        [without_bn.sigmoid_input_percentiles, with_bn.sigmoid_input_percentiles]
    )
    assert low <= every.min() and every.max() <= high


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_saved_files_are_reproducible(
    runs: tuple[TrainingResult, TrainingResult], tmp_path: Path, suffix: str
) -> None:
    first = save_figure(figure1(*runs), tmp_path / f"a{suffix}", dpi=60).read_bytes()
    second = save_figure(figure1(*runs), tmp_path / f"b{suffix}", dpi=60).read_bytes()
    assert first == second
    assert len(first) > 1000


def test_png_carries_no_software_version(
    runs: tuple[TrainingResult, TrainingResult], tmp_path: Path
) -> None:
    blob = save_figure(figure1(*runs), tmp_path / "f.png", dpi=60).read_bytes()
    assert blob[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"Matplotlib" not in blob and b"matplotlib" not in blob


def test_runs_in_the_wrong_order(runs: tuple[TrainingResult, TrainingResult]) -> None:
    without_bn, with_bn = runs
    with pytest.raises(ValueError, match="without_bn: expected a run with batch_norm=False"):
        figure1(with_bn, without_bn)
    with pytest.raises(ValueError, match="with_bn: expected a run with batch_norm=True"):
        figure1(without_bn, without_bn)
    with pytest.raises(
        TypeError, match="with_bn: expected a TrainingResult or a sequence of them, got dict"
    ):
        figure1(without_bn, {"steps": []})  # type: ignore[arg-type]


def test_save_figure_rejects_unknown_format(
    runs: tuple[TrainingResult, TrainingResult], tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=r"path: expected a name ending in one of.*figure\.jpg"):
        save_figure(figure1(*runs), tmp_path / "figure.jpg")


def test_several_runs_draw_median_and_range() -> None:
    without_bn = [fake_result(False, seed) for seed in (1, 3, 5)]
    with_bn = [fake_result(True, seed) for seed in (2, 4, 6, 8)]
    ax_a, ax_b, ax_c = figure1(without_bn, with_bn).axes
    for line, shade, group in zip(
        ax_a.get_lines(), ax_a.collections, (without_bn, with_bn), strict=True
    ):
        accuracy = np.array([r.test_accuracy for r in group])
        # The median of each column, written out: the middle value of the sorted column
        # (odd count) or the mean of the two middle ones (even count).
        ordered = np.sort(accuracy, axis=0)
        k = len(group) // 2
        median = ordered[k] if len(group) % 2 else (ordered[k - 1] + ordered[k]) / 2
        np.testing.assert_allclose(line.get_ydata(), median, rtol=0, atol=1e-15)
        # The shaded range spans exactly the lowest and highest accuracy at each step.
        vertices = shade.get_paths()[0].vertices
        for step, low, high in zip(group[0].steps, ordered[0], ordered[-1], strict=True):
            at = vertices[np.isclose(vertices[:, 0], step)][:, 1]
            assert np.isclose(at.min(), low) and np.isclose(at.max(), high)
    # (b), (c) show the bands of the first run of each group.
    for ax, first in ((ax_b, without_bn[0]), (ax_c, with_bn[0])):
        for column, line in enumerate(ax.get_lines()):
            np.testing.assert_array_equal(
                line.get_ydata(), first.sigmoid_input_percentiles[:, column]
            )


def test_one_run_draws_no_range(runs: tuple[TrainingResult, TrainingResult]) -> None:
    assert len(figure1(*runs).axes[0].collections) == 0
    assert len(figure1([runs[0]], [runs[1]]).axes[0].collections) == 0


def test_bad_groups_of_runs(runs: tuple[TrainingResult, TrainingResult]) -> None:
    without_bn, with_bn = runs
    with pytest.raises(ValueError, match="with_bn: expected at least one run"):
        figure1(without_bn, [])
    with pytest.raises(ValueError, match=r"with_bn\[1\]: expected a run with batch_norm=True"):
        figure1(without_bn, [with_bn, without_bn])
    with pytest.raises(TypeError, match=r"without_bn\[0\]: expected a TrainingResult"):
        figure1([{"steps": []}], with_bn)  # type: ignore[list-item]
    with pytest.raises(TypeError, match="without_bn: expected a TrainingResult or a sequence"):
        figure1("runs", with_bn)  # type: ignore[arg-type]
    short = dataclasses.replace(
        with_bn, steps=with_bn.steps[:5], test_accuracy=with_bn.test_accuracy[:5]
    )
    with pytest.raises(ValueError, match=r"with_bn\[1\]: expected the evaluation steps"):
        figure1(without_bn, [with_bn, short])
