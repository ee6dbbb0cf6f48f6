"""Tests for bnlessons.gradients, against finite differences and closed forms written here."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bnlessons.checks import numerical_gradient, relative_error
from bnlessons.gradients import (
    chain_expected_gradient_norms,
    chain_forward,
    chain_gradient_norms,
    chain_gradients,
    normalized_chain_gradients,
)


def test_seed_network_matches_finite_differences(seed_network: tuple[np.ndarray, ...]) -> None:
    w1, w2, w3, x = seed_network
    g1, g2, g3 = chain_gradients([w1, w2, w3], x)

    # y written out independently of the library, as a function of each weight in turn
    def y_of_w1(w: np.ndarray) -> float:
        return float((w3 @ (w2 @ (w @ x))).item())

    def y_of_w2(w: np.ndarray) -> float:
        return float((w3 @ (w @ (w1 @ x))).item())

    def y_of_w3(w: np.ndarray) -> float:
        return float((w @ (w2 @ (w1 @ x))).item())

    # y is linear in each weight, so central differences have no truncation error; only rounding
    for analytic, f, w in ((g1, y_of_w1, w1), (g2, y_of_w2, w2), (g3, y_of_w3, w3)):
        numeric = numerical_gradient(f, w.copy(), h=1e-3)
        assert analytic.shape == w.shape
        assert relative_error(analytic, numeric) < 1e-7


def test_seed_network_matches_notes_forms(seed_network: tuple[np.ndarray, ...]) -> None:
    w1, w2, w3, x = seed_network
    xc = x[:, None]
    g1, g2, g3 = chain_gradients([w1, w2, w3], x)
    np.testing.assert_allclose(g1, (xc @ w3 @ w2).T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g2, (w1 @ xc @ w3).T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g3, (w2 @ w1 @ xc).T, rtol=1e-12, atol=1e-12)


def test_column_and_vector_input_agree(seed_network: tuple[np.ndarray, ...]) -> None:
    w1, w2, w3, x = seed_network
    a = chain_gradients([w1, w2, w3], x)
    b = chain_gradients([w1, w2, w3], x[:, None])
    c = chain_gradients([w1, w2, w3], x[:, None], upstream=np.ones((1, 1)))
    for ga, gb, gc in zip(a, b, c, strict=True):
        np.testing.assert_array_equal(ga, gb)
        np.testing.assert_array_equal(ga, gc)


def test_vector_output_with_upstream_four_layers() -> None:
    rng = np.random.default_rng(1)
    shapes = [(5, 3), (4, 5), (6, 4), (2, 6)]
    ws = [rng.standard_normal(s) for s in shapes]
    x = rng.standard_normal(3)
    g = rng.standard_normal(2)
    grads = chain_gradients(ws, x, upstream=g)
    for i, w in enumerate(ws):

        def loss(wi: np.ndarray, i: int = i) -> float:
            a = x
            for j, wj in enumerate(ws):
                a = (wi if j == i else wj) @ a
            return float(g @ a)

        numeric = numerical_gradient(loss, w.copy(), h=1e-4)
        assert grads[i].shape == w.shape
        assert relative_error(grads[i], numeric) < 1e-7


def test_batch_input_sums_over_columns() -> None:
    rng = np.random.default_rng(2)
    ws = [rng.standard_normal((4, 3)), rng.standard_normal((2, 4))]
    x = rng.standard_normal((3, 7))
    g = rng.standard_normal((2, 7))
    grads = chain_gradients(ws, x, upstream=g)
    per_column = [chain_gradients(ws, x[:, b], upstream=g[:, b]) for b in range(7)]
    for i in range(2):
        np.testing.assert_allclose(grads[i], sum(pc[i] for pc in per_column), rtol=1e-12)
    # the general formula (WL...W(i+1))^T g (W(i-1)...W1 x)^T for i = 1
    np.testing.assert_allclose(grads[0], ws[1].T @ g @ x.T, rtol=1e-12)


def test_single_layer_is_outer_product() -> None:
    w = np.arange(6.0).reshape(2, 3)
    x = np.array([1.0, -2.0, 0.5])
    g = np.array([3.0, -1.0])
    (grad,) = chain_gradients([w], x, upstream=g)
    np.testing.assert_array_equal(grad, np.outer(g, x))


def test_integer_inputs_are_accepted_as_float() -> None:
    (g1, g2) = chain_gradients([[[1, 2]], [[3]]], [1, 1])
    np.testing.assert_array_equal(g1, [[3.0, 3.0]])
    np.testing.assert_array_equal(g2, [[3.0]])
    assert g1.dtype == np.float64


@st.composite
def chains(draw: st.DrawFn) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    dims = draw(st.lists(st.integers(1, 6), min_size=2, max_size=6))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    ws = [rng.standard_normal((dims[i + 1], dims[i])) for i in range(len(dims) - 1)]
    return ws, rng.standard_normal(dims[0]), rng.standard_normal(dims[-1])


@settings(max_examples=60, deadline=None)
@given(chains())
def test_property_gradient_shapes_and_values(
    chain: tuple[list[np.ndarray], np.ndarray, np.ndarray],
) -> None:
    ws, x, g = chain
    grads = chain_gradients(ws, x, upstream=g)
    assert [gr.shape for gr in grads] == [w.shape for w in ws]
    # dL/dWi = (WL...W(i+1))^T g (W(i-1)...W1 x)^T, with explicit matrix products
    for i in range(len(ws)):
        after = np.eye(ws[-1].shape[0])
        for w in reversed(ws[i + 1 :]):
            after = after @ w
        before = x
        for w in ws[:i]:
            before = w @ before
        np.testing.assert_allclose(grads[i], np.outer(after.T @ g, before), atol=1e-10)


@settings(max_examples=40, deadline=None)
@given(chains())
def test_property_forward_matches_product(
    chain: tuple[list[np.ndarray], np.ndarray, np.ndarray],
) -> None:
    ws, x, _ = chain
    acts = chain_forward(ws, x)
    assert len(acts) == len(ws) + 1
    np.testing.assert_array_equal(acts[0], x)
    prod = np.eye(len(x))
    for w, a in zip(ws, acts[1:], strict=True):
        prod = w @ prod
        np.testing.assert_allclose(a, prod @ x, atol=1e-10)


def test_chain_forward_column_input_keeps_columns() -> None:
    acts = chain_forward([np.ones((2, 3)), np.ones((1, 2))], np.ones((3, 1)))
    assert [a.shape for a in acts] == [(3, 1), (2, 1), (1, 1)]
    assert acts[-1].item() == 6.0


def test_chain_gradient_norms_factorize() -> None:
    rng = np.random.default_rng(4)
    ws = [rng.standard_normal((6, 3)), rng.standard_normal((5, 6)), rng.standard_normal((4, 5))]
    x = rng.standard_normal(3)
    g = rng.standard_normal(4)
    norms = chain_gradient_norms(ws, x, upstream=g)
    grads = chain_gradients(ws, x, upstream=g)
    np.testing.assert_allclose(norms, [np.linalg.norm(gr) for gr in grads], rtol=1e-14)
    # ||dL/dW2|| = ||W3^T g|| * ||W1 x||  (norm of an outer product)
    np.testing.assert_allclose(
        norms[1], np.linalg.norm(ws[2].T @ g) * np.linalg.norm(ws[0] @ x), rtol=1e-12
    )


def _normalized_chain_loss(
    ws: list[np.ndarray], x: np.ndarray, g: np.ndarray, eps: float
) -> float:
    """sum(g * y) for a = (z - mean) / sqrt(var + eps) between layers, written out directly."""
    a = x
    for w in ws[:-1]:
        z = w @ a
        mean = z.mean(axis=1, keepdims=True)
        var = ((z - mean) ** 2).mean(axis=1, keepdims=True)
        a = (z - mean) / np.sqrt(var + eps)
    return float(np.sum(g * (ws[-1] @ a)))


def test_normalized_chain_matches_finite_differences() -> None:
    rng = np.random.default_rng(5)
    ws = [rng.standard_normal((6, 3)), rng.standard_normal((5, 6)), rng.standard_normal((2, 5))]
    x, g = rng.standard_normal((3, 8)), rng.standard_normal((2, 8))
    acts, grads = normalized_chain_gradients(ws, x, g, eps=1e-3)
    for i in range(3):

        def loss(w: np.ndarray, i: int = i) -> float:
            return _normalized_chain_loss([*ws[:i], w, *ws[i + 1 :]], x, g, 1e-3)

        assert relative_error(grads[i], numerical_gradient(loss, ws[i].copy())) < 1e-6
    # hidden activations are normalized per unit over the batch, the output is not
    for a in acts[1:-1]:
        np.testing.assert_allclose(a.mean(axis=1), 0.0, atol=1e-12)
        np.testing.assert_allclose(a.var(axis=1), 1.0, rtol=1e-2)  # var / (var + eps)
    np.testing.assert_allclose(acts[-1], ws[-1] @ acts[-2], rtol=1e-12)


def test_normalized_chain_scale_invariance() -> None:
    rng = np.random.default_rng(6)
    ws = [rng.standard_normal((7, 4)), rng.standard_normal((7, 7)), rng.standard_normal((1, 7))]
    x, g = rng.standard_normal((4, 16)), rng.standard_normal((1, 16))
    acts, grads = normalized_chain_gradients(ws, x, g, eps=1e-14)
    for a in (0.01, 3.0, 1000.0):
        acts_a, grads_a = normalized_chain_gradients([ws[0], a * ws[1], ws[2]], x, g, eps=1e-14)
        np.testing.assert_allclose(acts_a[-1], acts[-1], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(a * grads_a[1], grads[1], rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(grads_a[0], grads[0], rtol=1e-7, atol=1e-9)
    # a scale-invariant layer's gradient is orthogonal to its weights
    assert abs(np.sum(grads[1] * ws[1])) < 1e-8 * np.linalg.norm(grads[1]) * np.linalg.norm(ws[1])


def test_bad_normalized_chain_input() -> None:
    ws = [np.ones((3, 2)), np.ones((1, 3))]
    with pytest.raises(ValueError, match="B >= 2"):
        normalized_chain_gradients(ws, np.ones(2), np.ones((1, 1)))
    with pytest.raises(ValueError, match="B >= 2"):
        normalized_chain_gradients(ws, np.ones((2, 1)), np.ones((1, 1)))
    with pytest.raises(ValueError, match="upstream: expected the shape of y"):
        normalized_chain_gradients(ws, np.ones((2, 4)), np.ones((1, 3)))
    with pytest.raises(TypeError):
        normalized_chain_gradients(ws, np.ones((2, 4)), np.array([["a"] * 4]))


def test_bad_chain_gradient_norms_input() -> None:
    with pytest.raises(ValueError, match=r"upstream: expected dL/dy .*got None"):
        chain_gradient_norms([np.ones((2, 2))], np.ones(2))


W1, W2, W3 = np.ones((4, 2)), np.ones((4, 4)), np.ones((1, 4))


def test_bad_chain_shapes_do_not_compose() -> None:
    with pytest.raises(
        ValueError, match=r"weights\[1\] \(W2\): expected 4 columns .*got shape \(3, 5\)"
    ):
        chain_gradients([W1, np.ones((3, 5))], np.ones(2))


def test_bad_x_does_not_match_w1() -> None:
    with pytest.raises(ValueError, match=r"x: expected length 2 .*got shape \(3,\)"):
        chain_gradients([W1, W2, W3], np.ones(3))
    with pytest.raises(ValueError, match=r"x: expected 2 rows.*got shape \(3, 1\)"):
        chain_forward([W1, W2, W3], np.ones((3, 1)))
    with pytest.raises(ValueError, match=r"x: expected a vector .*got shape \(2, 1, 1\)"):
        chain_gradients([W1], np.ones((2, 1, 1)), upstream=np.ones(4))


def test_bad_upstream_shape() -> None:
    with pytest.raises(ValueError, match=r"upstream: expected the shape of y.*\(4,\).*got shape"):
        chain_gradients([W1, W2], np.ones(2), upstream=np.ones(3))
    with pytest.raises(ValueError, match=r"upstream: expected .*\(4, 5\), got shape \(4,\)"):
        chain_gradients([W1, W2], np.ones((2, 5)), upstream=np.ones(4))


def test_bad_upstream_none_with_vector_output() -> None:
    with pytest.raises(ValueError, match=r"upstream: expected dL/dy .*\(4,\).*got None"):
        chain_gradients([W1, W2], np.ones(2))
    with pytest.raises(ValueError, match=r"upstream: expected .*\(1, 3\).*got None"):
        chain_gradients([W1, W2, W3], np.ones((2, 3)))


def test_bad_weights_not_2d_empty_or_wrong_type() -> None:
    with pytest.raises(ValueError, match=r"weights\[0\] \(W1\): expected a 2-D matrix, got shape"):
        chain_gradients([np.ones(3)], np.ones(3), upstream=np.ones(1))
    with pytest.raises(ValueError, match="weights: expected at least one matrix"):
        chain_gradients([], np.ones(3))
    with pytest.raises(TypeError, match="weights: expected a sequence"):
        chain_gradients(np.ones((2, 2)), np.ones(2))


def test_bad_dtype_and_non_finite() -> None:
    with pytest.raises(
        TypeError, match=r"weights\[0\] \(W1\): expected a real numeric array, got dtype <U1"
    ):
        chain_gradients([np.array([["a"]])], np.ones(1))
    with pytest.raises(TypeError, match="x: expected a real numeric array, got dtype complex"):
        chain_gradients([W1, W2, W3], np.ones(2, dtype=complex))
    with pytest.raises(ValueError, match="upstream: expected finite values, got NaN or inf"):
        chain_gradients([W1], np.ones(2), upstream=np.array([1, 1, 1, np.nan]))


# ------------------------------------------------------------------ expected gradient norms
# Monte Carlo: a mean of n draws lies within 4 standard errors of the true mean except with
# probability 2 * (1 - Phi(4)) = 6e-5; the seeds are fixed, so the tests are deterministic.
Z = 4.0


def test_expected_gradient_norms_match_monte_carlo() -> None:
    """Sampled gradients, formed as explicit products of matrices, against the formula."""
    shapes = [(5, 3), (4, 5), (6, 4), (2, 6)]
    sigmas = [0.5, 2.0, 1.5, 0.7]
    rng = np.random.default_rng(11)
    x = rng.standard_normal(3)
    g = rng.standard_normal(2)
    n = 20_000
    ws = [s * rng.standard_normal((n, m, k)) for (m, k), s in zip(shapes, sigmas, strict=True)]
    norms = np.empty((n, len(shapes)))
    for i in range(len(shapes)):
        fwd = x[None, :, None]
        for w in ws[:i]:
            fwd = w @ fwd  # W_{i-1} ... W_1 x
        bwd = g[None, :, None]
        for w in reversed(ws[i + 1 :]):
            bwd = np.swapaxes(w, 1, 2) @ bwd  # (W_L ... W_{i+1})^T g
        grad = bwd @ np.swapaxes(fwd, 1, 2)  # the outer product, shape of W_i
        assert grad.shape[1:] == shapes[i]
        norms[:, i] = np.linalg.norm(grad, axis=(1, 2))
    expected = chain_expected_gradient_norms(
        shapes, sigmas, x_norm=float(np.linalg.norm(x)), upstream_norm=float(np.linalg.norm(g))
    )
    se = norms.std(axis=0, ddof=1) / np.sqrt(n)
    assert np.all(np.abs(norms.mean(axis=0) - expected) <= Z * se), (norms.mean(axis=0), expected)


def test_expected_gradient_norms_of_scalar_chain() -> None:
    """1 x 1 weights: |dy/dw_i| = |x| |g| prod_{j != i} |w_j|, and E|w_j| = sigma_j sqrt(2/pi)."""
    sigmas = [0.5, 3.0, 2.0]
    half_normal = np.sqrt(2 / np.pi)
    exact = [
        1.5 * 2.0 * np.prod([s * half_normal for j, s in enumerate(sigmas) if j != i])
        for i in range(3)
    ]
    got = chain_expected_gradient_norms([(1, 1)] * 3, sigmas, x_norm=1.5, upstream_norm=2.0)
    assert np.allclose(got, exact, rtol=1e-14, atol=0), (got, exact)


def test_expected_gradient_norm_of_one_layer_is_deterministic() -> None:
    """L = 1: dL/dW = g x^T whatever W, so its norm is ||g|| ||x||."""
    assert chain_expected_gradient_norms([(7, 4)], 3.0, x_norm=2.0, upstream_norm=5.0)[0] == 10.0


def test_expected_gradient_norms_equal_in_every_layer_of_square_chain() -> None:
    """Square layers: each gradient's size is a product of L - 1 chi(m) means, the same for all."""
    got = chain_expected_gradient_norms([(50, 50)] * 6 + [(1, 50)], 1.0)
    assert np.allclose(got, got[0], rtol=1e-12), got


def test_bad_expected_gradient_norm_arguments() -> None:
    with pytest.raises(ValueError, match=r"upstream_norm: expected a finite number > 0, got 0"):
        chain_expected_gradient_norms(upstream_norm=0)
    with pytest.raises(ValueError, match=r"x_norm: expected a finite number > 0, got -1\.0"):
        chain_expected_gradient_norms(x_norm=-1.0)
    with pytest.raises(ValueError, match=r"shapes\[1\] \(W2\): expected n == 3"):
        chain_expected_gradient_norms([(3, 2), (4, 4)])
    with pytest.raises(
        TypeError, match="sigma: expected a positive float or one per layer, got str"
    ):
        chain_expected_gradient_norms(sigma="1")  # type: ignore[arg-type]
