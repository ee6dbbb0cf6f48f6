"""Tests of bnlessons.mlp against first principles: finite differences, float64 references."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import NDArray

from bnlessons.mlp import (
    PERCENTILES,
    SigmoidMLP,
    TrainingConfig,
    evaluate,
    softmax_cross_entropy,
    train,
    train_many,
)
from bnlessons.mnist import MnistData, load_mnist


def central_difference(f: Callable[[], float], p: NDArray[np.float64], h: float) -> NDArray:
    """d f / d p by central differences, perturbing p in place (restored afterwards)."""
    grad = np.zeros_like(p)
    for i in np.ndindex(p.shape):
        old = p[i]
        p[i] = old + h
        up = f()
        p[i] = old - h
        down = f()
        p[i] = old
        grad[i] = (up - down) / (2 * h)
    return grad


def rel_error(a: NDArray, b: NDArray) -> float:
    """Largest difference relative to the largest entry (entries near 0 carry only FD noise)."""
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def small_net(batch_norm: bool, seed: int = 0) -> SigmoidMLP:
    rng = np.random.default_rng(seed)
    net = SigmoidMLP(
        (7, 6, 5, 4, 3), batch_norm=batch_norm, init_std=0.8, rng=rng, dtype=np.float64
    )
    # Move every parameter off its initial value, so no gradient term is trivially zero.
    for b in net.biases:
        if b is not None:
            b[:] = rng.normal(size=b.shape)
    for norm in net.norms:
        assert norm.gamma is not None and norm.beta is not None
        norm.gamma[:] = rng.uniform(0.5, 1.5, size=norm.gamma.shape)
        norm.beta[:] = rng.normal(size=norm.beta.shape)
    return net


@pytest.mark.parametrize("batch_norm", [False, True])
def test_whole_network_gradient_matches_finite_differences(batch_norm: bool) -> None:
    net = small_net(batch_norm)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(8, 7))
    y = rng.integers(0, 3, size=8)

    def loss() -> float:
        return softmax_cross_entropy(net.forward(x), y)[0]

    _, dlogits = softmax_cross_entropy(net.forward(x), y)
    net.backward(dlogits)
    pairs: list[tuple[NDArray, NDArray]] = []
    pairs += [(w, g.copy()) for w, g in zip(net.weights, net.grad_weights, strict=True)]
    pairs += [
        (b, g.copy())
        for b, g in zip(net.biases, net.grad_biases, strict=True)
        if b is not None and g is not None
    ]
    for norm in net.norms:
        assert norm.gamma is not None and norm.grad_gamma is not None
        assert norm.beta is not None and norm.grad_beta is not None
        pairs += [(norm.gamma, norm.grad_gamma.copy()), (norm.beta, norm.grad_beta.copy())]
    assert len(pairs) == (4 + 3 * 2 + 1 if batch_norm else 4 + 4)
    for param, analytic in pairs:
        numeric = central_difference(loss, param, 1e-5)
        assert rel_error(analytic, numeric) < 1e-7


def test_hidden_biases_are_dropped_only_before_bn() -> None:
    plain, normed = small_net(False), small_net(True)
    assert all(b is not None for b in plain.biases)
    assert [b is None for b in normed.biases] == [True, True, True, False]
    assert len(normed.norms) == 3 and not plain.norms


def test_softmax_cross_entropy_against_definition() -> None:
    rng = np.random.default_rng(2)
    logits = rng.normal(scale=3.0, size=(5, 4))
    labels = np.array([0, 3, 1, 1, 2])
    loss, grad = softmax_cross_entropy(logits.copy(), labels)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(5), labels])), rel=1e-12)

    def f() -> float:
        return softmax_cross_entropy(logits, labels)[0]

    assert rel_error(grad, central_difference(f, logits, 1e-5)) < 1e-8


def test_softmax_cross_entropy_huge_logits_do_not_overflow() -> None:
    logits = np.array([[1000.0, 0.0], [0.0, -1000.0]], dtype=np.float32)
    loss, grad = softmax_cross_entropy(logits, np.array([1, 0]))
    assert loss == pytest.approx(500.0)  # (1000 + 0) / 2
    np.testing.assert_allclose(grad, [[0.5, -0.5], [0.0, 0.0]], atol=1e-7)


def test_softmax_cross_entropy_bad_shapes() -> None:
    with pytest.raises(ValueError, match="labels"):
        softmax_cross_entropy(np.zeros((3, 2)), np.zeros(4, dtype=int))


def test_sigmoid_saturates_without_overflow() -> None:
    net = SigmoidMLP((1, 1, 2), batch_norm=False, init_std=1.0, rng=np.random.default_rng(0))
    net.weights[0][:] = 1.0
    net.forward(np.array([[1000.0], [-1000.0], [0.0]]))
    assert net.pre_activations[0][:, 0].tolist() == [1000.0, -1000.0, 0.0]
    h = 1.0 / (1.0 + np.exp(-np.array([0.0])))
    logits = net.forward(np.array([[0.0]]))
    np.testing.assert_allclose(logits, h * net.weights[1], rtol=1e-15)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_sgd_step_is_parameter_minus_rate_times_gradient(batch_norm: bool) -> None:
    a, b = small_net(batch_norm, seed=3), small_net(batch_norm, seed=3)
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(6, 7)), rng.integers(0, 3, size=6)
    rate = 0.3
    _, dlogits = softmax_cross_entropy(a.forward(x), y)
    a.backward(dlogits)
    expected = [w - rate * g for w, g in zip(a.weights, a.grad_weights, strict=True)]
    expected_norms = [
        (n.gamma - rate * n.grad_gamma, n.beta - rate * n.grad_beta)  # type: ignore[operator]
        for n in a.norms
    ]
    b.sgd_step(x, y, learning_rate=rate)
    for w, e in zip(b.weights, expected, strict=True):
        np.testing.assert_allclose(w, e, rtol=1e-13, atol=1e-15)
    for n, (gamma, beta) in zip(b.norms, expected_norms, strict=True):
        np.testing.assert_allclose(n.gamma, gamma, rtol=1e-13)  # type: ignore[arg-type]
        np.testing.assert_allclose(n.beta, beta, rtol=1e-13, atol=1e-15)  # type: ignore[arg-type]


def test_forward_and_backward_reject_bad_input() -> None:
    net = small_net(False)
    with pytest.raises(ValueError, match="dlogits"):
        net.backward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"x: expected float64 of shape \(batch, 7\)"):
        net.forward(np.zeros((2, 6)))
    with pytest.raises(ValueError, match="float32"):
        net.forward(np.zeros((2, 7), dtype=np.float32))
    net.forward(np.zeros((2, 7)))
    with pytest.raises(ValueError, match=r"dlogits: expected shape \(2, 3\)"):
        net.backward(np.zeros((3, 3)))


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
    net = small_net(True)
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
