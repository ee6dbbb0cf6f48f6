r"""Batch normalization (Ioffe & Szegedy, 2015): a functional core and a stateful layer.

For an input ``x`` of shape ``(N, C)`` or ``(N, C, *spatial)`` every channel ``c`` is
normalized with the statistics of its :math:`m = N \cdot \prod \text{spatial}` values in the
batch (the paper's section 3.2 for convolutions),

.. math::

    \mu_c = \frac{1}{m} \sum_i x_{ic}, \qquad
    \sigma_c^2 = \frac{1}{m} \sum_i (x_{ic} - \mu_c)^2, \qquad
    \hat x_{ic} = \frac{x_{ic} - \mu_c}{\sqrt{\sigma_c^2 + \epsilon}}, \qquad
    y_{ic} = \gamma_c \hat x_{ic} + \beta_c .

:func:`batchnorm_forward` and :func:`batchnorm_backward` are that computation and its
gradient (Algorithm 1 and the backprop equations of section 3). :class:`BatchNorm` keeps
:math:`\gamma, \beta` and the running statistics used at test time (Algorithm 2), with the
semantics of ``torch.nn.BatchNorm1d`` / ``BatchNorm2d``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bnlessons.running_stats import ExponentialMovingAverage, check_momentum

__all__ = ["BatchNorm", "BatchNormCache", "batchnorm_backward", "batchnorm_forward"]

FloatArray = NDArray[np.floating[Any]]


@dataclass(frozen=True, eq=False)
class BatchNormCache:
    """What :func:`batchnorm_backward` needs from :func:`batchnorm_forward`.

    Attributes
    ----------
    x_hat : ndarray
        The normalized input :math:`\\hat x`, shape and dtype of ``x``.
    mean : ndarray, shape (C,)
        The batch mean :math:`\\mu` per channel (float64).
    var : ndarray, shape (C,)
        The biased batch variance :math:`\\sigma^2` per channel (float64).
    inv_std : ndarray, shape (C,)
        :math:`1 / \\sqrt{\\sigma^2 + \\epsilon}` per channel (float64).
    gamma : ndarray of shape (C,) or None
        The scale used (None for no affine map, i.e. :math:`\\gamma = 1`).
    eps : float
        The :math:`\\epsilon` used.
    """

    x_hat: FloatArray
    mean: NDArray[np.float64]
    var: NDArray[np.float64]
    inv_std: NDArray[np.float64]
    gamma: FloatArray | None
    eps: float

    @property
    def count(self) -> int:
        """Values per channel, :math:`m = N \\cdot \\prod \\text{spatial}`."""
        return int(self.x_hat.size // self.x_hat.shape[1])


# ---------------------------------------------------------------------------
# input checks (shared by the functions and the class)


def _check_input(x: ArrayLike, name: str = "x") -> FloatArray:
    array = np.asarray(x)
    if array.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: expected a float32 or float64 array, got dtype {array.dtype}")
    if array.ndim < 2:
        raise ValueError(
            f"{name}: expected shape (N, C) or (N, C, *spatial), got shape {array.shape}"
        )
    return array


def _check_eps(eps: float) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating)):
        raise TypeError(f"eps: expected a positive float, got {type(eps).__name__}")
    if not eps > 0 or not np.isfinite(eps):
        raise ValueError(f"eps: expected a finite value > 0, got {eps!r}")
    return float(eps)


def _check_channel_vector(v: ArrayLike | None, name: str, channels: int) -> FloatArray | None:
    if v is None:
        return None
    array = np.asarray(v)
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(
            f"{name}: expected a float array of shape ({channels},), got {array.dtype}"
        )
    if array.shape != (channels,):
        raise ValueError(f"{name}: expected shape ({channels},), got {array.shape}")
    return array


def _per_channel(v: NDArray[Any], x: FloatArray) -> FloatArray:
    """``v`` (shape (C,)) in x's dtype, shaped to broadcast along axis 1 of ``x``."""
    return v.astype(x.dtype, copy=False).reshape((-1,) + (1,) * (x.ndim - 2))


def _reduce_axes(x: NDArray[Any]) -> tuple[int, ...]:
    """All axes but the channel axis 1: the batch axis and the spatial axes."""
    return (0, *range(2, x.ndim))


def _channel_dot(a: FloatArray, b: FloatArray) -> FloatArray:
    """Per-channel :math:`\\sum_i a_{ic} b_{ic}` over all axes but 1, without a temporary."""
    letters = "abcdefghijklmnopqrstuvwxyz"[: a.ndim]
    result: FloatArray = np.einsum(f"{letters},{letters}->b", a, b)
    return result


