"""Tests of bnlessons.mlp against first principles: finite differences, float64 references."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import NDArray

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
