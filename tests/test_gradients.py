"""Tests for bnlessons.gradients, against finite differences and closed forms written here."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bnlessons.gradients import (
    chain_forward,
    chain_gradient_norms,
    chain_gradients,
    evaluate_matrix_expression,
    matrix_expressions_equal,
    normalized_chain_gradients,
    numerical_gradient,
    relative_error,
    symbolic_chain_gradients,
)


@pytest.fixture
def seed_network() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The notes' network: W1 100x10, W2 100x100, W3 1x100, N(0,1) weights, ||x|| = 1."""
    rng = np.random.default_rng(2018)
    w1 = rng.standard_normal((100, 10))
    w2 = rng.standard_normal((100, 100))
    w3 = rng.standard_normal((1, 100))
    x = rng.standard_normal(10)
    x /= np.linalg.norm(x)
    return w1, w2, w3, x


# --------------------------------------------------------------------------- chain_gradients
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
    with pytest.raises(ValueError, match="upstream must have the shape of y"):
        normalized_chain_gradients(ws, np.ones((2, 4)), np.ones((1, 3)))
    with pytest.raises(TypeError):
        normalized_chain_gradients(ws, np.ones((2, 4)), np.array([["a"] * 4]))


def test_bad_chain_gradient_norms_input() -> None:
    with pytest.raises(ValueError, match="upstream=None requires a scalar output"):
        chain_gradient_norms([np.ones((2, 2))], np.ones(2))


# --------------------------------------------------------------------------- numerical_gradient
def test_numerical_gradient_quadratic_form() -> None:
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 4))
    x = rng.standard_normal(4)
    x0 = x.copy()
    num = numerical_gradient(lambda v: float(v @ a @ v), x)
    # d/dx x^T A x = (A + A^T) x; central differences are exact for quadratics up to rounding
    np.testing.assert_allclose(num, (a + a.T) @ x0, rtol=1e-7, atol=1e-8)
    np.testing.assert_array_equal(x, x0)


def test_numerical_gradient_restores_x_when_f_raises() -> None:
    x = np.array([1.0, 2.0])
    x0 = x.copy()

    def bad(v: np.ndarray) -> float:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        numerical_gradient(bad, x)
    np.testing.assert_array_equal(x, x0)


def test_numerical_gradient_matrix_and_size_one_output() -> None:
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    num = numerical_gradient(lambda m: np.array([[np.sum(m**3)]]), x)  # type: ignore[arg-type,return-value]
    np.testing.assert_allclose(num, 3 * x**2, rtol=1e-6)


# --------------------------------------------------------------------------- relative_error
finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@given(hnp.arrays(np.float64, st.integers(1, 10), elements=finite), st.data())
def test_property_relative_error_symmetric_and_bounded(a: np.ndarray, data: st.DataObject) -> None:
    b = data.draw(hnp.arrays(np.float64, a.shape, elements=finite))
    r = relative_error(a, b)
    assert r == relative_error(b, a)
    assert 0.0 <= r <= 1.0
    assert relative_error(a, a) == 0.0


def test_relative_error_definition() -> None:
    assert relative_error([1.0, 2.0, 0.0], [1.1, 2.0, 0.0]) == pytest.approx(0.1 / 2.1)
    assert relative_error([0.0], [0.0]) == 0.0
    assert relative_error([1.0], [-1.0]) == 1.0
    assert relative_error(np.empty(0), np.empty(0)) == 0.0


# --------------------------------------------------------------------------- symbolic
def test_symbolic_seed_network_latex_and_equality() -> None:
    s = symbolic_chain_gradients()
    assert [sympy.latex(d) for d in s.derivatives] == [
        "W_{2}^{T} W_{3}^{T} x^{T}",
        "W_{3}^{T} x^{T} W_{1}^{T}",
        "x^{T} W_{1}^{T} W_{2}^{T}",
    ]
    assert [sympy.latex(n) for n in s.notes_forms] == [
        r"\left(x W_{3} W_{2}\right)^{T}",
        r"\left(W_{1} x W_{3}\right)^{T}",
        r"\left(W_{2} W_{1} x\right)^{T}",
    ]
    assert s.all_equal()
    for d, w in zip(s.derivatives, s.weights, strict=True):
        assert d.shape == w.shape
    # the hint grad_A tr(A B) = B^T applied to each rotated trace gives the notes' form
    for tr, w, n in zip(s.cyclic_traces, s.weights, s.notes_forms, strict=True):
        assert matrix_expressions_equal(sympy.diff(tr, w), n)


def test_symbolic_matches_chain_gradients_numerically(
    seed_network: tuple[np.ndarray, ...],
) -> None:
    w1, w2, w3, x = seed_network
    s = symbolic_chain_gradients()
    values = dict(zip((*s.weights, s.x), (w1, w2, w3, x), strict=True))
    for d, n, g in zip(
        s.derivatives, s.notes_forms, chain_gradients([w1, w2, w3], x), strict=True
    ):
        # Rounding of a matrix product is bounded relative to the size of the terms, not of
        # each entry (an entry that cancels can differ relatively by more): the tolerance is
        # set on the largest entry, so the test holds for every BLAS kernel.
        atol = 1e-12 * np.abs(g).max()
        np.testing.assert_allclose(evaluate_matrix_expression(d, values), g, rtol=0, atol=atol)
        np.testing.assert_allclose(evaluate_matrix_expression(n, values), g, rtol=0, atol=atol)


def test_symbolic_longer_chain() -> None:
    s = symbolic_chain_gradients((2, 3, 4, 5, 1))
    assert len(s.derivatives) == 4
    assert s.all_equal()
    assert sympy.latex(s.notes_forms[1]) == r"\left(W_{1} x W_{4} W_{3}\right)^{T}"


