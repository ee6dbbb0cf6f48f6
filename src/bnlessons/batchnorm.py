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

from bnlessons._blocks import Blocks
from bnlessons.running_stats import ExponentialMovingAverage, check_momentum

__all__ = [
    "BatchNorm",
    "BatchNormCache",
    "batch_moments",
    "batchnorm_backward",
    "batchnorm_forward",
]

FloatArray = NDArray[np.floating[Any]]


@dataclass(frozen=True, eq=False)
class BatchNormCache:
    """What :func:`batchnorm_backward` needs from :func:`batchnorm_forward`.

    Attributes
    ----------
    centered : ndarray
        :math:`x - \\mu`, shape and dtype of ``x``. The normalized input is
        :math:`\\hat x = (x - \\mu) / \\sqrt{\\sigma^2 + \\epsilon}` (:attr:`x_hat`); keeping
        the centered input instead saves one pass over the data in the forward pass.
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

    centered: FloatArray
    mean: NDArray[np.float64]
    var: NDArray[np.float64]
    inv_std: NDArray[np.float64]
    gamma: FloatArray | None
    eps: float

    @property
    def x_hat(self) -> FloatArray:
        """The normalized input :math:`\\hat x` (computed from :attr:`centered` on access)."""
        return self.centered * _per_channel(self.inv_std, self.centered)

    @property
    def count(self) -> int:
        """Values per channel, :math:`m = N \\cdot \\prod \\text{spatial}`."""
        return int(self.centered.size // self.centered.shape[1])


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
    if not eps > 0 or not math.isfinite(eps):
        raise ValueError(f"eps: expected a finite value > 0, got {eps!r}")
    return float(eps)


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
# two-pass moments (the blocked passes live in bnlessons._blocks)


def _check_mean(mean: NDArray[np.float64], dtype: np.dtype[Any]) -> None:
    """NaN or inf anywhere in a channel makes its mean so: detect it there, at no cost."""
    if not math.isfinite(np.add.reduce(mean)):
        bad = np.flatnonzero(~np.isfinite(mean))[:10].tolist()
        raise ValueError(
            f"x: expected finite values, got NaN or inf (or a sum overflowing {dtype})"
            f" in channel(s) {bad}"
        )


def _center(
    x: FloatArray, centered: FloatArray
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Write ``centered = x - mean``; return the mean and the biased variance (two passes)."""
    blocks = Blocks.of(x.shape, x.itemsize)
    count = x.size // x.shape[1]
    if blocks.whole:  # a small (N, C) batch: the formulas on whole arrays
        mean = np.add.reduce(x, axis=0).astype(np.float64) / count  # <= 256 rows
        _check_mean(mean, x.dtype)
        np.subtract(x, mean.astype(x.dtype), out=centered)
        var = np.einsum("ij,ij->j", centered, centered).astype(np.float64) / count
        return mean, var
    x2, d2 = blocks.view(x), blocks.view(centered)
    sums, squares = blocks.partials(x.dtype), blocks.partials(x.dtype)
    for j, rows in blocks.ranges:  # pass 1: the mean
        blocks.sum(x2[rows], out=blocks.partial(sums, j, rows))
    mean = blocks.total(sums) / count
    _check_mean(mean, x.dtype)
    shift = blocks.coefficient(mean, x.dtype)
    for j, rows in blocks.ranges:  # pass 2: the deviations and their squares
        d = d2[rows]
        np.subtract(x2[rows], blocks.block(shift, rows), out=d)
        blocks.dot(d, d, out=blocks.partial(squares, j, rows))
    var = blocks.total(squares) / count
    return mean, var


# ---------------------------------------------------------------------------
# functional core


