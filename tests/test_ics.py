"""Tests for bnlessons.ics: the measures against a by-hand network and first-order expansions."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from bnlessons.ics import gradient_landscape, gradient_shift, track, track_many
from bnlessons.mlp import SigmoidMLP
from bnlessons.mnist import MnistData, load_mnist
from bnlessons.training import TrainingConfig, train


@pytest.fixture(scope="module")
def data() -> MnistData:
    return load_mnist()


def batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(8, 5)), rng.integers(0, 3, size=8)


def network(batch_norm: bool, sizes: tuple[int, ...] = (5, 6, 6, 3)) -> SigmoidMLP:
    return SigmoidMLP(sizes, batch_norm=batch_norm, init_std=1.0, rng=np.random.default_rng(1))


def by_hand_gradients(
    w0: np.ndarray, b0: np.ndarray, w1: np.ndarray, b1: np.ndarray, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dL/dW1, dL/dW0, dL/db0 of one sigmoid layer and a softmax output, written out."""
    h = 1.0 / (1.0 + np.exp(-(x @ w0 + b0)))
    logits = h @ w1 + b1
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    d = (p - np.eye(w1.shape[1])[y]) / len(y)
    dh = d @ w1.T * h * (1 - h)
    return h.T @ d, x.T @ dh, dh.sum(axis=0)


def test_shift_of_one_hidden_layer_matches_the_definition() -> None:
    x, y = batch()
    net = network(False, (5, 6, 3))
    w0, b0, w1, b1 = (
        a.copy() for a in (net.weights[0], net.biases[0], net.weights[1], net.biases[1])
    )
    eta = 0.5
    g, gw0, gb0 = by_hand_gradients(w0, b0, w1, b1, x, y)
    g_new, _, _ = by_hand_gradients(w0 - eta * gw0, b0 - eta * gb0, w1, b1, x, y)
    shift = gradient_shift(net, x, y, learning_rate=eta)
    assert shift.layers == (1,)
    np.testing.assert_allclose(shift.distance[0], np.linalg.norm(g - g_new), rtol=1e-10)
    cos = np.sum(g * g_new) / np.linalg.norm(g) / np.linalg.norm(g_new)
    np.testing.assert_allclose(shift.cosine[0], cos, rtol=1e-12)
    np.testing.assert_allclose(shift.norm[0], np.linalg.norm(g), rtol=1e-12)
    assert shift.distance[0] > 1e-3  # the measure sees a real change


@pytest.mark.parametrize("batch_norm", [False, True])
def test_unchanged_lower_layers_give_the_same_gradient(batch_norm: bool) -> None:
    x, y = batch()
    shift = gradient_shift(network(batch_norm), x, y, learning_rate=0.0)
    assert shift.layers == (1, 2)
    assert np.all(shift.distance == 0.0)
    np.testing.assert_allclose(shift.cosine, 1.0, rtol=1e-12)
    assert np.all(shift.norm > 0)


def test_measures_leave_the_network_unchanged() -> None:
    x, y = batch()
    net = network(True)
    net.forward(x)  # some running statistics
    before = copy.deepcopy(net)
    gradient_shift(net, x, y, learning_rate=1.0)
    gradient_landscape(net, x, y, step_sizes=[0.1, 1.0])
    for a, b in zip(net.weights, before.weights, strict=True):
        assert np.array_equal(a, b)
    for n, m in zip(net.norms, before.norms, strict=True):
        assert np.array_equal(n.running_mean, m.running_mean)
        assert np.array_equal(n.gamma, m.gamma)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_landscape_is_first_order_for_small_steps(batch_norm: bool) -> None:
    """L(theta - eta g) = L - eta |g|^2 + O(eta^2); the gradient moves by eta |H g| + O(eta^2)."""
    x, y = batch()
    etas = [1e-4, 2e-4]
    land = gradient_landscape(network(batch_norm), x, y, step_sizes=etas)
    decrease = (land.loss - land.losses) / (np.array(etas) * land.gradient_norm**2)
    np.testing.assert_allclose(decrease, 1.0, rtol=1e-3)
    ratio = land.gradient_changes[1] / land.gradient_changes[0]
    np.testing.assert_allclose(ratio, 2.0, rtol=1e-3)
    per_distance = land.gradient_changes / (np.array(etas) * land.gradient_norm)
    assert land.effective_beta == pytest.approx(per_distance.max())
    assert land.loss_range == pytest.approx(land.losses.max() - land.losses.min())
    assert land.max_gradient_change == land.gradient_changes.max()


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda n, x, y: gradient_shift(n, x, y, learning_rate=-1.0),
            ValueError,
            "learning_rate: expected a finite number >= 0, got -1.0",
        ),
        (
            lambda n, x, y: gradient_shift(n, x, y[:3], learning_rate=1.0),
            ValueError,
            r"x, labels: expected shapes \(N, features\) and \(N,\), got \(8, 5\) and \(3,\)",
        ),
        (
            lambda n, x, y: gradient_landscape(n, x, y, step_sizes=[]),
            ValueError,
            r"step_sizes: expected at least one step size, got \[\]",
        ),
        (
            lambda n, x, y: gradient_landscape(n, x, y, step_sizes=[0.1, 0.0]),
            ValueError,
            "step_sizes\\[1\\]: expected a finite number > 0, got 0.0",
        ),
        (
            lambda n, x, y: gradient_shift("net", x, y, learning_rate=1.0),
            TypeError,
            "network: expected a SigmoidMLP, got str",
        ),
    ],
)
def test_arguments_are_checked(call, error: type, message: str) -> None:  # type: ignore[no-untyped-def]
    x, y = batch()
    with pytest.raises(error, match=f"^{message}$"):
        call(network(False), x, y)


def test_track_is_the_run_of_train_with_its_measures(data: MnistData) -> None:
    config = TrainingConfig(steps=30, eval_every=10, init_std=1.0)
    run = track(config, data, step_sizes=[0.05, 0.1])
    plain = train(config, data)
    assert all(
        np.array_equal(a, b)
        for a, b in zip(run.result.network.weights, plain.network.weights, strict=True)
    )
    assert np.array_equal(run.result.test_accuracy, plain.test_accuracy)
    assert run.probe_steps.tolist() == [0, 10, 20]
    assert run.shift_distance.shape == run.shift_cosine.shape == (3, 3)  # 3 probes, W_1..W_3
    assert run.effective_beta.shape == run.loss_range.shape == (3,)
    assert run.training_percentiles.shape == (4, 3)
    assert np.all(np.diff(run.training_percentiles, axis=1) >= 0)
    assert np.array_equal(
        run.in_training_mode().sigmoid_input_percentiles, run.training_percentiles
    )
    # in training mode BN's input over the test digits is centred at beta = 0 at step 0
    assert abs(run.training_percentiles[0, 1]) < 0.2
    again = track_many([config], data, step_sizes=[0.05, 0.1], processes=1)[0]
    assert np.array_equal(again.shift_distance, run.shift_distance)
