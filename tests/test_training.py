"""Tests of bnlessons.training: determinism, float64 recomputations, the evaluation schedule."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bnlessons.mlp import SigmoidMLP
from bnlessons.mnist import MnistData, load_mnist
from bnlessons.training import (
    FIGURE1,
    PERCENTILES,
    TrainingConfig,
    evaluate,
    train,
    train_many,
    with_step0_in_training_mode,
)


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"batch_size": 1}, ValueError, "batch_size"),
        ({"batch_size": 60.0}, TypeError, "batch_size"),
        ({"steps": 0}, ValueError, "steps"),
        ({"eval_every": -1}, ValueError, "eval_every"),
        ({"learning_rate": 0.0}, ValueError, "learning_rate"),
        ({"init_std": float("nan")}, ValueError, "init_std"),
        ({"init_std": "0.1"}, TypeError, "init_std"),
        ({"hidden_sizes": (100, 0)}, ValueError, "hidden_sizes"),
        ({"hidden_sizes": ()}, ValueError, "hidden_sizes"),
        ({"tracked_unit": 100}, ValueError, "tracked_unit"),
        ({"batch_norm": 1}, TypeError, "batch_norm"),
        ({"dtype": np.float16}, TypeError, "dtype"),
        ({"seed": True}, TypeError, "seed"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, object], error: type, name: str) -> None:
    with pytest.raises(error, match=name):
        TrainingConfig(**kwargs)  # type: ignore[arg-type]


def test_config_is_frozen_and_keyword_only() -> None:
    config = TrainingConfig()
    assert (config.batch_size, config.hidden_sizes, config.steps) == (60, (100, 100, 100), 50_000)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.steps = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        TrainingConfig(True)  # type: ignore[misc]


@pytest.fixture(scope="module")
def data() -> MnistData:
    return load_mnist()


@pytest.fixture(scope="module")
def small_data(data: MnistData) -> MnistData:
    return MnistData(
        data.train_images[:600],
        data.train_labels[:600],
        data.test_images[:300],
        data.test_labels[:300],
    )


@pytest.mark.parametrize("batch_norm", [False, True])
def test_training_is_deterministic_per_seed(small_data: MnistData, batch_norm: bool) -> None:
    config = TrainingConfig(batch_norm=batch_norm, steps=40, eval_every=20, batch_size=30)
    first, second = train(config, small_data), train(config, small_data)
    assert first.config == second.config
    for name in ("steps", "test_accuracy", "test_loss", "sigmoid_input_percentiles"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    for w1, w2 in zip(first.network.weights, second.network.weights, strict=True):
        np.testing.assert_array_equal(w1, w2)
    other = train(dataclasses.replace(config, seed=1), small_data)
    assert not np.array_equal(other.network.weights[0], first.network.weights[0])


@pytest.mark.parametrize("batch_norm", [False, True])
def test_short_run_learns(data: MnistData, batch_norm: bool) -> None:
    subset = MnistData(
        data.train_images, data.train_labels, data.test_images[:500], data.test_labels[:500]
    )
    config = TrainingConfig(batch_norm=batch_norm, steps=400, eval_every=200)
    result = train(config, subset)
    assert result.steps.tolist() == [0, 200, 400]
    assert result.test_accuracy[0] < 0.3  # ten classes: chance is about 0.1
    assert result.final_accuracy > 0.6
    assert result.test_loss[-1] < result.test_loss[0] / 2


def test_recorded_percentiles_match_a_float64_recomputation(small_data: MnistData) -> None:
    """Recompute the tracked sigmoid input from the weights with Algorithm 2, in float64."""
    config = TrainingConfig(steps=30, eval_every=30, batch_size=20, tracked_unit=7)
    result = train(config, small_data)
    net = result.network
    h = small_data.test_images.reshape(300, -1).astype(np.float64) / 255
    u = h
    for i, norm in enumerate(net.norms):
        z = h @ net.weights[i].astype(np.float64)
        assert norm.running_mean is not None and norm.running_var is not None
        assert norm.gamma is not None and norm.beta is not None
        u = (z - norm.running_mean) / np.sqrt(norm.running_var.astype(np.float64) + norm.eps)
        u = u * norm.gamma + norm.beta
        h = 1 / (1 + np.exp(-u))
    expected = np.percentile(u[:, 7], PERCENTILES)
    np.testing.assert_allclose(
        result.sigmoid_input_percentiles[-1], expected, rtol=1e-4, atol=1e-5
    )
    logits = h @ net.weights[-1] + net.biases[-1]  # type: ignore[operator]
    accuracy = np.mean(np.argmax(logits, axis=1) == small_data.test_labels)
    assert result.final_accuracy == pytest.approx(accuracy, abs=1 / 300 + 1e-12)


def test_evaluate_leaves_training_mode() -> None:
    net = SigmoidMLP((7, 6, 3), batch_norm=True, init_std=1.0, rng=np.random.default_rng(0))
    x = np.random.default_rng(5).normal(size=(4, 7))
    evaluate(net, x, np.array([0, 1, 2, 0]), unit=0)
    assert all(norm.training for norm in net.norms)


def test_progress_callback_sees_every_evaluation(small_data: MnistData) -> None:
    seen: list[tuple[int, float]] = []
    config = TrainingConfig(steps=25, eval_every=10, batch_size=20)
    result = train(config, small_data, progress=lambda s, a: seen.append((s, a)))
    assert [s for s, _ in seen] == [0, 10, 20, 25] == result.steps.tolist()
    assert [a for _, a in seen] == result.test_accuracy.tolist()


def test_train_rejects_batch_larger_than_data(small_data: MnistData) -> None:
    tiny = MnistData(
        small_data.train_images[:10],
        small_data.train_labels[:10],
        small_data.test_images[:5],
        small_data.test_labels[:5],
    )
    with pytest.raises(ValueError, match="batch_size=60"):
        train(TrainingConfig(steps=1), tiny)


def test_train_many_equals_the_serial_loop_bit_for_bit() -> None:
    data = load_mnist()
    configs = [
        TrainingConfig(batch_norm=b, steps=30, eval_every=10, init_std=s, seed=k)
        for k, (b, s) in enumerate([(False, 0.1), (True, 1.0), (True, 0.1)])
    ]
    serial = [train(c, data) for c in configs]
    parallel = train_many(configs, data, processes=2)
    for one, other in zip(serial, parallel, strict=True):
        assert one.config == other.config
        np.testing.assert_array_equal(one.test_accuracy, other.test_accuracy)
        np.testing.assert_array_equal(
            one.sigmoid_input_percentiles, other.sigmoid_input_percentiles
        )
        for w, v in zip(one.network.weights, other.network.weights, strict=True):
            np.testing.assert_array_equal(w, v)


def test_train_many_bad_arguments() -> None:
    data = load_mnist()
    with pytest.raises(ValueError, match="processes"):
        train_many([TrainingConfig(steps=1)], data, processes=0)
    with pytest.raises(TypeError, match="configs"):
        train_many([None], data)  # type: ignore[list-item]


@pytest.mark.parametrize(("steps", "every"), [(1, 1), (25, 10), (30, 10), (7, 50), (500, 500)])
def test_evaluation_steps_are_zero_every_multiple_and_the_end(steps: int, every: int) -> None:
    config = TrainingConfig(steps=steps, eval_every=every)
    expected = tuple(s for s in range(steps + 1) if s % every == 0 or s == steps)
    assert config.evaluation_steps == expected


def test_train_records_at_the_evaluation_steps(small_data: MnistData) -> None:
    config = TrainingConfig(steps=23, eval_every=10, batch_size=20)
    assert train(config, small_data).steps.tolist() == list(config.evaluation_steps)


def test_initial_network_is_the_first_draws_of_the_seed() -> None:
    config = TrainingConfig(hidden_sizes=(6, 5), init_std=0.3, seed=11, batch_norm=False)
    net = config.initial_network(inputs=4, classes=3)
    rng = np.random.default_rng(11)
    for w, shape in zip(net.weights, [(4, 6), (6, 5), (5, 3)], strict=True):
        expected = (0.3 * rng.standard_normal(shape)).astype(np.float32)
        np.testing.assert_array_equal(w, expected)
    assert all(b is not None and not b.any() for b in net.biases)


def test_initial_network_is_the_one_train_starts_from(small_data: MnistData) -> None:
    config = TrainingConfig(steps=1, eval_every=1, batch_size=20, init_std=1.0)
    net = config.initial_network()
    recorded = train(config, small_data).sigmoid_input_percentiles[0]
    x = small_data.test_images.reshape(len(small_data.test_images), -1).astype(np.float32) / 255
    _, _, percentiles = evaluate(net, x, small_data.test_labels, unit=config.tracked_unit)
    np.testing.assert_array_equal(percentiles, recorded)


def test_figure1_preset_is_lesson_5s_run() -> None:
    # the paper's network, batches of 60 and 50,000 steps (the defaults), with lesson 5's scales
    assert dataclasses.replace(TrainingConfig(), init_std=1.0, learning_rate=0.1) == FIGURE1
    assert (FIGURE1.hidden_sizes, FIGURE1.batch_size, FIGURE1.steps) == ((100,) * 3, 60, 50_000)
    assert FIGURE1.batch_norm and FIGURE1.dtype is np.float32


def test_step0_in_training_mode_matches_a_float64_recomputation(small_data: MnistData) -> None:
    config = TrainingConfig(steps=2, eval_every=1, batch_size=20, init_std=1.0, tracked_unit=3)
    run = train(config, small_data)
    moved = with_step0_in_training_mode(run, small_data)
    np.testing.assert_array_equal(
        moved.sigmoid_input_percentiles[1:], run.sigmoid_input_percentiles[1:]
    )
    # BN in training mode on the whole test set, from the seed's first draws, in float64
    rng = np.random.default_rng(config.seed)
    h = small_data.test_images.reshape(300, -1).astype(np.float64) / 255
    for fan_in, fan_out in [(784, 100), (100, 100), (100, 100)]:
        w = (config.init_std * rng.standard_normal((fan_in, fan_out))).astype(np.float32)
        z = h @ w.astype(np.float64)
        u = (z - z.mean(axis=0)) / np.sqrt(z.var(axis=0) + 1e-5)
        h = 1 / (1 + np.exp(-u))
    expected = np.percentile(u[:, 3], PERCENTILES)
    np.testing.assert_allclose(moved.sigmoid_input_percentiles[0], expected, rtol=1e-4, atol=1e-5)
    plain = train(dataclasses.replace(config, batch_norm=False), small_data)
    np.testing.assert_array_equal(
        with_step0_in_training_mode(plain, small_data).sigmoid_input_percentiles,
        plain.sigmoid_input_percentiles,
    )