def batch_moments(x: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""Return the per-channel mean and biased variance of ``x``, stably, in float64.

    .. math::

        \mu_c = \frac1m \sum_i x_{ic}, \qquad \sigma_c^2 = \frac1m \sum_i (x_{ic} - \mu_c)^2 .

    Two passes: the mean first, then the squared deviations from it. Sums are taken over
    blocks of the batch and the blocks' sums added in float64. The one-pass form
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
    x = np.ascontiguousarray(_check_input(x))
    return _center(x, np.empty_like(x))


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
    return _forward(x, gamma, beta, eps=eps)


def _forward(
    x: ArrayLike,
    gamma: ArrayLike | None,
    beta: ArrayLike | None,
    *,
    eps: float,
    centered: FloatArray | None = None,
) -> tuple[FloatArray, BatchNormCache]:
    """:func:`batchnorm_forward`, writing ``x - mean`` into a given buffer (a layer's)."""
    x = _check_input(x)
    if not x.flags.c_contiguous:
        x = np.ascontiguousarray(x)
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
    if centered is None or centered.shape != x.shape or centered.dtype != x.dtype:
        centered = np.empty_like(x)
    mean, var = _center(x, centered)
    if not math.isfinite(np.add.reduce(var)):  # overflow: |x| near the largest float of its dtype
        raise ValueError(f"x: expected values whose variance is finite, got {var.max()}")
    inv_std = 1.0 / np.sqrt(var + eps)
    scale = inv_std if gamma is None else gamma * inv_std
    y = _affine(centered, scale, beta)
    cache = BatchNormCache(
        centered=centered, mean=mean, var=var, inv_std=inv_std, gamma=gamma, eps=eps
    )
    return y, cache


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
    if not isinstance(cache, BatchNormCache):
        raise TypeError(f"cache: expected a BatchNormCache, got {type(cache).__name__}")
    centered = cache.centered
    grad = _check_grad(dy, centered)
    dtype = centered.dtype
    dbeta, dot = _gradient_sums(grad, centered)  # pass 1: the two sums
    dgamma = dot * cache.inv_std  # sum(dy * x_hat)

    count = cache.count
    scale = cache.inv_std if cache.gamma is None else cache.gamma * cache.inv_std
    blocks = Blocks.of(centered.shape, centered.itemsize)
    along_centered = blocks.coefficient(dgamma * cache.inv_std / count, dtype)
    along_one = blocks.coefficient(dbeta / count, dtype)
    factor = blocks.coefficient(scale, dtype)
    if blocks.whole:  # a small (N, C) batch: the formula on whole arrays
        dx = centered * along_centered
        dx += along_one
        np.subtract(grad, dx, out=dx)
        dx *= factor
        return dx, dgamma.astype(dtype), dbeta.astype(dtype)
    dy2, d2 = blocks.view(grad), blocks.view(centered)
    dx = np.empty_like(centered)
    dx2 = blocks.view(dx)
    for _, rows in blocks.ranges:  # pass 2: dx = scale * (dy - (x_hat dgamma + dbeta) / m)
        dxb = dx2[rows]
        np.multiply(d2[rows], blocks.block(along_centered, rows), out=dxb)
        dxb += blocks.block(along_one, rows)
        np.subtract(dy2[rows], dxb, out=dxb)
        dxb *= blocks.block(factor, rows)
    return dx, dgamma.astype(dtype), dbeta.astype(dtype)


def _gradient_sums(
    dy: FloatArray, centered: FloatArray
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-channel ``sum(dy)`` and ``sum(dy * centered)``, one pass in blocks."""
    blocks = Blocks.of(dy.shape, dy.itemsize)
    if blocks.whole:
        dot = np.einsum("ij,ij->j", dy, centered).astype(np.float64)
        return np.add.reduce(dy, axis=0).astype(np.float64), dot
    dy2, d2 = blocks.view(dy), blocks.view(centered)
    sums, dots = blocks.partials(dy.dtype), blocks.partials(dy.dtype)
    for j, rows in blocks.ranges:
        blocks.sum(dy2[rows], out=blocks.partial(sums, j, rows))
        blocks.dot(dy2[rows], d2[rows], out=blocks.partial(dots, j, rows))
    return blocks.total(sums), blocks.total(dots)


def _affine(x: FloatArray, scale: NDArray[Any], shift: NDArray[Any] | None) -> FloatArray:
    """Return ``x * scale + shift`` per channel (no shift if None), one pass in blocks."""
    blocks = Blocks.of(x.shape, x.itemsize)
    if blocks.whole:  # (copy=False: no copy of a vector already in x's dtype)
        y = x * scale.astype(x.dtype, copy=False)
        if shift is not None:
            y += shift.astype(x.dtype, copy=False)
        return y
    y = np.empty_like(x)
    x2, y2 = blocks.view(x), blocks.view(y)
    factor = blocks.coefficient(scale, x.dtype)
    offset = None if shift is None else blocks.coefficient(shift, x.dtype)
    for _, rows in blocks.ranges:
        yb = y2[rows]
        np.multiply(x2[rows], blocks.block(factor, rows), out=yb)
        if offset is not None:
            yb += blocks.block(offset, rows)
    return y


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
        """Weight of the new batch statistic in the running averages (None means cumulative)."""
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
            # the last step's cache is not needed any more: its memory is reused
            last = self._cache.centered if isinstance(self._cache, BatchNormCache) else None
            y, cache = _forward(x, self.gamma, self.beta, eps=self.eps, centered=last)
            if self.training and self._mean_average is not None and self._var_average is not None:
                count = cache.count
                self._mean_average.update(cache.mean)
                self._var_average.update(cache.var * (count / (count - 1)))  # unbiased
            self._cache = cache
            return y
        scale, shift = self.inference_affine()
        y = _affine(np.ascontiguousarray(x), scale, shift)
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
            grad = _check_grad(dy, cache.x)
            dx = _affine(grad, cache.scale, None)
            centered = cache.x - _per_channel(cache.mean, cache.x)
            dbeta, dot = _gradient_sums(grad, centered)
            dgamma = dot * cache.inv_std
        if self.affine:  # dgamma, dbeta are new arrays: no copy needed if the dtype matches
            self.grad_gamma = dgamma.astype(self.dtype, copy=False)
            self.grad_beta = dbeta.astype(self.dtype, copy=False)
        return dx

    def __repr__(self) -> str:
        return (
            f"BatchNorm({self.num_features}, eps={self.eps}, momentum={self.momentum},"
            f" affine={self.affine}, track_running_stats={self.track_running_stats})"
        )
