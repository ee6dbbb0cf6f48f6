r"""Layer normalization (Ba, Kiros & Hinton, 2016): each example normalized over its features.

Batch normalization takes its statistics over the batch, so a prediction depends on the
other examples of the batch, and the statistics grow noisy as the batch shrinks. Layer
normalization takes them over the features of each example instead. For an input ``x`` of
shape ``(..., D)`` (the semantics of ``torch.nn.LayerNorm(D)``), every example ``i`` (every
index of the leading axes) is normalized over its last axis,

.. math::

    \mu_i = \frac1D \sum_j x_{ij}, \qquad
    \sigma_i^2 = \frac1D \sum_j (x_{ij} - \mu_i)^2, \qquad
    \hat x_{ij} = \frac{x_{ij} - \mu_i}{\sqrt{\sigma_i^2 + \epsilon}}, \qquad
    y_{ij} = \gamma_j \hat x_{ij} + \beta_j,

with :math:`\gamma, \beta` of shape ``(D,)``. The same computation serves training and test
time: there are no running statistics. :func:`layernorm_forward` and
:func:`layernorm_backward` are the computation and its gradient; :class:`LayerNorm` keeps
:math:`\gamma, \beta` and their gradients. The statistics are computed in float64 (two
passes), so a float32 input far from zero (``1000 + N(0, 1)``) is normalized accurately.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from bnlessons import _validate as _v
from bnlessons._typing import Float64Array, FloatArray

__all__ = ["LayerNorm", "LayerNormCache", "layernorm_backward", "layernorm_forward"]


@dataclass(frozen=True, eq=False)
class LayerNormCache:
    """What :func:`layernorm_backward` needs from :func:`layernorm_forward`.

    Attributes
    ----------
    x_hat : ndarray
        The normalized input :math:`\\hat x`, shape and dtype of ``x``.
    inv_std : ndarray
        :math:`1 / \\sqrt{\\sigma_i^2 + \\epsilon}` per example, shape ``x.shape[:-1] + (1,)``
        (float64).
    gamma : ndarray of shape (D,) or None
        The scale used (None for no affine map, i.e. :math:`\\gamma = 1`).
    eps : float
        The :math:`\\epsilon` used.
    """

    x_hat: FloatArray
    inv_std: Float64Array
    gamma: FloatArray | None
    eps: float


def _check_feature_vector(v: ArrayLike | None, name: str, features: int) -> FloatArray | None:
    if v is None:
        return None
    array = _v.float_array(v, name)
    if array.shape != (features,):
        raise ValueError(f"{name}: expected shape ({features},), got {array.shape}")
    return array


def layernorm_forward(
    x: ArrayLike, gamma: ArrayLike | None, beta: ArrayLike | None, *, eps: float = 1e-5
) -> tuple[FloatArray, LayerNormCache]:
    r"""Return ``x`` normalized over its last axis, and the cache for the backward pass.

    .. math::

        \hat x_{ij} = \frac{x_{ij} - \mu_i}{\sqrt{\sigma_i^2 + \epsilon}}, \qquad
        y_{ij} = \gamma_j \hat x_{ij} + \beta_j,

    with :math:`\mu_i, \sigma_i^2` the mean and *biased* variance of example ``i`` over the
    last axis.

    Parameters
    ----------
    x : array_like, shape (..., D), float32 or float64
        Examples along the leading axes, features along the last.
    gamma, beta : array_like of shape (D,), or None
        The learned scale and shift of each feature; None for none (scale 1, shift 0).
    eps : float, default 1e-5
        A positive number added to every variance.

    Returns
    -------
    y : ndarray
        The normalized ``x`` (its shape and dtype).
    cache : LayerNormCache
        What :func:`layernorm_backward` needs.

    Raises
    ------
    TypeError
        A non-float ``x``, ``gamma`` or ``beta``.
    ValueError
        ``x`` without axes, ``gamma``/``beta`` not of shape ``(D,)``, ``eps <= 0``, or NaN or
        inf in ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> y, cache = layernorm_forward(np.array([[1.0, 3.0], [10.0, 30.0]]), None, None, eps=0.0001)
    >>> np.round(y, 4).tolist()
    [[-1.0, 1.0], [-1.0, 1.0]]
    """
    x = _v.float_array(x, "x", min_ndim=1)
    features = x.shape[-1]
    gamma = _check_feature_vector(gamma, "gamma", features)
    beta = _check_feature_vector(beta, "beta", features)
    eps = _v.positive_float(eps, "eps")
    x64 = x.astype(np.float64)
    if not np.all(np.isfinite(x64)):
        raise ValueError("x: expected finite values, got NaN or inf")
    centered = x64 - x64.mean(axis=-1, keepdims=True)
    var = np.mean(centered * centered, axis=-1, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (centered * inv_std).astype(x.dtype)
    y = x_hat if gamma is None else x_hat * gamma.astype(x.dtype)
    if beta is not None:
        y = y + beta.astype(x.dtype)
    return y, LayerNormCache(x_hat=x_hat, inv_std=inv_std, gamma=gamma, eps=eps)


def layernorm_backward(
    dy: ArrayLike, cache: LayerNormCache
) -> tuple[FloatArray, FloatArray, FloatArray]:
    r"""Return ``(dx, dgamma, dbeta)`` given the upstream gradient ``dy = dL/dy``.

    With :math:`g_{ij} = \gamma_j \, \partial L / \partial y_{ij}` (the gradient reaching
    :math:`\hat x`) and means over the last axis,

    .. math::

        \frac{\partial L}{\partial x_{ij}} = \frac{1}{\sqrt{\sigma_i^2 + \epsilon}}
            \Big( g_{ij} - \frac1D \sum_k g_{ik}
                  - \hat x_{ij} \frac1D \sum_k g_{ik} \hat x_{ik} \Big),

        \frac{\partial L}{\partial \gamma_j} = \sum_i \frac{\partial L}{\partial y_{ij}}
            \hat x_{ij}, \qquad
        \frac{\partial L}{\partial \beta_j} = \sum_i \frac{\partial L}{\partial y_{ij}},

    the same algebra as batch norm's backward pass with the roles of the axes exchanged.
    ``dx`` of each example sums to zero, and it is orthogonal to its :math:`\hat x` up to
    :math:`\epsilon`: :math:`\sum_j \partial L / \partial x_{ij} \, \hat x_{ij} =
    \frac{\epsilon}{\sigma_i^2 + \epsilon} \frac{1}{\sqrt{\sigma_i^2 + \epsilon}}
    \sum_j g_{ij} \hat x_{ij}` (a change of the example's scale does not change the output,
    except through :math:`\epsilon`).

    Parameters
    ----------
    dy : array_like
        :math:`\partial L / \partial y`, a float array shaped like ``y``.
    cache : LayerNormCache
        The cache :func:`layernorm_forward` returned with ``y``.

    Returns
    -------
    dx : ndarray
        :math:`\partial L / \partial x`, with the shape and dtype of ``x``.
    dgamma, dbeta : ndarray, shape (D,)
        The parameter gradients, also when the forward pass had no ``gamma`` or ``beta``.

    Examples
    --------
    >>> import numpy as np
    >>> y, cache = layernorm_forward(np.array([[1.0, 2.0, 4.0]]), None, None)
    >>> dx, dgamma, dbeta = layernorm_backward(np.ones_like(y), cache)
    >>> bool(np.abs(dx).max() < 1e-12), dbeta.tolist()
    (True, [1.0, 1.0, 1.0])
    """
    _v.instance(cache, LayerNormCache, "cache")
    x_hat = cache.x_hat
    grad = _v.float_array(dy, "dy")
    if grad.shape != x_hat.shape:
        raise ValueError(
            f"dy: expected the forward output's shape {x_hat.shape}, got {grad.shape}"
        )
    g64, x_hat64 = grad.astype(np.float64), x_hat.astype(np.float64)
    features = x_hat.shape[-1]
    dgamma = np.sum((g64 * x_hat64).reshape(-1, features), axis=0)
    dbeta = np.sum(g64.reshape(-1, features), axis=0)
    if cache.gamma is not None:
        g64 = g64 * cache.gamma.astype(np.float64)
    dx = cache.inv_std * (
        g64
        - g64.mean(axis=-1, keepdims=True)
        - x_hat64 * np.mean(g64 * x_hat64, axis=-1, keepdims=True)
    )
    dtype = x_hat.dtype
    return dx.astype(dtype), dgamma.astype(dtype), dbeta.astype(dtype)


class LayerNorm:
    r"""Layer normalization over the last axis, like ``torch.nn.LayerNorm(num_features)``.

    :meth:`forward` is :func:`layernorm_forward` with the layer's :math:`\gamma, \beta`, in
    training and at test time alike (the statistics are the example's own, so there is
    nothing to track); :meth:`backward` is :func:`layernorm_backward` and sets
    ``grad_gamma`` and ``grad_beta``.

    Parameters
    ----------
    num_features : int
        The size ``D`` of the last axis of the input.
    eps : float, default 1e-5
    affine : bool, default True
        Learn :math:`\gamma` (ones) and :math:`\beta` (zeros); if False both are None and the
        output is :math:`\hat x`.
    dtype : float32 or float64, default float64
        Dtype of the parameters. The output has the input's dtype.

    Attributes
    ----------
    gamma, beta : ndarray of shape (D,) or None
    grad_gamma, grad_beta : ndarray of shape (D,) or None
        Set by :meth:`backward`.

    Examples
    --------
    >>> import numpy as np
    >>> ln = LayerNorm(3)
    >>> y = ln(np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]]))
    >>> np.round(y, 3).tolist()
    [[-1.225, 0.0, 1.225], [-1.225, 0.0, 1.225]]
    >>> dx = ln.backward(np.ones_like(y))
    >>> ln.grad_beta.tolist()
    [2.0, 2.0, 2.0]
    """

    def __init__(
        self,
        num_features: int,
        *,
        eps: float = 1e-5,
        affine: bool = True,
        dtype: type[np.floating[Any]] | np.dtype[Any] = np.float64,
    ) -> None:
        self.num_features = _v.positive_int(num_features, "num_features")
        self.eps = _v.positive_float(eps, "eps")
        self.affine = _v.boolean(affine, "affine")
        self.dtype = _v.float_dtype(dtype)
        self.gamma: FloatArray | None = None
        self.beta: FloatArray | None = None
        if self.affine:
            self.gamma = np.ones(self.num_features, dtype=self.dtype)
            self.beta = np.zeros(self.num_features, dtype=self.dtype)
        self.grad_gamma: FloatArray | None = None
        self.grad_beta: FloatArray | None = None
        self._cache: LayerNormCache | None = None

    def forward(self, x: ArrayLike) -> FloatArray:
        """Return ``x`` normalized over its last axis; shape and dtype of ``x``."""
        x = _v.float_array(x, "x", min_ndim=1)
        if x.shape[-1] != self.num_features:
            raise ValueError(
                f"x: expected {self.num_features} features (last axis), got shape {x.shape}"
            )
        y, self._cache = layernorm_forward(x, self.gamma, self.beta, eps=self.eps)
        return y

    __call__ = forward

    def backward(self, dy: ArrayLike) -> FloatArray:
        """Return ``dL/dx`` for the last :meth:`forward`; set ``grad_gamma``, ``grad_beta``."""
        if self._cache is None:
            raise ValueError("dy: expected a forward() call before backward(), got none")
        dx, dgamma, dbeta = layernorm_backward(dy, self._cache)
        if self.affine:
            self.grad_gamma = dgamma.astype(self.dtype, copy=False)
            self.grad_beta = dbeta.astype(self.dtype, copy=False)
        return dx

    def __repr__(self) -> str:
        return f"LayerNorm({self.num_features}, eps={self.eps}, affine={self.affine})"