# ---------------------------------------------------------------------------
# functional core


def batch_moments(x: FloatArray) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""Return the per-channel mean and biased variance of ``x``, stably, in float64.

    Two passes: the mean first, then the mean of the squared deviations,

    .. math::

        \mu_c = \frac1m \sum_i x_{ic}, \qquad \sigma_c^2 = \frac1m \sum_i (x_{ic} - \mu_c)^2,

    with float64 accumulators. The one-pass form :math:`E[x^2] - E[x]^2` cancels
    catastrophically when :math:`|\mu| \gg \sigma` (for float32 ``1000 + N(0, 1)`` it is off
    by tens of percent).

    Parameters
    ----------
    x : ndarray, shape (N, C) or (N, C, *spatial), float32 or float64

    Returns
    -------
    mean, var : ndarray, shape (C,), float64

    Examples
    --------
    >>> import numpy as np
    >>> mean, var = batch_moments(np.array([[1.0, 10.0], [3.0, 10.0]]))
    >>> mean.tolist(), var.tolist()
    ([2.0, 10.0], [1.0, 0.0])
    """
    axes = _reduce_axes(x)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf show in the result
        mean = x.mean(axis=axes, dtype=np.float64)
        centered = x - _per_channel(mean, x)
        var = np.square(centered, out=centered).sum(axis=axes, dtype=np.float64)
    var /= x.size // x.shape[1]
    return mean, var


def batchnorm_forward(
    x: ArrayLike, gamma: ArrayLike | None, beta: ArrayLike | None, *, eps: float = 1e-5
) -> tuple[FloatArray, BatchNormCache]:
    r"""Return the batch-normalized ``x`` (training mode) and the cache for the backward pass.

    .. math::

        \hat x_{ic} = \frac{x_{ic} - \mu_c}{\sqrt{\sigma_c^2 + \epsilon}}, \qquad
        y_{ic} = \gamma_c \hat x_{ic} + \beta_c,

    with :math:`\mu_c, \sigma_c^2` the mean and *biased* variance of channel ``c`` over the
    batch axis and all spatial axes (see :func:`batch_moments`).

    Parameters
    ----------
    x : array_like, shape (N, C) or (N, C, *spatial), float32 or float64
    gamma, beta : array_like of shape (C,), or None
        Scale and shift. ``None`` means :math:`\gamma = 1` (resp. :math:`\beta = 0`).
    eps : float, default 1e-5
        Added to the variance; must be > 0.

    Returns
    -------
    y : ndarray
        Same shape and dtype as ``x``.
    cache : BatchNormCache

    Raises
    ------
    ValueError
        Bad shapes, ``eps <= 0``, a channel with a single value, or NaN/inf in the batch
        (detected from the batch statistics).
    TypeError
        A non-float ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1.0, 5.0], [3.0, 7.0]])
    >>> y, cache = batchnorm_forward(x, np.ones(2), np.zeros(2), eps=0.01)
    >>> np.round(y, 4).tolist()
    [[-0.995, -0.995], [0.995, 0.995]]
    >>> cache.mean.tolist(), cache.var.tolist()
    ([2.0, 6.0], [1.0, 1.0])
    """
    x = _check_input(x)
    channels = x.shape[1]
    gamma = _check_channel_vector(gamma, "gamma", channels)
    beta = _check_channel_vector(beta, "beta", channels)
    eps = _check_eps(eps)
    count = x.size // channels
    if count < 2:
        raise ValueError(
            f"x: expected more than 1 value per channel in training, got shape {x.shape}"
            f" ({count} value per channel)"
        )
    mean, var = batch_moments(x)
    if not (np.isfinite(mean).all() and np.isfinite(var).all()):
        bad = np.flatnonzero(~(np.isfinite(mean) & np.isfinite(var)))
        raise ValueError(
            f"x: expected finite values, got NaN or inf (non-finite batch statistics in"
            f" channel(s) {bad[:10].tolist()})"
        )
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = np.subtract(x, _per_channel(mean, x))
    x_hat *= _per_channel(inv_std, x)
    y = x_hat.copy() if gamma is None else x_hat * _per_channel(gamma, x)
    if beta is not None:
        y += _per_channel(beta, x)
    return y, BatchNormCache(
        x_hat=x_hat, mean=mean, var=var, inv_std=inv_std, gamma=gamma, eps=eps
    )


def batchnorm_backward(
    dy: ArrayLike, cache: BatchNormCache
) -> tuple[FloatArray, FloatArray, FloatArray]:
    r"""Return ``(dx, dgamma, dbeta)`` given the upstream gradient ``dy = dL/dy``.

    With :math:`m` values per channel (sums over the batch and spatial axes),

    .. math::

        \frac{\partial L}{\partial \beta_c} = \sum_i \frac{\partial L}{\partial y_{ic}},
        \qquad
        \frac{\partial L}{\partial \gamma_c} = \sum_i \frac{\partial L}{\partial y_{ic}}
                                                \hat x_{ic},

        \frac{\partial L}{\partial x_{ic}} = \frac{\gamma_c}{\sqrt{\sigma_c^2 + \epsilon}}
            \left( \frac{\partial L}{\partial y_{ic}}
                   - \frac{1}{m} \frac{\partial L}{\partial \beta_c}
                   - \frac{\hat x_{ic}}{m} \frac{\partial L}{\partial \gamma_c} \right),

    the compact form of the paper's chain of derivatives through :math:`\hat x, \sigma^2,
    \mu`. Consequently ``dx`` sums to zero over each channel.

    Parameters
    ----------
    dy : array_like
        Same shape as the forward output; float.
    cache : BatchNormCache
        From :func:`batchnorm_forward`.

    Returns
    -------
    dx : ndarray
        Shape and dtype of the forward input.
    dgamma, dbeta : ndarray, shape (C,)
        In the input's dtype (computed even when ``gamma``/``beta`` were None).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1.0, 5.0], [3.0, 7.0], [8.0, 6.0]])
    >>> y, cache = batchnorm_forward(x, np.ones(2), np.zeros(2))
    >>> dx, dgamma, dbeta = batchnorm_backward(np.ones_like(y), cache)
    >>> bool(np.abs(dx).max() < 1e-12), dbeta.tolist()
    (True, [3.0, 3.0])
    """
    if not isinstance(cache, BatchNormCache):
        raise TypeError(f"cache: expected a BatchNormCache, got {type(cache).__name__}")
    x_hat = cache.x_hat
    grad = np.asarray(dy)
    if not np.issubdtype(grad.dtype, np.floating):
        raise TypeError(f"dy: expected a float array, got dtype {grad.dtype}")
    if grad.shape != x_hat.shape:
        raise ValueError(
            f"dy: expected the forward output's shape {x_hat.shape}, got {grad.shape}"
        )
    grad = grad.astype(x_hat.dtype, copy=False)
    count = cache.count
    dbeta = grad.sum(axis=_reduce_axes(grad))
    dgamma = _channel_dot(grad, x_hat)
    scale = cache.inv_std if cache.gamma is None else cache.gamma * cache.inv_std
    # dx = scale * (dy - (x_hat * dgamma + dbeta) / m), built in one output buffer
    dx = np.multiply(x_hat, _per_channel(dgamma / count, x_hat))
    dx += _per_channel(dbeta / count, x_hat)
    np.subtract(grad, dx, out=dx)
    dx *= _per_channel(scale, x_hat)
    return dx, dgamma, dbeta


# ---------------------------------------------------------------------------
# stateful layer


@dataclass(frozen=True, eq=False)
class _EvalCache:
    """What the eval-mode backward needs: the input and the folded affine map."""

    x: FloatArray
    scale: NDArray[Any]
    mean: NDArray[Any]
    inv_std: NDArray[Any]


class BatchNorm:
    r"""Batch normalization layer with running statistics, like ``torch.nn.BatchNorm1d/2d``.

    In training mode (the default) :meth:`forward` normalizes with the batch statistics
    (:func:`batchnorm_forward`) and folds them into exponential moving averages
    (:class:`~bnlessons.running_stats.ExponentialMovingAverage`):

    .. math::

        \hat\mu \leftarrow (1 - \alpha)\, \hat\mu + \alpha\, \mu_B, \qquad
        \hat\sigma^2 \leftarrow (1 - \alpha)\, \hat\sigma^2
            + \alpha\, \frac{m}{m - 1}\, \sigma_B^2,

    with :math:`\alpha` = ``momentum`` (``None``: :math:`\alpha = 1/t`, the cumulative
    average) and the *unbiased* batch variance. In eval mode the output is the folded affine
    map of Algorithm 2, :math:`y = x \cdot s + t` per channel with
    :math:`s = \gamma / \sqrt{\hat\sigma^2 + \epsilon}`, :math:`t = \beta - \hat\mu s`
    (:meth:`inference_affine`). With ``track_running_stats=False`` no running statistics are
    kept and batch statistics are used in both modes.

    Parameters
    ----------
    num_features : int
        The number of channels ``C`` (axis 1 of the input).
    eps : float, default 1e-5
    momentum : float in [0, 1] or None, default 0.1
    affine : bool, default True
        Learn :math:`\gamma` (ones) and :math:`\beta` (zeros); if False both are None and the
        output is :math:`\hat x`.
    track_running_stats : bool, default True
    dtype : float32 or float64, default float64
        Dtype of the parameters and running statistics. The output has the input's dtype.

    Attributes
    ----------
    gamma, beta : ndarray of shape (C,) or None
    running_mean, running_var : ndarray of shape (C,) or None
    num_batches_tracked : int or None
    training : bool
    grad_gamma, grad_beta : ndarray of shape (C,) or None
        Set by :meth:`backward`.

    Examples
    --------
    >>> import numpy as np
    >>> bn = BatchNorm(2)
    >>> x = np.array([[1.0, 10.0], [3.0, 30.0]])
    >>> y = bn(x)
    >>> np.round(y, 3).tolist()
    [[-1.0, -1.0], [1.0, 1.0]]
    >>> bn.running_mean.tolist(), bn.running_var.tolist()
    ([0.2, 2.0], [1.1, 20.9])
    >>> dx = bn.backward(np.array([[1.0, 0.0], [0.0, 0.0]]))
    >>> bn.grad_beta.tolist()
    [1.0, 0.0]
    >>> y_eval = bn.eval()(x)
    >>> scale, shift = bn.inference_affine()
    >>> bool(np.allclose(y_eval, x * scale + shift))
    True
    """

    def __init__(
        self,
        num_features: int,
        *,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        dtype: type[np.floating[Any]] | np.dtype[Any] = np.float64,
    ) -> None:
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)):
            raise TypeError(
                f"num_features: expected an int >= 1, got {type(num_features).__name__}"
            )
        if num_features < 1:
            raise ValueError(f"num_features: expected an int >= 1, got {num_features}")
        param_dtype = np.dtype(dtype)
        if param_dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype: expected float32 or float64, got {param_dtype}")
        self.num_features = int(num_features)
        self.eps = _check_eps(eps)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        self.dtype = param_dtype
        self.gamma: FloatArray | None = None
        self.beta: FloatArray | None = None
        if self.affine:
            self.gamma = np.ones(num_features, dtype=param_dtype)
            self.beta = np.zeros(num_features, dtype=param_dtype)
        self._mean_average: ExponentialMovingAverage | None = None
        self._var_average: ExponentialMovingAverage | None = None
        self._momentum = check_momentum(momentum)
        if self.track_running_stats:
            zeros, ones = np.zeros(num_features, param_dtype), np.ones(num_features, param_dtype)
            self._mean_average = ExponentialMovingAverage(momentum, initial=zeros)
            self._var_average = ExponentialMovingAverage(momentum, initial=ones)
        self.training = True
        self.grad_gamma: FloatArray | None = None
        self.grad_beta: FloatArray | None = None
        self._cache: BatchNormCache | _EvalCache | None = None

    # -- running statistics (stored in the two moving averages) --------------------------

    @property
    def momentum(self) -> float | None:
        """Weight of the new batch statistic in the running averages (None: cumulative)."""
        return self._momentum

    @momentum.setter
    def momentum(self, value: float | None) -> None:
        self._momentum = check_momentum(value)
        for average in (self._mean_average, self._var_average):
            if average is not None:
                average.momentum = self._momentum

    @property
    def running_mean(self) -> FloatArray | None:
        """Running mean per channel (zeros initially; None without running statistics)."""
        return None if self._mean_average is None else self._mean_average.value

    @running_mean.setter
    def running_mean(self, value: ArrayLike) -> None:
        if self._mean_average is None:
            raise ValueError("running_mean: expected track_running_stats=True, got False")
        self._mean_average.value = value

    @property
    def running_var(self) -> FloatArray | None:
        """Running unbiased variance per channel (ones initially; None without them)."""
        return None if self._var_average is None else self._var_average.value

    @running_var.setter
    def running_var(self, value: ArrayLike) -> None:
        if self._var_average is None:
            raise ValueError("running_var: expected track_running_stats=True, got False")
        self._var_average.value = value

    @property
    def num_batches_tracked(self) -> int | None:
        """Training batches folded into the running statistics (None without them)."""
        return None if self._mean_average is None else self._mean_average.count

    # -- modes ----------------------------------------------------------------------------

    def train(self, mode: bool = True) -> BatchNorm:
        """Switch to training mode (or to eval mode with ``mode=False``); returns self."""
        self.training = bool(mode)
        return self

    def eval(self) -> BatchNorm:
        """Switch to eval (inference) mode; returns self."""
        return self.train(False)

    def inference_affine(self) -> tuple[FloatArray, FloatArray]:
        r"""Return ``(scale, shift)``, shape (C,), of the eval-mode map ``y = x*scale + shift``.

        .. math::

            s_c = \frac{\gamma_c}{\sqrt{\hat\sigma_c^2 + \epsilon}}, \qquad
            t_c = \beta_c - \hat\mu_c\, s_c,

        Algorithm 2's folded form (with :math:`\gamma = 1, \beta = 0` when ``affine=False``).
        Raises ValueError when no running statistics are tracked.
        """
        if self._mean_average is None or self._var_average is None:
            raise ValueError(
                "inference_affine: expected track_running_stats=True, got False"
                " (batch statistics are used in eval mode too)"
            )
        inv_std = 1.0 / np.sqrt(self._var_average.value + self.eps)
        scale = inv_std if self.gamma is None else self.gamma * inv_std
        shift = -self._mean_average.value * scale
        if self.beta is not None:
            shift = shift + self.beta
        return scale, shift

    # -- forward and backward -------------------------------------------------------------

    def forward(self, x: ArrayLike) -> FloatArray:
        """Return the normalized batch; shape and dtype of ``x`` (see the class docstring)."""
        x = _check_input(x)
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"x: expected {self.num_features} channels (axis 1), got shape {x.shape}"
            )
        if self.training or self._mean_average is None or self._var_average is None:
            y, cache = batchnorm_forward(x, self.gamma, self.beta, eps=self.eps)
            if self.training and self._mean_average is not None and self._var_average is not None:
                count = cache.count
                self._mean_average.update(cache.mean)
                self._var_average.update(cache.var * (count / (count - 1)))
            self._cache = cache
            return y
        scale, shift = self.inference_affine()
        y = np.multiply(x, _per_channel(scale, x))
        y += _per_channel(shift, x)
        inv_std = 1.0 / np.sqrt(self._var_average.value + self.eps)
        self._cache = _EvalCache(
            x=x, scale=scale, mean=self._mean_average.value.copy(), inv_std=inv_std
        )
        return y

    __call__ = forward

    def backward(self, dy: ArrayLike) -> FloatArray:
        """Return ``dL/dx`` for the last :meth:`forward`; set ``grad_gamma``, ``grad_beta``.

        After a training-mode forward this is :func:`batchnorm_backward`; after an eval-mode
        forward the layer is the affine map ``x*scale + shift``, so ``dx = dy*scale``,
        ``grad_gamma = sum(dy * (x - running_mean) / sqrt(running_var + eps))`` and
        ``grad_beta = sum(dy)`` per channel.
        """
        cache = self._cache
        if cache is None:
            raise ValueError("dy: expected a forward() call before backward(), got none")
        if isinstance(cache, BatchNormCache):
            dx, dgamma, dbeta = batchnorm_backward(dy, cache)
        else:
            x = cache.x
            grad = np.asarray(dy)
            if not np.issubdtype(grad.dtype, np.floating):
                raise TypeError(f"dy: expected a float array, got dtype {grad.dtype}")
            if grad.shape != x.shape:
                raise ValueError(
                    f"dy: expected the forward output's shape {x.shape}, got {grad.shape}"
                )
            grad = grad.astype(x.dtype, copy=False)
            dx = grad * _per_channel(cache.scale, x)
            dbeta = grad.sum(axis=_reduce_axes(x))
            x_hat = (x - _per_channel(cache.mean, x)) * _per_channel(cache.inv_std, x)
            dgamma = _channel_dot(grad, x_hat)
        if self.affine:
            self.grad_gamma = dgamma.astype(self.dtype)
            self.grad_beta = dbeta.astype(self.dtype)
        return dx

    def __repr__(self) -> str:
        return (
            f"BatchNorm({self.num_features}, eps={self.eps}, momentum={self.momentum},"
            f" affine={self.affine}, track_running_stats={self.track_running_stats})"
        )
