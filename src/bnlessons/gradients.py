r"""Gradients of a linear chain ``y = W_L \cdots W_2 W_1 x`` (the notes' Exercise 1, generalized).

The notes treat the scalar output of ``y = W_3 W_2 W_1 x`` as a :math:`1 \times 1` matrix, write
:math:`y = \operatorname{tr}(W_3 W_2 W_1 x)`, rotate the product with the cyclic property of the
trace and read each gradient off the hint :math:`\nabla_A \operatorname{tr}(AB) = B^T`:

.. math::

    \frac{\partial y}{\partial W_1} = (x W_3 W_2)^T, \qquad
    \frac{\partial y}{\partial W_2} = (W_1 x W_3)^T, \qquad
    \frac{\partial y}{\partial W_3} = (W_2 W_1 x)^T .

For ``L`` layers and a vector output with upstream gradient :math:`g = \partial \mathcal{L} /
\partial y` the same argument, applied to :math:`\mathcal{L} = \operatorname{tr}(g^T y)` to first
order, gives

.. math::

    \frac{\partial \mathcal{L}}{\partial W_i}
    = (W_L \cdots W_{i+1})^T \, g \, (W_{i-1} \cdots W_1 x)^T ,

which is what :func:`chain_gradients` computes (one backward sweep, no products of weight
matrices). :func:`numerical_gradient` and :func:`relative_error` check it from first principles,
and :func:`symbolic_chain_gradients` regenerates the notes' result with sympy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from bnlessons import _validate as _v
from bnlessons._typing import Float64Array
from bnlessons.batchnorm import batchnorm_backward, batchnorm_forward

__all__ = [
    "SymbolicChainGradients",
    "chain_forward",
    "chain_gradient_norms",
    "chain_gradients",
    "evaluate_matrix_expression",
    "matrix_expressions_equal",
    "normalized_chain_gradients",
    "numerical_gradient",
    "relative_error",
    "symbolic_chain_gradients",
]


# --------------------------------------------------------------------------- argument checks
def _check_weights(weights: Sequence[ArrayLike]) -> list[Float64Array]:
    _v.sequence(weights, "weights", "a sequence [W1, ..., WL] of 2-D arrays")
    if len(weights) == 0:
        raise ValueError("weights: expected at least one matrix, got an empty sequence")
    ws = []
    for i, w in enumerate(weights):
        name = f"weights[{i}] (W{i + 1})"
        arr = _v.real_array(w, name)
        if arr.ndim != 2:
            raise ValueError(f"{name}: expected a 2-D matrix, got shape {arr.shape}")
        ws.append(arr)
    for i in range(1, len(ws)):
        if ws[i].shape[1] != ws[i - 1].shape[0]:
            raise ValueError(
                f"weights[{i}] (W{i + 1}): expected {ws[i - 1].shape[0]} columns (the rows of "
                f"W{i}, shape {ws[i - 1].shape}, so that the chain composes), "
                f"got shape {ws[i].shape}"
            )
    return ws


def _check_x(x: ArrayLike, w1: Float64Array) -> tuple[Float64Array, bool]:
    """Return ``x`` as an ``(n, B)`` matrix and whether it was given as a vector."""
    arr = _v.real_array(x, "x")
    n = w1.shape[1]
    if arr.ndim == 1:
        if arr.shape[0] != n:
            raise ValueError(
                f"x: expected length {n} (the columns of W1, shape {w1.shape}), "
                f"got shape {arr.shape}"
            )
        return arr[:, None], True
    if arr.ndim == 2:
        if arr.shape[0] != n:
            raise ValueError(
                f"x: expected {n} rows (the columns of W1, shape {w1.shape}), "
                f"got shape {arr.shape}"
            )
        return arr, False
    raise ValueError(f"x: expected a vector (n,) or a matrix (n, B), got shape {arr.shape}")


# --------------------------------------------------------------------------- forward / backward
def chain_forward(weights: Sequence[ArrayLike], x: ArrayLike) -> list[Float64Array]:
    r"""Activations of the linear chain ``y = W_L ... W_1 x``, input first.

    .. math::

        a_0 = x, \qquad a_i = W_i a_{i-1} \quad (i = 1, \dots, L), \qquad y = a_L .

    Parameters
    ----------
    weights : sequence of array_like
        ``[W1, W2, ..., WL]`` in the order they are applied; ``Wi`` has shape ``(m_i, n_i)`` with
        ``n_{i+1} = m_i``.
    x : array_like
        Input of shape ``(n_1,)``, ``(n_1, 1)`` or a batch of columns ``(n_1, B)``.

    Returns
    -------
    list of ndarray
        ``[a_0, a_1, ..., a_L]`` as float64 arrays; each ``a_i`` is a vector ``(m_i,)`` when ``x``
        is a vector and an ``(m_i, B)`` matrix otherwise.

    Raises
    ------
    ValueError
        If the shapes do not compose or ``x`` does not match ``W1``.
    TypeError
        If an argument is not a real numeric array.

    Examples
    --------
    >>> import numpy as np
    >>> W1 = np.array([[1.0, 2.0], [0.0, 1.0], [1.0, 0.0]])  # 3 x 2
    >>> W2 = np.array([[1.0, 1.0, 1.0]])                      # 1 x 3
    >>> [a.tolist() for a in chain_forward([W1, W2], [1.0, 1.0])]
    [[1.0, 1.0], [3.0, 1.0, 1.0], [5.0]]
    """
    ws = _check_weights(weights)
    a, was_vector = _check_x(x, ws[0])
    acts = [a]
    for w in ws:
        a = w @ a
        acts.append(a)
    if was_vector:
        return [act[:, 0] for act in acts]
    return acts


def chain_gradients(
    weights: Sequence[ArrayLike], x: ArrayLike, upstream: ArrayLike | None = None
) -> list[Float64Array]:
    r"""Gradients of a loss with respect to every weight of ``y = W_L ... W_2 W_1 x``.

    With :math:`g = \partial \mathcal{L} / \partial y` (``upstream``),

    .. math::

        \frac{\partial \mathcal{L}}{\partial W_i}
        = \underbrace{(W_L \cdots W_{i+1})^T g}_{\partial \mathcal{L} / \partial a_i}
          \; \underbrace{(W_{i-1} \cdots W_1 x)^T}_{a_{i-1}^T} .

    It is evaluated by one forward sweep (the activations :math:`a_i`) and one backward sweep
    :math:`g_L = g,\ g_{i-1} = W_i^T g_i`, so no product of two weight matrices is formed. With
    ``upstream=None`` the output must be a scalar and :math:`g = 1`; for the notes' network this
    gives :math:`(x W_3 W_2)^T, (W_1 x W_3)^T, (W_2 W_1 x)^T`. For a batch ``x`` of ``B`` columns
    the loss is summed over the batch, i.e. the outer products are summed.

    Parameters
    ----------
    weights : sequence of array_like
        ``[W1, ..., WL]`` in the order they are applied, ``Wi`` of shape ``(m_i, n_i)``.
    x : array_like
        Input, shape ``(n_1,)``, ``(n_1, 1)`` or ``(n_1, B)``.
    upstream : array_like or None, optional
        :math:`\partial \mathcal{L} / \partial y`. For a vector ``x`` or ``B = 1``: shape
        ``(m_L,)`` or ``(m_L, 1)``; for ``B > 1``: shape ``(m_L, B)``. ``None`` means ``1`` and
        requires ``y`` to have exactly one entry.

    Returns
    -------
    list of ndarray
        ``[dL/dW1, ..., dL/dWL]``, each float64 with the shape of its weight.

    Raises
    ------
    ValueError
        If the chain shapes do not compose, ``x`` does not match ``W1``, ``upstream`` has the
        wrong shape, or ``upstream`` is None while ``y`` has more than one entry.
    TypeError
        If an argument is not a real numeric array.

    Examples
    --------
    The notes' network with small shapes; each gradient has its weight's shape:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> W1, W2, W3 = rng.normal(size=(4, 2)), rng.normal(size=(4, 4)), rng.normal(size=(1, 4))
    >>> x = np.array([0.6, 0.8])
    >>> g1, g2, g3 = chain_gradients([W1, W2, W3], x)
    >>> [g.shape for g in (g1, g2, g3)]
    [(4, 2), (4, 4), (1, 4)]
    >>> xc = x[:, None]  # the notes' forms, with x as a column
    >>> bool(np.allclose(g1, (xc @ W3 @ W2).T) and np.allclose(g2, (W1 @ xc @ W3).T))
    True
    >>> bool(np.allclose(g3, (W2 @ W1 @ xc).T))
    True
    """
    ws = _check_weights(weights)
    a, was_vector = _check_x(x, ws[0])
    acts = [a]
    for w in ws[:-1]:
        acts.append(w @ acts[-1])
    m_out, batch = ws[-1].shape[0], a.shape[1]
    y_shape: tuple[int, ...] = (m_out,) if was_vector else (m_out, batch)
    if upstream is None:
        if m_out * batch != 1:
            raise ValueError(
                "upstream: expected dL/dy for an output y of shape "
                f"{y_shape} (None needs a scalar output), got None"
            )
        g = np.ones((1, 1))
    else:
        g_arr = _v.real_array(upstream, "upstream")
        allowed = {(m_out, batch)} | ({(m_out,)} if batch == 1 else set())
        if g_arr.shape not in allowed:
            expected = " or ".join(str(s) for s in sorted(allowed, key=len))
            raise ValueError(
                f"upstream: expected the shape of y = W{len(ws)}...W1 x, {expected}, "
                f"got shape {g_arr.shape}"
            )
        g = g_arr.reshape(m_out, batch)
    grads: list[Float64Array] = [np.empty(0)] * len(ws)
    for i in range(len(ws) - 1, -1, -1):
        grads[i] = g @ acts[i].T
        if i > 0:
            g = ws[i].T @ g
    return grads


def chain_gradient_norms(
    weights: Sequence[ArrayLike], x: ArrayLike, upstream: ArrayLike | None = None
) -> Float64Array:
    r"""Frobenius norm of each layer's gradient, :math:`\|\partial \mathcal{L}/\partial W_i\|_F`.

    Because each gradient is an outer product
    :math:`(W_L \cdots W_{i+1})^T g \, a_{i-1}^T` (for one input column),

    .. math::

        \left\|\frac{\partial \mathcal{L}}{\partial W_i}\right\|_F
        = \|(W_L \cdots W_{i+1})^T g\| \; \|W_{i-1} \cdots W_1 x\| ,

    the product of the backward signal's norm and the forward activation's norm: both grow
    with the number of Gaussian layers they pass through.

    Parameters
    ----------
    weights, x, upstream
        As for :func:`chain_gradients`.

    Returns
    -------
    ndarray
        Shape ``(L,)``, the norms for ``W1 ... WL``.

    Raises
    ------
    ValueError
        As for :func:`chain_gradients`.
    TypeError
        As for :func:`chain_gradients`.

    Examples
    --------
    >>> import numpy as np
    >>> chain_gradient_norms([np.eye(2) * 2, np.eye(2) * 3], [1.0, 0.0], upstream=[0.0, 1.0])
    array([3., 2.])
    """
    grads = chain_gradients(weights, x, upstream)
    return np.array([float(np.linalg.norm(g)) for g in grads])


def normalized_chain_gradients(
    weights: Sequence[ArrayLike], x: ArrayLike, upstream: ArrayLike, *, eps: float = 1e-5
) -> tuple[list[Float64Array], list[Float64Array]]:
    r"""Activations and weight gradients of the chain with batch normalization between layers.

    Every layer but the last is followed by a batch normalization without scale and shift
    (:func:`bnlessons.batchnorm.batchnorm_forward` with :math:`\gamma = 1, \beta = 0`), which
    normalizes each unit over the ``B`` columns of the batch to mean 0 and variance 1:

    .. math::

        a_0 = x, \qquad a_i = \mathrm{BN}(W_i a_{i-1}) \quad (i < L), \qquad
        y = a_L = W_L a_{L-1} .

    The gradients of :math:`\mathcal{L} = \sum_{b} g_b^T y_b` come from one backward sweep,
    :math:`\partial \mathcal{L} / \partial W_i = \delta_i a_{i-1}^T` with :math:`\delta_i`
    the gradient at the input of the i-th normalization
    (:func:`bnlessons.batchnorm.batchnorm_backward`).

    Parameters
    ----------
    weights : sequence of array_like
        ``[W1, ..., WL]`` in the order they are applied, ``Wi`` of shape ``(m_i, n_i)``.
    x : array_like, shape (n_1, B)
        A batch of ``B >= 2`` input columns (a normalization needs a batch).
    upstream : array_like, shape (m_L, B)
        :math:`g = \partial \mathcal{L} / \partial y`.
    eps : float, default 1e-5
        The normalizations' :math:`\epsilon`.

    Returns
    -------
    activations : list of ndarray
        ``[a_0, ..., a_L]``, ``a_i`` of shape ``(m_i, B)``.
    gradients : list of ndarray
        ``[dL/dW1, ..., dL/dWL]``, each float64 with the shape of its weight.

    Raises
    ------
    ValueError
        If the shapes do not compose, ``x`` is not an ``(n_1, B)`` batch with ``B >= 2``, or
        ``upstream`` does not have the shape of ``y``.
    TypeError
        If an argument is not a real numeric array.

    Examples
    --------
    Scaling a normalized layer's weights changes nothing downstream and divides its
    gradient by the scale (exactly so as ``eps`` goes to 0):

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> W1, W2 = rng.normal(size=(3, 2)), rng.normal(size=(1, 3))
    >>> x, g = rng.normal(size=(2, 5)), rng.normal(size=(1, 5))
    >>> acts, grads = normalized_chain_gradients([W1, W2], x, g, eps=1e-12)
    >>> acts10, grads10 = normalized_chain_gradients([10 * W1, W2], x, g, eps=1e-12)
    >>> bool(np.allclose(acts10[-1], acts[-1]) and np.allclose(10 * grads10[0], grads[0]))
    True
    """
    ws = _check_weights(weights)
    a, was_vector = _check_x(x, ws[0])
    if was_vector or a.shape[1] < 2:
        raise ValueError(f"x: expected a batch (n, B) with B >= 2 columns, got shape {a.shape}")
    y_shape = (ws[-1].shape[0], a.shape[1])
    g = _v.real_array(upstream, "upstream")
    if g.shape != y_shape:
        raise ValueError(f"upstream: expected the shape of y, {y_shape}, got {g.shape}")
    acts = [a]
    caches = []
    for w in ws[:-1]:
        normalized, cache = batchnorm_forward((w @ acts[-1]).T, None, None, eps=eps)
        acts.append(np.asarray(normalized.T, dtype=np.float64))
        caches.append(cache)
    acts.append(ws[-1] @ acts[-1])
    grads: list[Float64Array] = [np.empty(0)] * len(ws)
    for i in range(len(ws) - 1, -1, -1):
        grads[i] = g @ acts[i].T
        if i > 0:
            dx, _, _ = batchnorm_backward((ws[i].T @ g).T, caches[i - 1])
            g = np.asarray(dx.T, dtype=np.float64)
    return acts, grads


# --------------------------------------------------------------------------- numerical checks
def _scalar(value: Any, name: str) -> float:
    arr = np.asarray(value)
    if arr.size != 1:
        raise ValueError(f"{name}: expected a scalar result, got an array of shape {arr.shape}")
    return float(arr.reshape(()).item())


def numerical_gradient(
    f: Callable[[Float64Array], float], x: Float64Array, h: float = 1e-6
) -> Float64Array:
    r"""Central-difference gradient of a scalar function of an array.

    .. math::

        \frac{\partial f}{\partial x_j} \approx \frac{f(x + h e_j) - f(x - h e_j)}{2h},

    with truncation error :math:`O(h^2)` and rounding error :math:`O(\epsilon |f| / h)`.
    ``x`` is perturbed in place, one entry at a time, so ``f`` sees the array it closes over;
    every entry is restored (also when ``f`` raises), leaving ``x`` unchanged afterwards.

    Parameters
    ----------
    f : callable
        Maps the array ``x`` to a scalar (a float or a size-1 array).
    x : ndarray
        Floating-point array (any shape) at which to differentiate; must be writeable.
    h : float, optional
        Step, ``> 0``. Default ``1e-6``.

    Returns
    -------
    ndarray
        float64 array with the shape of ``x``.

    Raises
    ------
    TypeError
        If ``x`` is not a floating-point ndarray.
    ValueError
        If ``h`` is not a positive finite number or ``f`` does not return a scalar.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([1.0, 2.0, 3.0])
    >>> np.round(numerical_gradient(lambda v: float(np.sum(v**2)), x), 6)
    array([2., 4., 6.])
    >>> x  # unchanged
    array([1., 2., 3.])
    """
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(
            f"x: expected a floating-point numpy array (perturbed in place), got {got}"
        )
    _v.positive_float(h, "h")
    grad = np.zeros(x.shape, dtype=np.float64)
    flat_index = np.ndindex(x.shape)
    for idx in flat_index:
        old = x[idx].item()
        try:
            x[idx] = old + h
            f_plus = _scalar(f(x), "f")
            x[idx] = old - h
            f_minus = _scalar(f(x), "f")
        finally:
            x[idx] = old
        grad[idx] = (f_plus - f_minus) / (2.0 * h)
    return grad


def relative_error(a: ArrayLike, b: ArrayLike) -> float:
    r"""Largest elementwise relative error between two arrays (the CS231n definition).

    .. math::

        \operatorname{rel}(a, b) = \max_j \frac{|a_j - b_j|}{\max(|a_j| + |b_j|,\ 10^{-300})} .

    It is symmetric, 0 for equal arrays and at most 1.

    Parameters
    ----------
    a, b : array_like
        Real arrays of the same shape.

    Returns
    -------
    float
        The maximum over entries; ``0.0`` for empty arrays.

    Raises
    ------
    ValueError
        If the shapes differ.
    TypeError
        If an argument is not a real numeric array.

    Examples
    --------
    >>> relative_error([1.0, 2.0], [1.0, 2.0])
    0.0
    >>> relative_error([1.0, 0.0], [3.0, 0.0])
    0.5
    """
    af = _v.real_array(a, "a", finite=False)
    bf = _v.real_array(b, "b", finite=False)
    if af.shape != bf.shape:
        raise ValueError(f"b: expected the shape of a, {af.shape}, got {bf.shape}")
    if af.size == 0:
        return 0.0
    denom = np.maximum(np.abs(af) + np.abs(bf), 1e-300)
    return float(np.max(np.abs(af - bf) / denom))


# --------------------------------------------------------------------------- symbolic derivation
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
    import sympy as sp

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
    import sympy as sp

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
    compare a symbolic derivative with :func:`chain_gradients` on sampled matrices.

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
    import sympy as sp

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
