r"""The notes' Exercise 1 derived symbolically: the trace trick carried out by sympy.

The scalar output of :math:`y = W_L \cdots W_1 x` equals its trace. By the cyclic property
:math:`y = \operatorname{tr}(W_i B_i)` with :math:`B_i = W_{i-1} \cdots W_1 x W_L \cdots W_{i+1}`,
and the hint :math:`\nabla_A \operatorname{tr}(AB) = B^T` gives
:math:`\partial y / \partial W_i = B_i^T`. :func:`symbolic_chain_gradients` lets sympy take the
derivatives and states the notes' forms beside them; :func:`matrix_expressions_equal` proves
them equal, and :func:`evaluate_matrix_expression` evaluates either on sampled matrices, to be
compared with :func:`bnlessons.gradients.chain_gradients`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp
from numpy.typing import ArrayLike

from bnlessons import _validate as _v
from bnlessons._typing import Float64Array

__all__ = [
    "SymbolicChainGradients",
    "evaluate_matrix_expression",
    "matrix_expressions_equal",
    "symbolic_chain_gradients",
]


@dataclass(frozen=True)
class SymbolicChainGradients:
    r"""The notes' Exercise 1 as sympy matrix expressions (see :func:`symbolic_chain_gradients`).

    Attributes
    ----------
    x : sympy.MatrixSymbol
        The input, an ``(n, 1)`` column matrix.
    weights : tuple of sympy.MatrixSymbol
        ``(W1, ..., WL)``.
    trace : sympy.Trace
        :math:`\operatorname{tr}(W_L \cdots W_1 x)`, equal to the scalar output ``y``.
    derivatives : tuple of sympy.MatrixExpr
        sympy's derivative of ``trace`` with respect to each ``Wi`` (e.g.
        :math:`W_2^T W_3^T x^T` for ``W1``).
    notes_forms : tuple of sympy.MatrixExpr
        The notes' unevaluated forms :math:`(W_{i-1} \cdots W_1 x W_L \cdots W_{i+1})^T`, e.g.
        :math:`(x W_3 W_2)^T`; ``.doit()`` expands the transpose of the product.
    cyclic_traces : tuple of sympy.Trace
        The rotated traces :math:`\operatorname{tr}(W_i W_{i-1} \cdots W_1 x W_L \cdots W_{i+1})`
        to which the hint :math:`\nabla_A \operatorname{tr}(AB) = B^T` is applied.
    """

    x: Any
    weights: tuple[Any, ...]
    trace: Any
    derivatives: tuple[Any, ...]
    notes_forms: tuple[Any, ...]
    cyclic_traces: tuple[Any, ...]

    def all_equal(self) -> bool:
        """Whether each sympy derivative equals the notes' form (:func:`matrix_expressions_equal`).

        Examples
        --------
        >>> symbolic_chain_gradients((2, 3, 1)).all_equal()
        True
        """
        return all(
            matrix_expressions_equal(d, n)
            for d, n in zip(self.derivatives, self.notes_forms, strict=True)
        )


def symbolic_chain_gradients(dims: Sequence[int] = (10, 100, 100, 1)) -> SymbolicChainGradients:
    r"""Differentiate :math:`y = \operatorname{tr}(W_L \cdots W_1 x)` with sympy matrix algebra.

    ``x`` is an ``(n_0, 1)`` column, ``Wi`` is ``(n_i, n_{i-1})`` and the output is ``1 x 1``, so
    :math:`y = \operatorname{tr}(y)`. By the cyclic property
    :math:`y = \operatorname{tr}(W_i \, B_i)` with
    :math:`B_i = W_{i-1} \cdots W_1 x W_L \cdots W_{i+1}`, and the hint
    :math:`\nabla_A \operatorname{tr}(AB) = B^T` gives :math:`\partial y / \partial W_i = B_i^T`.
    The default ``dims`` are the notes' network: ``x`` in :math:`\mathbb{R}^{10}`,
    ``W1`` 100x10, ``W2`` 100x100, ``W3`` 1x100.

    Parameters
    ----------
    dims : sequence of int
        ``(n_0, n_1, ..., n_L)``: input size then the output size of each layer; ``n_L`` must be
        1 (scalar output) and ``L >= 1``.

    Returns
    -------
    SymbolicChainGradients
        Symbols, sympy's derivatives and the notes' forms; render any of them with
        ``sympy.latex``.

    Raises
    ------
    ValueError
        If fewer than two dims are given, a dim is < 1, or the last dim is not 1.
    TypeError
        If a dim is not an integer.

    Examples
    --------
    >>> import sympy
    >>> s = symbolic_chain_gradients()
    >>> [sympy.latex(d) for d in s.derivatives]
    ['W_{2}^{T} W_{3}^{T} x^{T}', 'W_{3}^{T} x^{T} W_{1}^{T}', 'x^{T} W_{1}^{T} W_{2}^{T}']
    >>> for n in s.notes_forms:
    ...     print(sympy.latex(n))
    \left(x W_{3} W_{2}\right)^{T}
    \left(W_{1} x W_{3}\right)^{T}
    \left(W_{2} W_{1} x\right)^{T}
    >>> s.all_equal()
    True
    """
    _v.sequence(dims, "dims", "a sequence of ints")
    if len(dims) < 2:
        raise ValueError(f"dims: expected at least 2 entries (n_0, ..., n_L), got {len(dims)}")
    for i, d in enumerate(dims):
        _v.positive_int(d, f"dims[{i}]")
    if dims[-1] != 1:
        raise ValueError(
            _v.expected("dims[-1]", "1 (the trace trick needs a scalar output)", dims[-1])
        )
    n_layers = len(dims) - 1
    x = sp.MatrixSymbol("x", int(dims[0]), 1)
    ws = tuple(
        sp.MatrixSymbol(f"W{i + 1}", int(dims[i + 1]), int(dims[i])) for i in range(n_layers)
    )
    # product W_L ... W_1 x
    trace = sp.Trace(sp.MatMul(*reversed(ws), x))
    derivatives = tuple(sp.diff(trace, w) for w in ws)
    notes_forms = []
    cyclic = []
    for i in range(n_layers):
        # B_i = W_{i-1} ... W_1 x W_L ... W_{i+1}
        factors = [*reversed(ws[:i]), x, *reversed(ws[i + 1 :])]
        b = sp.MatMul(*factors) if len(factors) > 1 else factors[0]
        notes_forms.append(sp.Transpose(b))
        cyclic.append(sp.Trace(sp.MatMul(ws[i], b)))
    return SymbolicChainGradients(
        x=x,
        weights=ws,
        trace=trace,
        derivatives=derivatives,
        notes_forms=tuple(notes_forms),
        cyclic_traces=tuple(cyclic),
    )


def matrix_expressions_equal(a: Any, b: Any) -> bool:
    r"""Whether two sympy matrix expressions are identical after evaluation.

    Both sides are evaluated with ``.doit()`` (which expands
    :math:`(ABC)^T = C^T B^T A^T` and :math:`(A^T)^T = A`); the check is then that the shapes
    agree and :math:`a - b` simplifies to the zero matrix. This is a proof of equality for
    arbitrary matrices of those shapes, not a numerical spot check (use
    :func:`evaluate_matrix_expression` for that).

    Parameters
    ----------
    a, b : sympy.MatrixExpr
        Matrix expressions.

    Returns
    -------
    bool

    Raises
    ------
    TypeError
        If an argument is not a sympy matrix expression.

    Examples
    --------
    >>> import sympy
    >>> A, B = sympy.MatrixSymbol("A", 2, 3), sympy.MatrixSymbol("B", 3, 2)
    >>> matrix_expressions_equal(sympy.Transpose(A * B), B.T * A.T)
    True
    >>> matrix_expressions_equal(A * B, (A * B).T)
    False
    """
    _v.instance(a, sp.MatrixExpr, "a")
    _v.instance(b, sp.MatrixExpr, "b")
    if a.shape != b.shape:
        return False
    ad, bd = a.doit(), b.doit()
    if ad == bd:
        return True
    diff = sp.simplify((ad - bd).doit())
    return isinstance(diff, sp.ZeroMatrix) or diff == sp.ZeroMatrix(*a.shape)


def evaluate_matrix_expression(expr: Any, values: Mapping[Any, ArrayLike]) -> Float64Array:
    r"""Evaluate a sympy matrix expression numerically by substituting arrays for its symbols.

    The expression is compiled with ``sympy.lambdify`` to numpy matrix products, so an
    expression over 100x100 symbols costs a few products, not a symbolic expansion. Use it to
    compare a symbolic derivative with :func:`~bnlessons.gradients.chain_gradients` on sampled
    matrices.

    Parameters
    ----------
    expr : sympy.MatrixExpr
        The expression, e.g. an entry of :attr:`SymbolicChainGradients.derivatives`.
    values : mapping
        ``{MatrixSymbol: array}`` for every free symbol of ``expr``; each array must have the
        symbol's shape (a vector of length n is accepted for an ``(n, 1)`` symbol).

    Returns
    -------
    ndarray
        float64 array of the expression's shape.

    Raises
    ------
    ValueError
        If a symbol has no value or a value has the wrong shape.
    TypeError
        If ``expr`` is not a sympy matrix expression.

    Examples
    --------
    >>> import numpy as np, sympy
    >>> A, x = sympy.MatrixSymbol("A", 2, 2), sympy.MatrixSymbol("x", 2, 1)
    >>> evaluate_matrix_expression(x.T * A.T, {A: np.eye(2) * 2, x: [1.0, 3.0]})
    array([[2., 6.]])
    """
    _v.instance(expr, sp.MatrixExpr, "expr")
    symbols = sorted(expr.free_symbols, key=lambda s: str(s))
    args = []
    for s in symbols:
        if s not in values:
            raise ValueError(
                f"values: expected a value for every symbol of expr, got none for {s}"
            )
        arr = _v.real_array(values[s], f"values[{s}]")
        if arr.ndim == 1 and s.shape[1] == 1:
            arr = arr[:, None]
        if arr.shape != tuple(s.shape):
            raise ValueError(f"values[{s}]: expected shape {tuple(s.shape)}, got {arr.shape}")
        args.append(arr)
    fn = sp.lambdify(symbols, expr, modules="numpy")
    out = np.asarray(fn(*args), dtype=np.float64)
    return out.reshape(tuple(int(d) for d in expr.shape))