def test_matrix_expressions_equal_detects_difference() -> None:
    a = sympy.MatrixSymbol("A", 3, 3)
    b = sympy.MatrixSymbol("B", 3, 3)
    assert matrix_expressions_equal(sympy.Transpose(a * b), b.T * a.T)
    assert not matrix_expressions_equal(sympy.Transpose(a * b), a.T * b.T)


# --------------------------------------------------------------------------- bad input
W1, W2, W3 = np.ones((4, 2)), np.ones((4, 4)), np.ones((1, 4))


def test_bad_chain_shapes_do_not_compose() -> None:
    with pytest.raises(ValueError, match=r"weights\[1\] \(W2\).*\(3, 5\).*expected 5 == rows"):
        chain_gradients([W1, np.ones((3, 5))], np.ones(2))


def test_bad_x_does_not_match_w1() -> None:
    with pytest.raises(ValueError, match=r"x must have length 2 .*got shape \(3,\)"):
        chain_gradients([W1, W2, W3], np.ones(3))
    with pytest.raises(ValueError, match=r"x must have 2 rows.*got shape \(3, 1\)"):
        chain_forward([W1, W2, W3], np.ones((3, 1)))
    with pytest.raises(ValueError, match=r"x must be a vector .*got shape \(2, 1, 1\)"):
        chain_gradients([W1], np.ones((2, 1, 1)), upstream=np.ones(4))


def test_bad_upstream_shape() -> None:
    with pytest.raises(ValueError, match=r"upstream must have the shape of y.*\(4,\).*got shape"):
        chain_gradients([W1, W2], np.ones(2), upstream=np.ones(3))
    with pytest.raises(ValueError, match=r"upstream.*expected \(4, 5\), got shape \(4,\)"):
        chain_gradients([W1, W2], np.ones((2, 5)), upstream=np.ones(4))


def test_bad_upstream_none_with_vector_output() -> None:
    with pytest.raises(
        ValueError, match=r"upstream=None requires a scalar output.*got y of shape"
    ):
        chain_gradients([W1, W2], np.ones(2))
    with pytest.raises(ValueError, match=r"upstream=None.*\(1, 3\)"):
        chain_gradients([W1, W2, W3], np.ones((2, 3)))


def test_bad_weights_not_2d_empty_or_wrong_type() -> None:
    with pytest.raises(ValueError, match=r"weights\[0\] \(W1\) must be a 2-D matrix, got shape"):
        chain_gradients([np.ones(3)], np.ones(3), upstream=np.ones(1))
    with pytest.raises(ValueError, match="at least one matrix"):
        chain_gradients([], np.ones(3))
    with pytest.raises(TypeError, match="weights must be a sequence"):
        chain_gradients(np.ones((2, 2)), np.ones(2))


def test_bad_dtype_and_non_finite() -> None:
    with pytest.raises(TypeError, match=r"weights\[0\].*real numeric dtype, got dtype <U1"):
        chain_gradients([np.array([["a"]])], np.ones(1))
    with pytest.raises(TypeError, match="x must have a real numeric dtype, got dtype complex"):
        chain_gradients([W1, W2, W3], np.ones(2, dtype=complex))
    with pytest.raises(ValueError, match="upstream must contain only finite"):
        chain_gradients([W1], np.ones(2), upstream=np.array([1, 1, 1, np.nan]))


def test_bad_numerical_gradient_inputs() -> None:
    with pytest.raises(TypeError, match=r"x must be a floating-point numpy array.*got int64"):
        numerical_gradient(lambda v: 0.0, np.array([1, 2], dtype=np.int64))
    with pytest.raises(TypeError, match="got list"):
        numerical_gradient(lambda v: 0.0, [1.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"h must be a positive finite float, got 0\.0"):
        numerical_gradient(lambda v: 0.0, np.ones(2), h=0.0)
    with pytest.raises(ValueError, match=r"f must return a scalar, got an array of shape \(2,\)"):
        numerical_gradient(lambda v: v, np.ones(2))  # type: ignore[arg-type,return-value]


def test_bad_relative_error_inputs() -> None:
    with pytest.raises(ValueError, match=r"same shape, expected \(2,\) for b, got \(3,\)"):
        relative_error(np.ones(2), np.ones(3))
    with pytest.raises(TypeError, match="a must have a real numeric dtype"):
        relative_error(np.array(["x"]), np.ones(1))


def test_bad_symbolic_inputs() -> None:
    with pytest.raises(ValueError, match=r"dims\[-1\] must be 1 .*got 2"):
        symbolic_chain_gradients((3, 2))
    with pytest.raises(ValueError, match=r"at least 2 entries.*got 1"):
        symbolic_chain_gradients((3,))
    with pytest.raises(ValueError, match=r"dims\[0\] must be >= 1, got 0"):
        symbolic_chain_gradients((0, 1))
    with pytest.raises(TypeError, match=r"dims\[1\] must be an int, got float"):
        symbolic_chain_gradients((2, 1.0))  # type: ignore[arg-type]
    s = symbolic_chain_gradients((2, 1))
    with pytest.raises(ValueError, match="values must give every symbol"):
        evaluate_matrix_expression(s.derivatives[0], {})
    with pytest.raises(ValueError, match=r"values\[x\] must have shape \(2, 1\), got \(3, 1\)"):
        evaluate_matrix_expression(s.derivatives[0], {s.x: np.ones(3)})
    with pytest.raises(TypeError, match="expr must be a sympy matrix expression"):
        evaluate_matrix_expression(1.0, {})
    with pytest.raises(TypeError, match="a must be a sympy matrix expression"):
        matrix_expressions_equal(1, s.x)
