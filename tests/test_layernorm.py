"""Tests for bnlessons.layernorm: float64 references, finite differences, closed forms."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bnlessons.checks import numerical_gradient
from bnlessons.layernorm import LayerNorm, LayerNormCache, layernorm_backward, layernorm_forward


def reference_ln(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    """The definition, example by example, in float64 (two passes)."""
    x = np.asarray(x, dtype=np.float64)
    flat = x.reshape(-1, x.shape[-1])
    out = np.empty_like(flat)
    for i, row in enumerate(flat):
        mean = sum(row) / len(row)
        var = sum((v - mean) ** 2 for v in row) / len(row)
        out[i] = (row - mean) / np.sqrt(var + eps) * gamma + beta
    return out.reshape(x.shape)


@pytest.mark.parametrize("shape", [(5,), (4, 5), (2, 3, 5)])
def test_forward_matches_the_definition(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=shape)
    gamma, beta = rng.normal(size=5), rng.normal(size=5)
    y, cache = layernorm_forward(x, gamma, beta, eps=1e-3)
    np.testing.assert_allclose(y, reference_ln(x, gamma, beta, 1e-3), rtol=1e-12, atol=1e-12)
    assert y.shape == x.shape and cache.inv_std.shape == (*shape[:-1], 1)


def test_closed_form_of_two_features() -> None:
    # x = (a, b): mean (a+b)/2, variance ((a-b)/2)^2, so x_hat = -+1 / sqrt(1 + eps/((a-b)/2)^2)
    eps = 0.01
    y, _ = layernorm_forward(np.array([[1.0, 3.0]]), None, None, eps=eps)
    expected = 1.0 / np.sqrt(1.0 + eps)
    np.testing.assert_allclose(y, [[-expected, expected]], rtol=1e-15)


def test_each_example_is_normalized_and_independent_of_the_others() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 50)) * rng.uniform(0.5, 5, size=(6, 1)) + 7.0
    y, _ = layernorm_forward(x, None, None, eps=1e-5)
    var = x.var(axis=1, keepdims=True)
    np.testing.assert_allclose(y.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=1, keepdims=True), var / (var + 1e-5), rtol=1e-12)
    # a batch of one gives the same output for an example as the full batch
    alone, _ = layernorm_forward(x[2:3], None, None)
    np.testing.assert_array_equal(alone[0], y[2])


@settings(max_examples=30, deadline=None)
@given(scale=st.floats(0.5, 100.0), shift=st.floats(-1e3, 1e3), seed=st.integers(0, 2**16))
def test_invariant_to_each_examples_scale_and_shift(scale: float, shift: float, seed: int) -> None:
    x = np.random.default_rng(seed).normal(size=(3, 16))
    y, _ = layernorm_forward(x, None, None, eps=1e-12)
    moved, _ = layernorm_forward(scale * x + shift, None, None, eps=1e-12)
    np.testing.assert_allclose(moved, y, atol=1e-7)


def _loss_and_grads(
    shape: tuple[int, ...], seed: int
) -> tuple[Callable[..., float], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(1.0, 2.0, size=shape)
    gamma, beta = rng.normal(size=shape[-1]), rng.normal(size=shape[-1])
    weights = rng.normal(size=shape)  # L = sum(weights * y), so dL/dy = weights

    def loss(x_: np.ndarray, gamma_: np.ndarray, beta_: np.ndarray) -> float:
        return float(np.sum(weights * layernorm_forward(x_, gamma_, beta_)[0]))

    return loss, x, gamma, beta, weights


@pytest.mark.parametrize("shape", [(4, 6), (2, 3, 5)])
def test_backward_matches_finite_differences(shape: tuple[int, ...]) -> None:
    loss, x, gamma, beta, weights = _loss_and_grads(shape, seed=2)
    _, cache = layernorm_forward(x, gamma, beta)
    dx, dgamma, dbeta = layernorm_backward(weights, cache)
    numeric = [
        numerical_gradient(lambda v: loss(v, gamma, beta), x.copy()),
        numerical_gradient(lambda v: loss(x, v, beta), gamma.copy()),
        numerical_gradient(lambda v: loss(x, gamma, v), beta.copy()),
    ]
    for analytic, num in zip((dx, dgamma, dbeta), numeric, strict=True):
        np.testing.assert_allclose(analytic, num, rtol=1e-6, atol=1e-8)
    # each example's dx sums to zero, and is orthogonal to its x_hat up to epsilon:
    # sum_j dx_j x_hat_j = eps / (var + eps) / sqrt(var + eps) * sum_j g_j x_hat_j
    d = shape[-1]
    rows, x_hat = dx.reshape(-1, d), cache.x_hat.reshape(-1, d)
    g = (weights * gamma).reshape(-1, d)
    var = x.reshape(-1, d).var(axis=1)
    expected = 1e-5 / (var + 1e-5) / np.sqrt(var + 1e-5) * np.sum(g * x_hat, axis=1)
    np.testing.assert_allclose(rows.sum(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(np.sum(rows * x_hat, axis=1), expected, rtol=1e-6, atol=1e-15)


def test_float32_input_far_from_zero_is_normalized_accurately() -> None:
    # float32 1000 + N(0, 1): the mean is 1000 standard deviations from zero
    rng = np.random.default_rng(3)
    x = (1000.0 + rng.standard_normal((4, 4096))).astype(np.float32)
    y, _ = layernorm_forward(x, None, None)
    assert y.dtype == np.float32
    expected = reference_ln(x.astype(np.float64), np.ones(4096), np.zeros(4096), 1e-5)
    # the output's own float32 rounding (|y| < 5, half an ulp 2.4e-7) is all that is left
    np.testing.assert_allclose(y, expected, rtol=0, atol=5e-7)


def test_layer_uses_the_functions_and_keeps_its_gradients() -> None:
    rng = np.random.default_rng(4)
    ln = LayerNorm(8, dtype=np.float32)
    ln.gamma = rng.normal(size=8).astype(np.float32)
    x = rng.normal(size=(5, 8)).astype(np.float32)
    y = ln(x)
    expected = reference_ln(x, ln.gamma.astype(np.float64), np.zeros(8), 1e-5)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    dy = rng.normal(size=(5, 8)).astype(np.float32)
    dx = ln.backward(dy)
    assert dx.dtype == np.float32 and ln.grad_gamma is not None and ln.grad_beta is not None
    assert ln.grad_gamma.dtype == np.float32
    x_hat = reference_ln(x, np.ones(8), np.zeros(8), 1e-5)
    np.testing.assert_allclose(ln.grad_beta, dy.sum(axis=0), rtol=1e-5)
    np.testing.assert_allclose(ln.grad_gamma, np.sum(dy * x_hat, axis=0), rtol=1e-4, atol=1e-5)


def test_layer_without_affine_map() -> None:
    ln = LayerNorm(4, affine=False)
    x = np.arange(8.0).reshape(2, 4)
    y = ln(x)
    ln.backward(np.ones_like(y))
    assert ln.gamma is None and ln.beta is None and ln.grad_gamma is None
    np.testing.assert_allclose(y, reference_ln(x, np.ones(4), np.zeros(4), 1e-5), rtol=1e-12)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: layernorm_forward(np.arange(4), None, None), TypeError, "x: expected a float"),
        (lambda: layernorm_forward(np.float64(1.0), None, None), ValueError, "x: expected at"),
        (lambda: layernorm_forward(np.ones((2, 3)), np.ones(2), None), ValueError, "gamma"),
        (lambda: layernorm_forward(np.ones((2, 3)), None, [1, 2, 3]), TypeError, "beta"),
        (lambda: layernorm_forward(np.ones((2, 3)), None, None, eps=0.0), ValueError, "eps"),
        (lambda: layernorm_forward(np.array([[1.0, np.inf]]), None, None), ValueError, "x:"),
        (lambda: LayerNorm(0), ValueError, "num_features"),
        (lambda: LayerNorm(3, dtype=np.int64), TypeError, "dtype"),
        (lambda: LayerNorm(3)(np.ones((2, 4))), ValueError, "x: expected 3 features"),
        (lambda: LayerNorm(3).backward(np.ones((2, 3))), ValueError, "dy: expected a forward"),
    ],
)
def test_bad_input_is_named(call: Callable[[], object], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        call()


def test_bad_gradient_and_cache() -> None:
    _, cache = layernorm_forward(np.ones((2, 3)) + np.eye(2, 3), None, None)
    with pytest.raises(ValueError, match="dy: expected the forward output's shape"):
        layernorm_backward(np.ones((3, 2)), cache)
    with pytest.raises(TypeError, match="cache"):
        layernorm_backward(np.ones((2, 3)), "cache")  # type: ignore[arg-type]
    assert isinstance(cache, LayerNormCache)
