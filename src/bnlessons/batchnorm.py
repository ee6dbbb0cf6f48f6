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

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bnlessons import _validate as _v
from bnlessons._blocks import (
    Blocks,
    affine,
    gradient_sums,
    input_gradient,
    moments,
    small_backward,
    small_forward,
    small_work,
)
from bnlessons._typing import Float64Array, FloatArray

__all__ = [
    "BatchNorm",
    "BatchNormCache",
    "batch_moments",
    "batchnorm_backward",
    "batchnorm_forward",
]


@dataclass(frozen=True, eq=False)
class BatchNormCache:
    """What :func:`batchnorm_backward` needs from :func:`batchnorm_forward`.

    Attributes
    ----------
    x : ndarray
        The input itself (C-contiguous; not a copy when it was so already), which the backward
        pass reads again. The normalized input is
        :math:`\\hat x = (x - \\mu) / \\sqrt{\\sigma^2 + \\epsilon}` (:attr:`x_hat`); it is
        not stored: the backward pass recomputes it (on a large batch that costs less than
        writing it to memory and reading it back).
    stats : ndarray, shape (3, C)
        The rows :attr:`mean`, :attr:`var`, :attr:`inv_std`, in float64, or in x's dtype for a
        small ``(N, C)`` batch (one cache-sized block), whose forward pass computes them there.
    gamma : ndarray of shape (C,) or None
        The scale used (None for no affine map, i.e. :math:`\\gamma = 1`).
    eps : float
        The :math:`\\epsilon` used.
    work : ndarray of shape (N + k, C), or None
        Kept by the forward pass of a small ``(N, C)`` batch, where keeping costs less than
        recomputing: :math:`x - \\mu` (:attr:`centered`) in the first N rows, then
        :math:`\\gamma / \\sqrt{\\sigma^2 + \\epsilon}` in each of k rows (a divisor of N;
        a per-channel factor repeated down rows is the faster operand); else None.
    """

    x: FloatArray
    stats: FloatArray
    gamma: FloatArray | None
    eps: float
    work: FloatArray | None = None

    @property
    def centered(self) -> FloatArray | None:
        """:math:`x - \\mu` if the forward pass kept it (a small batch), else None."""
        return None if self.work is None else self.work[: len(self.x)]

    @property
    def mean(self) -> Float64Array:
        """The batch mean :math:`\\mu` per channel, shape (C,), float64."""
        mean: Float64Array = self.stats[0].astype(np.float64, copy=False)
        return mean

    @property
    def var(self) -> Float64Array:
        """The biased batch variance :math:`\\sigma^2` per channel, shape (C,), float64."""
        var: Float64Array = self.stats[1].astype(np.float64, copy=False)
        return var

    @property
    def inv_std(self) -> Float64Array:
        """:math:`1 / \\sqrt{\\sigma^2 + \\epsilon}` per channel, shape (C,), float64."""
        inv_std: Float64Array = self.stats[2].astype(np.float64, copy=False)
        return inv_std

    @property
    def x_hat(self) -> FloatArray:
        """The normalized input :math:`\\hat x` (computed from :attr:`x` on access)."""
        x = self.x
        mean, inv_std = self.stats[0], self.stats[2]
        centered = x - _per_channel(mean, x) if self.centered is None else self.centered
        return centered * _per_channel(inv_std, x)

    @property
    def count(self) -> int:
        """Values per channel, :math:`m = N \\cdot \\prod \\text{spatial}`."""
        return int(self.x.size // self.x.shape[1])


# ---------------------------------------------------------------------------
# input checks (shared by the functions and the class)


def _check_input(x: ArrayLike, name: str = "x") -> FloatArray:
    array = _v.float_array(x, name)
    if array.ndim < 2:
        raise ValueError(
            f"{name}: expected shape (N, C) or (N, C, *spatial), got shape {array.shape}"
        )
    return array


def _check_channel_vector(v: ArrayLike | None, name: str, channels: int) -> FloatArray | None:
    if v is None:
        return None
    array = np.asarray(v)
    if array.dtype.kind != "f":
        raise TypeError(
            f"{name}: expected a float array of shape ({channels},), got {array.dtype}"
        )
    if array.shape != (channels,):
        raise ValueError(f"{name}: expected shape ({channels},), got {array.shape}")
    return array


def _check_grad(dy: ArrayLike, like: FloatArray) -> FloatArray:
    grad = np.asarray(dy)
    if grad.dtype.kind != "f":
        raise TypeError(f"dy: expected a float array, got dtype {grad.dtype}")
    if grad.shape != like.shape:
        raise ValueError(f"dy: expected the forward output's shape {like.shape}, got {grad.shape}")
    if grad.dtype != like.dtype or not grad.flags.c_contiguous:
        grad = np.ascontiguousarray(grad, dtype=like.dtype)
    return grad


def _per_channel(v: NDArray[Any], x: FloatArray) -> FloatArray:
    """``v`` (shape (C,)) in x's dtype, shaped to broadcast along axis 1 of ``x``."""
    return v.astype(x.dtype, copy=False).reshape((-1,) + (1,) * (x.ndim - 2))


# ---------------------------------------------------------------------------
# functional core


def batch_moments(x: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""Return the per-channel mean and biased variance of ``x``, stably, in float64.

    .. math::

        \mu_c = \frac1m \sum_i x_{ic}, \qquad \sigma_c^2 = \frac1m \sum_i (x_{ic} - \mu_c)^2 .

    The squared deviations are taken from the mean, as in the two-pass form, but the batch
    is read once: each block of it is shifted by a value near the mean while it is in the
    CPU cache, and the blocks' sums are combined exactly in float64. The one-pass form
    :math:`E[x^2] - E[x]^2` cancels catastrophically when :math:`|\mu| \gg \sigma` (for
    float32 ``1000 + N(0, 1)`` it is off by tens of percent).

    Parameters
    ----------
    x : array_like, shape (N, C) or (N, C, *spatial), float32 or float64

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
    return moments(np.ascontiguousarray(_check_input(x)))


def batchnorm_forward(
    x: ArrayLike, gamma: ArrayLike | None, beta: ArrayLike | None, *, eps: float = 1e-5
) -> tuple[FloatArray, BatchNormCache]:
    r"""Return the batch-normalized ``x`` (training mode) and the cache for the backward pass.

    .. math::

        \hat x_{ic} = \frac{x_{ic} - \mu_c}{\sqrt{\sigma_c^2 + \epsilon}}, \qquad
        y_{ic} = \gamma_c \hat x_{ic} + \beta_c,

    with :math:`\mu_c, \sigma_c^2` the mean and *biased* variance of channel ``c`` over the
    batch axis and all spatial axes (see :func:`batch_moments`). Computed as
    :math:`y = (x - \mu) \cdot \gamma / \sqrt{\sigma^2 + \epsilon} + \beta`.

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
        (detected from the batch variance).
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
    return _forward(_check_input(x), gamma, beta, eps=eps)


def _forward(
    x: FloatArray,
    gamma: ArrayLike | None,
    beta: ArrayLike | None,
    *,
    eps: float,
    buffer: FloatArray | None = None,
) -> tuple[FloatArray, BatchNormCache]:
    """:func:`batchnorm_forward` of a checked ``x`` (:func:`_check_input`); a small batch
    writes its ``BatchNormCache.work`` into ``buffer`` if it fits."""
    if not x.flags.c_contiguous:
        x = np.ascontiguousarray(x)
    channels = x.shape[1]
    gamma = _check_channel_vector(gamma, "gamma", channels)
    beta = _check_channel_vector(beta, "beta", channels)
    eps = _v.positive_float(eps, "eps")
    count = x.size // channels
    if count < 2:
        raise ValueError(
            f"x: expected more than 1 value per channel in training, got shape {x.shape}"
            f" ({count} value per channel)"
        )
    work: FloatArray | None = None
    if Blocks.of(x.shape, x.itemsize).whole:  # a small (N, C) batch: the same, in few calls
        work = small_work(x, buffer)
        y, stats = small_forward(x, work, gamma, beta, eps)
    else:
        mean, var = moments(x)
        inv_std = 1.0 / np.sqrt(var + eps)
        scale = inv_std if gamma is None else gamma * inv_std
        # y = (x - mean) * scale + beta, as one affine map of x
        shift = -mean * scale if beta is None else beta - mean * scale
        y = affine(x, scale, shift)
        stats = np.stack([mean, var, inv_std])
    _check_variance(stats)
    return y, BatchNormCache(x, stats, gamma, eps, work)  # (positional: a little faster)


def _check_variance(stats: FloatArray) -> None:
    """Overflow: |x| near the largest float of its dtype (confirmed by a float64 sum)."""
    var = stats[1]
    if not math.isfinite(np.add.reduce(var)) and not math.isfinite(
        np.add.reduce(var, dtype=np.float64)
    ):
        raise ValueError(f"x: expected values whose variance is finite, got {var.max()}")


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
    \mu`. Consequently ``dx`` sums to zero over each channel. (The code uses
    :math:`\hat x = (x - \mu) / \sqrt{\sigma^2 + \epsilon}` with the division folded into
    the per-channel factors.)

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
    _v.instance(cache, BatchNormCache, "cache")
    x = cache.x
    grad = _check_grad(dy, x)
    if cache.work is not None:  # a small (N, C) batch
        return small_backward(grad, cache.work, cache.stats[2])
    mean, inv_std = cache.mean, cache.inv_std
    dbeta, dot = gradient_sums(grad, x, mean)  # pass 1: sum(dy), sum(dy * (x - mean))
    dgamma = dot * inv_std  # sum(dy * x_hat)

    count = cache.count
    scale = inv_std if cache.gamma is None else cache.gamma * inv_std
    # pass 2: dx = scale * (dy - (x_hat dgamma + dbeta) / m), x_hat = (x - mean) * inv_std,
    # as dx = scale * (dy + x * slope + offset) with per-channel slope and offset
    slope = -inv_std * dgamma / count
    offset = -slope * mean - dbeta / count
    dx = input_gradient(grad, x, slope, offset, scale)
    return dx, dgamma.astype(x.dtype), dbeta.astype(x.dtype)


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
    (:func:`~bnlessons.running_stats.moving_average_step`, the rule of
    :class:`~bnlessons.running_stats.ExponentialMovingAverage`):

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
        self.num_features = _v.positive_int(num_features, "num_features")
        param_dtype = _v.float_dtype(dtype)
        self.eps = _v.positive_float(eps, "eps")
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        self.dtype = param_dtype
        self.gamma: FloatArray | None = None
        self.beta: FloatArray | None = None
        if self.affine:
            self.gamma = np.ones(num_features, dtype=param_dtype)
            self.beta = np.zeros(num_features, dtype=param_dtype)
        self._momentum = _v.optional_probability(momentum, "momentum")
        # the running mean and variance are the rows of one array: one update folds in both
        self._running: FloatArray | None = None
        self.num_batches_tracked: int | None = None
        if self.track_running_stats:
            self._running = np.stack(
                [np.zeros(num_features, param_dtype), np.ones(num_features, param_dtype)]
            )
            self.num_batches_tracked = 0
        self.training = True
        self.grad_gamma: FloatArray | None = None
        self.grad_beta: FloatArray | None = None
        self._cache: BatchNormCache | _EvalCache | None = None
        self._weights: dict[tuple[float, int], tuple[FloatArray, FloatArray]] = {}  # _track

    @property
    def momentum(self) -> float | None:
        """Weight of the new batch statistic in the running averages (None means cumulative)."""
        return self._momentum

    @momentum.setter
    def momentum(self, value: float | None) -> None:
        self._momentum = _v.optional_probability(value, "momentum")

    @property
    def running_mean(self) -> FloatArray | None:
        """The running mean, shape (C,); None with ``track_running_stats=False``.

        Assigning an array copies its values in (the array itself is not kept).
        """
        return None if self._running is None else self._running[0]

    @running_mean.setter
    def running_mean(self, value: FloatArray | None) -> None:
        self._set_running(0, value, "running_mean")

    @property
    def running_var(self) -> FloatArray | None:
        """The running (unbiased) variance, shape (C,); None with ``track_running_stats=False``.

        Assigning an array copies its values in (the array itself is not kept).
        """
        return None if self._running is None else self._running[1]

    @running_var.setter
    def running_var(self, value: FloatArray | None) -> None:
        self._set_running(1, value, "running_var")

    def _set_running(self, row: int, value: ArrayLike | None, name: str) -> None:
        if self._running is None:
            if value is None:
                return
            raise ValueError(f"{name}: expected None (track_running_stats=False), got an array")
        array = np.asarray(value)
        if array.dtype.kind not in "fiu":
            raise TypeError(f"{name}: expected a float array, got dtype {array.dtype}")
        if array.shape != (self.num_features,):
            raise ValueError(f"{name}: expected shape ({self.num_features},), got {array.shape}")
        self._running[row] = array

    def _track(self, cache: BatchNormCache) -> None:
        """Fold one training batch's mean and unbiased variance into the running statistics.

        The rule of :func:`~bnlessons.running_stats.moving_average_step`,
        :math:`a \\leftarrow (1 - w)\\, a + w\\, v`, for both rows at once, the variance's
        weight carrying the factor :math:`m / (m - 1)` that unbiases it.
        """
        assert self._running is not None and self.num_batches_tracked is not None
        self.num_batches_tracked += 1
        weight = 1.0 / self.num_batches_tracked if self._momentum is None else self._momentum
        count = cache.count
        found = self._weights.get((weight, count))
        if found is None:  # momentum None: w changes every step, so keep a few only
            if len(self._weights) >= 8:
                self._weights.clear()
            # 1 - w, and w, w m / (m - 1) down the rows (an operand of the statistics' shape
            # costs less than a broadcast one)
            keep = np.array(1.0 - weight, self.dtype)
            weights = np.empty((2, self.num_features), self.dtype)
            weights[0], weights[1] = weight, weight * count / (count - 1)
            found = self._weights[weight, count] = (keep, weights)
        keep, weights = found
        self._running *= keep
        self._running += np.multiply(cache.stats[:2], weights)

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
        if self.running_mean is None or self.running_var is None:
            raise ValueError(
                "inference_affine: expected track_running_stats=True, got False"
                " (batch statistics are used in eval mode too)"
            )
        inv_std = 1.0 / np.sqrt(self.running_var + self.eps)
        scale = inv_std if self.gamma is None else self.gamma * inv_std
        shift = -self.running_mean * scale
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
        if self.training or self._running is None:
            # the last step's cache is not needed any more: its memory is reused
            last = self._cache.work if isinstance(self._cache, BatchNormCache) else None
            y, cache = _forward(x, self.gamma, self.beta, eps=self.eps, buffer=last)
            if self.training and self.track_running_stats:
                self._track(cache)
            self._cache = cache
            return y
        scale, shift = self.inference_affine()
        y = affine(np.ascontiguousarray(x), scale, shift)
        running_mean, running_var = self._running
        inv_std = 1.0 / np.sqrt(running_var + self.eps)
        self._cache = _EvalCache(x=x, scale=scale, mean=running_mean.copy(), inv_std=inv_std)
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
            grad = _check_grad(dy, cache.x)
            dx = affine(grad, cache.scale, None)
            dbeta, dot = gradient_sums(grad, np.ascontiguousarray(cache.x), cache.mean)
            dgamma = dot * cache.inv_std
        if self.affine:  # dgamma, dbeta are new arrays: no copy needed if the dtype matches
            self.grad_gamma = dgamma.astype(self.dtype, copy=False)
            self.grad_beta = dbeta.astype(self.dtype, copy=False)
        return dx

    def __getstate__(self) -> dict[str, Any]:
        """A copy keeps the parameters, gradients and running statistics, not the last
        forward's cache (its input and work buffers): its :meth:`backward` needs a forward."""
        state = self.__dict__.copy()
        state.update(_cache=None, _weights={})
        return state

    def __repr__(self) -> str:
        return (
            f"BatchNorm({self.num_features}, eps={self.eps}, momentum={self.momentum},"
            f" affine={self.affine}, track_running_stats={self.track_running_stats})"
        )
