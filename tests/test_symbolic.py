"""Tests for bnlessons.symbolic, against sympy identities and the numerical chain rule."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from bnlessons.gradients import chain_gradients
from bnlessons.symbolic import (
    evaluate_matrix_expression,
    matrix_expressions_equal,
    symbolic_chain_gradients,
)


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


def test_bad_symbolic_inputs() -> None:
    with pytest.raises(ValueError, match=r"dims\[-1\]: expected 1 .*got 2"):
        symbolic_chain_gradients((3, 2))
    with pytest.raises(ValueError, match=r"dims: expected at least 2 entries.*got 1"):
        symbolic_chain_gradients((3,))
    with pytest.raises(ValueError, match=r"dims\[0\]: expected an int >= 1, got 0"):
        symbolic_chain_gradients((0, 1))
    with pytest.raises(TypeError, match=r"dims\[1\]: expected an int >= 1, got float"):
        symbolic_chain_gradients((2, 1.0))  # type: ignore[arg-type]
    s = symbolic_chain_gradients((2, 1))
    with pytest.raises(ValueError, match="values: expected a value for every symbol"):
        evaluate_matrix_expression(s.derivatives[0], {})
    with pytest.raises(ValueError, match=r"values\[x\]: expected shape \(2, 1\), got \(3, 1\)"):
        evaluate_matrix_expression(s.derivatives[0], {s.x: np.ones(3)})
    with pytest.raises(TypeError, match="expr: expected a MatrixExpr, got float"):
        evaluate_matrix_expression(1.0, {})
    with pytest.raises(TypeError, match="a: expected a MatrixExpr, got int"):
        matrix_expressions_equal(1, s.x)
