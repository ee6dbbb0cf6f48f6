r"""Tools that check a result from first principles: finite differences and Monte Carlo means.

* :func:`numerical_gradient` differentiates any scalar function of an array by central
  differences, and :func:`relative_error` compares the result with an analytic gradient
  (:func:`bnlessons.gradients.chain_gradients`, :func:`bnlessons.batchnorm.batchnorm_backward`).
* :func:`mean_confidence_interval` turns Monte Carlo samples (of the samplers in
  :mod:`bnlessons.random_matrices`) into a mean with a confidence interval, to compare with an
  exact expectation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from bnlessons import _validate as _v
from bnlessons._typing import Float64Array

__all__ = ["MeanEstimate", "mean_confidence_interval", "numerical_gradient", "relative_error"]


# --------------------------------------------------------------------------- finite differences
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


# --------------------------------------------------------------------------- Monte Carlo means
@dataclass(frozen=True)
class MeanEstimate:
    """A Monte Carlo mean with its standard error and a normal-approximation interval.

    Attributes
    ----------
    mean : float
        Sample mean.
    stderr : float
        Standard error ``std(ddof=1) / sqrt(n)``.
    low, high : float
        Interval ``mean -/+ z * stderr``.
    confidence : float
        Nominal coverage of the interval.
    n : int
        Number of samples.
    """

    mean: float
    stderr: float
    low: float
    high: float
    confidence: float
    n: int

    @property
    def half_width(self) -> float:
        """Half the interval's width, ``z * stderr``.

        Examples
        --------
        >>> MeanEstimate(1.0, 0.5, 0.0, 2.0, 0.95, 10).half_width
        1.0
        """
        return (self.high - self.low) / 2.0

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in ``[low, high]``.

        Examples
        --------
        >>> MeanEstimate(1.0, 0.5, 0.0, 2.0, 0.95, 10).contains(1.5)
        True
        """
        return self.low <= value <= self.high


def mean_confidence_interval(samples: ArrayLike, confidence: float = 0.95) -> MeanEstimate:
    r"""Sample mean with a central-limit confidence interval.

    .. math::

        \bar{s} \pm z_{(1+c)/2} \frac{\hat\sigma}{\sqrt{n}}, \qquad
        \hat\sigma^2 = \frac{1}{n-1}\sum_i (s_i - \bar{s})^2,

    with :math:`z_{0.975} = 1.95996\ldots` for the default 95%. Valid for large ``n`` (a few
    hundred or more) and finite variance, as for the norms of :mod:`bnlessons.random_matrices`.

    Parameters
    ----------
    samples : array_like
        One-dimensional real samples, at least 2, all finite.
    confidence : float, optional
        Coverage in ``(0, 1)``; default 0.95.

    Returns
    -------
    MeanEstimate

    Raises
    ------
    ValueError
        If fewer than 2 samples, not 1-D, non-finite values, or ``confidence`` not in (0, 1).
    TypeError
        If ``samples`` is not real numeric.

    Examples
    --------
    >>> est = mean_confidence_interval([1.0, 2.0, 3.0, 4.0])
    >>> est.mean, round(est.stderr, 4), round(est.low, 3), round(est.high, 3)
    (2.5, 0.6455, 1.235, 3.765)
    """
    x = _v.real_array(samples, "samples")
    if x.ndim != 1 or x.size < 2:
        raise ValueError(f"samples: expected 1-D with at least 2 entries, got shape {x.shape}")
    _v.probability(confidence, "confidence", open_interval=True)
    mean = float(x.mean())
    stderr = float(x.std(ddof=1)) / math.sqrt(x.size)
    z = NormalDist().inv_cdf((1.0 + confidence) / 2.0)
    return MeanEstimate(
        mean=mean,
        stderr=stderr,
        low=mean - z * stderr,
        high=mean + z * stderr,
        confidence=float(confidence),
        n=int(x.size),
    )
