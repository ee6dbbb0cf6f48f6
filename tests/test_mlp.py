"""Tests of bnlessons.mlp against first principles: finite differences, float64 references."""

from __future__ import annotations

import pickle
from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import NDArray

from bnlessons import _step
from bnlessons.mlp import SigmoidMLP, softmax_cross_entropy


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


def test_training_property_sets_every_bn_layer() -> None:
    net = small_net(True)
    assert net.training and all(norm.training for norm in net.norms)
    net.training = False
    assert not net.training and not any(norm.training for norm in net.norms)
    net.training = True
    assert all(norm.training for norm in net.norms)
    with pytest.raises(TypeError, match="training: expected a bool, got int"):
        net.training = 1  # type: ignore[assignment]


def fd_gradients(net: SigmoidMLP, x: NDArray, y: NDArray) -> list[tuple[NDArray, NDArray]]:
    """(parameter, central-difference gradient of the batch loss) for every parameter."""

    def loss() -> float:
        return softmax_cross_entropy(net.forward(x), y)[0]

    params = list(net.weights) + [b for b in net.biases if b is not None]
    for norm in net.norms:
        assert norm.gamma is not None and norm.beta is not None
        params += [norm.gamma, norm.beta]
    return [(p, central_difference(loss, p, 1e-5)) for p in params]


@pytest.mark.parametrize("batch_norm", [False, True])
def test_sgd_step_moves_every_parameter_by_rate_times_the_finite_difference_gradient(
    batch_norm: bool,
) -> None:
    # batch 8: the step of bnlessons._step (few numpy calls), checked from first principles
    net = small_net(batch_norm, seed=5)
    assert _step.applies(net, 8)
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(8, 7)), rng.integers(0, 3, size=8)
    rate = 0.3
    expected_loss = softmax_cross_entropy(net.forward(x), y)[0]
    before = [(p.copy(), g) for p, g in fd_gradients(net, x, y)]
    loss = net.sgd_step(x, y, learning_rate=rate)
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    after = [p for p, _ in fd_gradients(net, x, y)]  # the same arrays, now updated
    for (old, numeric), new in zip(before, after, strict=True):
        assert rel_error((old - new) / rate, numeric) < 1e-7
    steps = list(net.grad_weights) + [g for g in net.grad_biases if g is not None]
    steps += [g for n in net.norms for g in (n.grad_gamma, n.grad_beta) if g is not None]
    for step, (_, numeric) in zip(steps, before, strict=True):
        assert rel_error(step / rate, numeric) < 1e-7


def test_sgd_step_folds_the_batch_statistics_into_the_running_ones() -> None:
    net = small_net(True, seed=7)
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(10, 7)), rng.integers(0, 3, size=10)
    z = x @ net.weights[0]  # the first BN layer's input, in float64
    net.sgd_step(x, y, learning_rate=0.1)
    norm = net.norms[0]
    assert norm.num_batches_tracked == 1
    np.testing.assert_allclose(norm.running_mean, 0.1 * z.mean(axis=0), rtol=1e-12)  # type: ignore[arg-type]
    np.testing.assert_allclose(norm.running_var, 0.9 + 0.1 * z.var(axis=0, ddof=1), rtol=1e-12)  # type: ignore[arg-type]
    assert [u.shape for u in net.pre_activations] == [(10, 6), (10, 5), (10, 4)]


@pytest.mark.parametrize("batch_norm", [False, True])
def test_sgd_step_leaves_the_pre_activations_of_the_forward_pass(batch_norm: bool) -> None:
    # with BN the step keeps u/2 and z - mean; pre_activations computes u when read
    net = small_net(batch_norm, seed=10)
    x = np.random.default_rng(11).normal(size=(9, 7))
    net.forward(x)  # training mode: the batch statistics, as the step uses them
    expected = [u.copy() for u in net.pre_activations]
    net.sgd_step(x, np.arange(9) % 3, learning_rate=0.2)
    for u, e in zip(net.pre_activations, expected, strict=True):
        np.testing.assert_allclose(u, e, rtol=1e-13, atol=1e-14)
    assert net.pre_activations[0] is net.pre_activations[0]  # computed once, then kept


def test_float32_step_of_the_figure1_shape_matches_finite_differences_in_float64() -> None:
    # batch 60, float32: every intermediate in the network's dtype; sampled entries of each
    # gradient against central differences of the same network in float64
    sizes = (30, 20, 20, 20, 10)
    rng = np.random.default_rng(9)
    nets = [
        SigmoidMLP(sizes, batch_norm=True, init_std=0.3, rng=np.random.default_rng(1), dtype=t)
        for t in (np.float32, np.float64)
    ]
    x = rng.random((60, 30))
    y = rng.integers(0, 10, size=60)
    single, double = nets
    rate = 0.5
    single.sgd_step(x.astype(np.float32), y, learning_rate=rate)

    def loss() -> float:
        return softmax_cross_entropy(double.forward(x), y)[0]

    for w, step in zip(double.weights, single.grad_weights, strict=True):
        picks = [tuple(int(rng.integers(0, n)) for n in w.shape) for _ in range(8)]
        numeric = np.zeros(len(picks))
        for k, i in enumerate(picks):
            old = w[i]
            w[i] = old + 1e-6
            up = loss()
            w[i] = old - 1e-6
            numeric[k] = (up - loss()) / 2e-6
            w[i] = old
        analytic = np.array([step[i] for i in picks]) / rate
        scale = np.abs(step).max() / rate
        assert np.abs(analytic - numeric).max() < 1e-4 * scale


def test_sgd_step_rejects_a_batch_with_nan_in_either_path() -> None:
    for batch in (4, 300):  # the small-batch step and the general one
        net = SigmoidMLP((3, 4, 2), batch_norm=True, init_std=1.0, rng=np.random.default_rng(0))
        x = np.ones((batch, 3))
        x[0, 0] = np.nan
        with pytest.raises(ValueError, match="x: expected finite values"):
            net.sgd_step(x, np.zeros(batch, dtype=np.intp), learning_rate=0.1)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_a_copy_keeps_the_parameters_and_statistics_not_the_work_buffers(
    batch_norm: bool,
) -> None:
    net = small_net(batch_norm, seed=5)
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(10, 7)), rng.integers(0, 3, size=10)
    for _ in range(3):
        net.sgd_step(x, y, learning_rate=0.1)
    big = rng.normal(size=(500, 7))
    net.forward(big)  # a large pass: its input and buffers stay with the network
    copy = pickle.loads(pickle.dumps(net))
    assert len(pickle.dumps(copy)) < 0.2 * len(pickle.dumps(big))  # none of that is pickled
    pairs = zip(net.weights + net.grad_weights, copy.weights + copy.grad_weights, strict=True)
    for ours, theirs in pairs:
        np.testing.assert_array_equal(ours, theirs)
    for ours_norm, their_norm in zip(net.norms, copy.norms, strict=True):
        np.testing.assert_array_equal(ours_norm.running_mean, their_norm.running_mean)
        np.testing.assert_array_equal(ours_norm.running_var, their_norm.running_var)
    with pytest.raises(ValueError, match="forward"):
        copy.backward(np.zeros((10, 3)))
    np.testing.assert_array_equal(copy.forward(x), net.forward(x))  # then it works as before
    assert copy.pre_activations[0].shape == (10, 6)
