"""Running statistics: the exponential moving average and streaming moments.

Two ways to summarise a stream of batches, both used by batch normalization:

* :class:`ExponentialMovingAverage` is what a BatchNorm layer keeps for test time
  (Algorithm 2 of Ioffe & Szegedy, 2015), in PyTorch's convention:
  ``running = (1 - momentum) * running + momentum * new``.
* :class:`RunningMoments` is the exact streaming mean and variance (Welford's update,
  Chan et al.'s merge). Merging the moments of shards equals the moments of their
  concatenation, which is how synchronized BatchNorm combines statistics across devices.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.lib.array_utils import normalize_axis_tuple
from numpy.typing import ArrayLike, NDArray

from bnlessons import _validate as _v
from bnlessons._typing import Float64Array

__all__ = [
    "ExponentialMovingAverage",
    "RunningMoments",
    "combine_moments",
    "moving_average_step",
]


def moving_average_step(average: NDArray[Any], value: ArrayLike, weight: float) -> None:
    r"""Fold ``value`` into ``average`` in place: :math:`a \leftarrow (1 - w)\, a + w\, v`.

    The one update rule of every moving average here (:class:`ExponentialMovingAverage`, the
    running statistics of :class:`bnlessons.batchnorm.BatchNorm`). A float ``value`` is first
    converted to the average's dtype (arithmetic of mixed dtypes is slower).

    Parameters
    ----------
    average : ndarray
        The average, updated in place.
    value : array_like
        The new value, broadcastable to ``average``.
    weight : float
        :math:`w`, the weight of the new value (the momentum, or :math:`1/t` for the
        cumulative average).

    Examples
    --------
    >>> a = np.array([0.0, 10.0])
    >>> moving_average_step(a, [10.0, 20.0], 0.1)
    >>> a.tolist()
    [1.0, 11.0]
    """
    new = value if isinstance(value, np.ndarray) else np.asarray(value)
    average *= 1.0 - weight
    if new.dtype.kind == "f":  # converted to the average's dtype, then weighted: one call
        average += np.multiply(new, weight, dtype=average.dtype)
    else:
        average += weight * new


class ExponentialMovingAverage:
    r"""Exponential moving average with PyTorch's momentum convention.

    After the ``t``-th call of :meth:`update` with the value :math:`v_t`,

    .. math::

        a_t = (1 - f_t)\, a_{t-1} + f_t\, v_t, \qquad
        f_t = \begin{cases} \text{momentum} & \text{if momentum is a number,} \\
                            1 / t & \text{if momentum is None,} \end{cases}

    so ``momentum=None`` gives the cumulative (plain) average of all values seen. Note the
    convention: PyTorch's ``momentum=0.1`` weights the *new* value by 0.1; CS231n and Keras
    write the same average with ``0.9`` on the *old* value.

    Parameters
    ----------
    momentum : float in [0, 1] or None, default 0.1
        Weight of the new value, or None for the cumulative average.
    initial : array_like, default 0.0
        :math:`a_0`. A scalar initial value takes the shape of the first update;
        otherwise every update must have the initial value's shape. The average is
        updated in place, in the initial value's floating dtype (float64 for integers).

    Examples
    --------
    >>> ema = ExponentialMovingAverage(momentum=0.5)
    >>> ema.update(2.0); ema.update(4.0)
    >>> float(ema.value), ema.count
    (2.5, 2)
    >>> cumulative = ExponentialMovingAverage(momentum=None)
    >>> for v in (1.0, 2.0, 6.0):
    ...     cumulative.update(v)
    >>> float(cumulative.value)
    3.0
    """

    def __init__(self, momentum: float | None = 0.1, *, initial: ArrayLike = 0.0) -> None:
        self.momentum = _v.optional_probability(momentum, "momentum")
        value = np.array(initial)
        if not np.issubdtype(value.dtype, np.floating):
            value = value.astype(np.float64)
        self._value: NDArray[Any] = value
        self._count = 0

    @property
    def value(self) -> NDArray[Any]:
        """The current average :math:`a_t` (the array itself, updated in place)."""
        return self._value

    @value.setter
    def value(self, new: ArrayLike) -> None:
        new_array = np.asarray(new)
        if new_array.shape != self._value.shape:
            raise ValueError(f"value: expected shape {self._value.shape}, got {new_array.shape}")
        self._value[...] = new_array

    @property
    def count(self) -> int:
        """The number of updates so far, :math:`t`."""
        return self._count

    @count.setter
    def count(self, new: int) -> None:
        self._count = _v.nonnegative_int(new, "count")

    def update(self, value: ArrayLike) -> None:
        """Fold ``value`` into the average (in place) and increment :attr:`count`."""
        new = value if isinstance(value, np.ndarray) else np.asarray(value)
        average = self._value
        if new.shape != average.shape:
            if average.ndim != 0 or self._count != 0:
                raise ValueError(f"value: expected shape {average.shape}, got {new.shape}")
            average = self._value = np.full(new.shape, average, dtype=average.dtype)
        self._count += 1
        weight = 1.0 / self._count if self.momentum is None else self.momentum
        moving_average_step(average, new, weight)

    def __repr__(self) -> str:
        return f"ExponentialMovingAverage(momentum={self.momentum}, count={self._count})"


def combine_moments(
    counts: ArrayLike, means: ArrayLike, m2s: ArrayLike
) -> tuple[int, Float64Array, Float64Array]:
    r"""Return ``(count, mean, M2)`` of the union of ``k`` pieces from their own moments.

    Piece :math:`j` has :math:`n_j` values with mean :math:`\mu_j` and sum of squared
    deviations :math:`M_{2,j}`. Then (Chan, Golub & LeVeque, 1979)

    .. math::

        n = \sum_j n_j, \qquad \mu = \frac1n \sum_j n_j \mu_j, \qquad
        M_2 = \sum_j \Big( M_{2,j} + n_j (\mu_j - \mu)^2 \Big),

    exactly, because the deviations inside each piece sum to zero. Every term is
    non-negative, so nothing cancels. This is how :class:`RunningMoments` merges, and how
    synchronized batch normalization combines the statistics of the shards of a batch spread
    over devices. (:func:`bnlessons.batchnorm.batch_moments` does not use it: it sums the
    blocks of a batch for the mean, then the squared deviations from that mean.) Accumulates
    in float64.

    Parameters
    ----------
    counts : array_like of int, shape (k,)
    means, m2s : array_like, shape (k, *features)

    Returns
    -------
    count : int
    mean, m2 : ndarray, shape ``features``, float64

    Examples
    --------
    >>> count, mean, m2 = combine_moments([2, 1], [[2.0], [5.0]], [[2.0], [0.0]])
    >>> count, mean.tolist(), m2.tolist()  # the values 1, 3 and 5
    (3, [3.0], [8.0])
    """
    n = np.asarray(counts)
    mu, m2 = np.asarray(means), np.asarray(m2s)
    if n.ndim != 1 or n.size == 0 or n.dtype.kind not in "iu" or n.min() < 0:
        raise ValueError(f"counts: expected a non-empty 1-d array of counts >= 0, got {n!r}")
    if mu.shape[:1] != n.shape or m2.shape != mu.shape:
        raise ValueError(
            f"means, m2s: expected equal shapes ({n.size}, ...), got {mu.shape} and {m2.shape}"
        )
    total = int(n.sum())
    if total == 0:
        raise ValueError("counts: expected at least one value in total, got 0")
    if n.size == 1:  # one piece: nothing to combine
        return total, mu[0].astype(np.float64), m2[0].astype(np.float64)
    weights = n.astype(np.float64).reshape((-1,) + (1,) * (mu.ndim - 1))
    mean = np.add.reduce(weights * mu, axis=0) / total
    spread = np.add.reduce(weights * np.square(mu - mean), axis=0)
    return total, mean, np.add.reduce(m2, axis=0, dtype=np.float64) + spread


class RunningMoments:
    r"""Streaming per-feature mean and variance, exact in one pass over the batches.

    Keeps the count :math:`n`, the mean :math:`\mu` and the sum of squared deviations
    :math:`M_2 = \sum_i (x_i - \mu)^2` (in float64). Two sets of moments
    :math:`(n_a, \mu_a, M_{2,a})`, :math:`(n_b, \mu_b, M_{2,b})` combine as (Chan, Golub &
    LeVeque, 1979)

    .. math::

        n = n_a + n_b, \quad \delta = \mu_b - \mu_a, \quad
        \mu = \mu_a + \delta\, \frac{n_b}{n}, \quad
        M_2 = M_{2,a} + M_{2,b} + \delta^2\, \frac{n_a n_b}{n},

    (:func:`combine_moments` with two pieces), which never subtracts two large sums (the
    unstable :math:`E[x^2] - E[x]^2`). A batch is folded in by computing its own moments with
    a two-pass formula and merging them; the variance is :math:`M_2 / (n - \text{ddof})`.

    Examples
    --------
    >>> import numpy as np
    >>> moments = RunningMoments()
    >>> moments.update(np.array([[1.0, 10.0], [3.0, 10.0]]))
    >>> moments.update(np.array([[5.0, 40.0]]))
    >>> moments.count, moments.mean.tolist(), moments.var().tolist()
    (3, [3.0, 20.0], [2.6666666666666665, 200.0])
    >>> other = RunningMoments()
    >>> other.update(np.array([[7.0, 20.0]]))
    >>> moments.merge(other).mean.tolist()
    [4.0, 20.0]
    """

    def __init__(self) -> None:
        self._count = 0
        self._mean: Float64Array | None = None
        self._m2: Float64Array | None = None

    @property
    def count(self) -> int:
        """The number of values seen per feature, :math:`n`."""
        return self._count

    @property
    def mean(self) -> Float64Array:
        """The per-feature mean :math:`\\mu` (float64; a copy)."""
        if self._mean is None:
            raise ValueError("mean: expected at least one update, got none (count == 0)")
        return self._mean.copy()

    def var(self, ddof: int = 0) -> Float64Array:
        """The per-feature variance :math:`M_2 / (n - \\text{ddof})` (float64).

        ``ddof=0`` is the biased (population) variance that BatchNorm normalizes with,
        ``ddof=1`` the unbiased one its running average tracks.
        """
        _v.nonnegative_int(ddof, "ddof")
        if self._m2 is None or self._count <= ddof:
            raise ValueError(
                f"ddof: expected count > ddof, got count={self._count} and ddof={ddof}"
            )
        return self._m2 / (self._count - ddof)

    def update(self, batch: ArrayLike, axis: int | tuple[int, ...] = 0) -> None:
        """Fold ``batch`` in, reducing over ``axis``; the other axes are the features."""
        data = _v.real_array(batch, "batch", finite=False)
        try:
            axes = normalize_axis_tuple(axis, data.ndim)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"axis: expected distinct axes of a {data.ndim}-d batch, got {axis!r}"
            ) from err
        count = math.prod(data.shape[a] for a in axes)
        if count == 0:
            return
        mean = data.mean(axis=axes)
        m2 = np.square(data - np.expand_dims(mean, axes)).sum(axis=axes)
        self._merge_in(count, mean, m2)

    def merge(self, other: RunningMoments) -> RunningMoments:
        """Return the moments of both streams together (neither operand changes)."""
        _v.instance(other, RunningMoments, "other")
        merged = RunningMoments()
        if self._mean is not None and self._m2 is not None:
            merged._merge_in(self._count, self._mean, self._m2)
        if other._mean is not None and other._m2 is not None:
            merged._merge_in(other._count, other._mean, other._m2)
        return merged

    def _merge_in(self, count: int, mean: Float64Array, m2: Float64Array) -> None:
        if self._mean is None or self._m2 is None:
            self._count, self._mean, self._m2 = count, mean.copy(), m2.copy()
            return
        if mean.shape != self._mean.shape:
            raise ValueError(
                f"batch: expected per-feature shape {self._mean.shape}, got {mean.shape}"
            )
        self._count, self._mean, self._m2 = combine_moments(
            [self._count, count], np.stack([self._mean, mean]), np.stack([self._m2, m2])
        )

    def __repr__(self) -> str:
        return f"RunningMoments(count={self._count})"
