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
matrices). :func:`bnlessons.checks.numerical_gradient` checks it from first principles, and
:func:`bnlessons.symbolic.symbolic_chain_gradients` regenerates the notes' result with sympy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from bnlessons import _validate as _v
from bnlessons._typing import Float64Array
from bnlessons.batchnorm import batchnorm_backward, batchnorm_forward
from bnlessons.random_matrices import (
    SEED_SHAPES,
    SigmaLike,
    _check_shapes,
    _check_sigmas,
    chi_mean,
)

__all__ = [
    "chain_expected_gradient_norms",
    "chain_forward",
    "chain_gradient_norms",
    "chain_gradients",
    "normalized_chain_gradients",
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


# --------------------------------------------------------------------------- expected sizes
def chain_expected_gradient_norms(
    shapes: Sequence[Sequence[int]] = SEED_SHAPES,
    sigma: SigmaLike = 1.0,
    x_norm: float = 1.0,
    upstream_norm: float = 1.0,
) -> Float64Array:
    r"""Exact :math:`E\|\partial \mathcal{L}/\partial W_i\|_F` for every layer of a Gaussian chain.

    For a fixed input :math:`x` and a fixed upstream gradient :math:`g` (for the loss
    :math:`\mathcal{L} = g^T y`), each gradient is the outer product of a backward signal and a
    forward activation (:func:`chain_gradient_norms`),

    .. math::

        \left\|\frac{\partial \mathcal{L}}{\partial W_i}\right\|_F
        = \|(W_L \cdots W_{i+1})^T g\| \; \|W_{i-1} \cdots W_1 x\| .

    With i.i.d. :math:`N(0, \sigma_j^2)` entries in :math:`W_j` (shape :math:`m_j \times n_j`),
    rotation invariance makes the forward factor :math:`\|x\| \prod_{j<i} \sigma_j \chi_{m_j}`
    and the backward one, through the transposed matrices, :math:`\|g\| \prod_{j>i} \sigma_j
    \chi_{n_j}`, with independent chi variables. The two factors involve disjoint weights, so

    .. math::

        E\left\|\frac{\partial \mathcal{L}}{\partial W_i}\right\|_F
        = \|x\|\,\|g\| \prod_{j < i} \sigma_j\,\mu_\chi(m_j)
          \prod_{j > i} \sigma_j\,\mu_\chi(n_j)

    (:func:`bnlessons.random_matrices.chi_mean`). The forward part is
    :func:`bnlessons.random_matrices.chain_expected_output_norms` of the layers below, the
    backward part the same for the transposed chain run backwards.

    Parameters
    ----------
    shapes : sequence of (int, int)
        Weight shapes ``[(m_1, n_1), ..., (m_L, n_L)]`` in application order; default the notes'
        network :data:`bnlessons.random_matrices.SEED_SHAPES`.
    sigma : float or sequence of float, optional
        Entry standard deviation, one for all layers or one per layer.
    x_norm : float, optional
        :math:`\|x\|`, ``> 0``; default 1.
    upstream_norm : float, optional
        :math:`\|g\|`, ``> 0``; default 1 (a scalar output with :math:`g = 1`).

    Returns
    -------
    ndarray
        ``[E||dL/dW_1||_F, ..., E||dL/dW_L||_F]``, shape ``(L,)``.

    Raises
    ------
    ValueError
        If the shapes do not compose, a dimension is < 1, or a sigma, ``x_norm`` or
        ``upstream_norm`` is <= 0.
    TypeError
        If an argument has the wrong type.

    Examples
    --------
    In the notes' network every layer's gradient has the same expected size,
    :math:`\mu_\chi(100)^2 \approx 99.5`, since each is a product of two chi factors with
    100 degrees of freedom:

    >>> [round(float(v), 3) for v in chain_expected_gradient_norms()]
    [99.501, 99.501, 99.501]
    """
    sh = _check_shapes(shapes)
    sig = _check_sigmas(sigma, len(sh))
    xn = _v.positive_float(x_norm, "x_norm")
    gn = _v.positive_float(upstream_norm, "upstream_norm")
    forward = np.array([s * chi_mean(m) for (m, _), s in zip(sh, sig, strict=True)])
    backward = np.array([s * chi_mean(n) for (_, n), s in zip(sh, sig, strict=True)])
    below = np.concatenate([[1.0], np.cumprod(forward[:-1])])  # prod_{j<i}
    above = np.concatenate([np.cumprod(backward[:0:-1])[::-1], [1.0]])  # prod_{j>i}
    out: Float64Array = xn * gn * below * above
    return out
