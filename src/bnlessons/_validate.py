"""Argument checks shared by every module, with one message dialect.

Every check returns the value it accepted (converted where that is its job) or raises
with a message that names the argument, says what was expected and shows what came::

    name: expected a positive int, got 0

A value of the wrong *type* raises :class:`TypeError`, a value of the right type but out of
range (or of the wrong shape) raises :class:`ValueError`. ``bool`` is never accepted as a
number, although Python counts it as an ``int``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from bnlessons._typing import Float64Array, FloatArray

__all__ = [
    "boolean",
    "expected",
    "float_array",
    "float_dtype",
    "instance",
    "integer",
    "nonnegative_int",
    "optional_probability",
    "positive_float",
    "positive_int",
    "probability",
    "real",
    "real_array",
    "sequence",
]

_INTS = (int, np.integer)
_REALS = (int, float, np.integer, np.floating)


def expected(name: str, what: str, got: object) -> str:
    """Return the message ``"name: expected what, got got"`` (``got`` as its ``repr``).

    Examples
    --------
    >>> expected("steps", "a positive int", 0)
    'steps: expected a positive int, got 0'
    >>> expected("x", "shape (2,)", "shape (3,)")
    "x: expected shape (2,), got 'shape (3,)'"
    """
    return f"{name}: expected {what}, got {got!r}"


def _type_name(value: object) -> str:
    return type(value).__name__


def boolean(value: object, name: str) -> bool:
    """Return ``value`` if it is a ``bool``; raise TypeError otherwise.

    Examples
    --------
    >>> boolean(True, "batch_norm")
    True
    """
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected a bool, got {_type_name(value)}")
    return value


def integer(value: object, name: str, *, minimum: int | None = None) -> int:
    """Return ``value`` as an ``int`` (Python or NumPy integer, not bool), at least ``minimum``.

    Raises
    ------
    TypeError
        If ``value`` is not an integer (a bool is not).
    ValueError
        If ``value < minimum``.

    Examples
    --------
    >>> integer(3, "k", minimum=1)
    3
    """
    if isinstance(value, bool) or not isinstance(value, _INTS):
        what = "an int" if minimum is None else f"an int >= {minimum}"
        raise TypeError(f"{name}: expected {what}, got {_type_name(value)}")
    if minimum is not None and value < minimum:
        raise ValueError(expected(name, f"an int >= {minimum}", int(value)))
    return int(value)


def positive_int(value: object, name: str) -> int:
    """Return ``value`` if it is an int ``>= 1`` (see :func:`integer`).

    Examples
    --------
    >>> positive_int(60, "batch_size")
    60
    """
    return integer(value, name, minimum=1)


def nonnegative_int(value: object, name: str) -> int:
    """Return ``value`` if it is an int ``>= 0`` (see :func:`integer`).

    Examples
    --------
    >>> nonnegative_int(0, "seed")
    0
    """
    return integer(value, name, minimum=0)


def real(value: object, name: str) -> float:
    """Return ``value`` as a ``float`` if it is a real number (not bool, not complex).

    Examples
    --------
    >>> real(2, "x")
    2.0
    """
    if isinstance(value, bool) or not isinstance(value, _REALS):
        raise TypeError(f"{name}: expected a real number, got {_type_name(value)}")
    return float(value)


def positive_float(value: object, name: str) -> float:
    """Return ``value`` as a ``float`` if it is a finite real number ``> 0``.

    Raises
    ------
    TypeError
        If ``value`` is not a real number.
    ValueError
        If it is not finite or not positive (NaN is neither).

    Examples
    --------
    >>> positive_float(0.5, "learning_rate")
    0.5
    """
    number = real(value, name)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(expected(name, "a finite number > 0", value))
    return number


def probability(value: object, name: str, *, open_interval: bool = False) -> float:
    """Return ``value`` as a ``float`` in ``[0, 1]`` (``(0, 1)`` with ``open_interval``).

    Examples
    --------
    >>> probability(0.1, "momentum")
    0.1
    """
    number = real(value, name)
    inside = 0.0 < number < 1.0 if open_interval else 0.0 <= number <= 1.0  # NaN: False
    if not inside:
        raise ValueError(
            expected(name, "a number in (0, 1)" if open_interval else "a number in [0, 1]", value)
        )
    return number


def optional_probability(value: object, name: str) -> float | None:
    """Return None, or ``value`` as a ``float`` in ``[0, 1]`` (see :func:`probability`).

    Examples
    --------
    >>> optional_probability(None, "momentum") is None
    True
    """
    return None if value is None else probability(value, name)


def instance(value: object, cls: type[Any], name: str) -> Any:
    """Return ``value`` if it is an instance of ``cls``; raise TypeError otherwise.

    Examples
    --------
    >>> instance(1.5, float, "x")
    1.5
    """
    if not isinstance(value, cls):
        raise TypeError(f"{name}: expected a {cls.__name__}, got {_type_name(value)}")
    return value


def sequence(value: object, name: str, what: str) -> Sequence[Any]:
    """Return ``value`` if it is a sequence (not a string, bytes or array); ``what`` describes it.

    Examples
    --------
    >>> sequence((1, 2), "dims", "a sequence of ints")
    (1, 2)
    """
    if isinstance(value, (str, bytes, np.ndarray)) or not isinstance(value, Sequence):
        raise TypeError(f"{name}: expected {what}, got {_type_name(value)}")
    return value


def real_array(value: ArrayLike, name: str, *, finite: bool = True) -> Float64Array:
    """Return ``value`` as a float64 array if it is real numeric (and finite, by default).

    Raises
    ------
    TypeError
        If ``value`` is not an array of real numbers (strings, complex, ragged lists).
    ValueError
        If ``finite`` and it holds NaN or inf.

    Examples
    --------
    >>> real_array([1, 2], "x")
    array([1., 2.])
    """
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as err:  # ragged nested lists, for instance
        raise TypeError(f"{name}: expected a real numeric array, got {_type_name(value)}") from err
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a real numeric array, got dtype {array.dtype}")
    out: Float64Array = array.astype(np.float64, copy=False)
    if finite and not np.all(np.isfinite(out)):
        raise ValueError(f"{name}: expected finite values, got NaN or inf")
    return out


def float_array(value: ArrayLike, name: str, *, min_ndim: int = 0) -> FloatArray:
    """Return ``value`` as an array if its dtype is float32 or float64, with ``min_ndim`` axes.

    Examples
    --------
    >>> float_array(np.zeros((2, 3), np.float32), "x", min_ndim=2).shape
    (2, 3)
    """
    array = np.asarray(value)
    if array.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: expected a float32 or float64 array, got dtype {array.dtype}")
    if array.ndim < min_ndim:
        raise ValueError(f"{name}: expected at least {min_ndim} axes, got shape {array.shape}")
    return array


def float_dtype(value: DTypeLike, name: str = "dtype") -> np.dtype[Any]:
    """Return ``np.dtype(value)`` if it is float32 or float64; raise TypeError otherwise.

    Examples
    --------
    >>> float_dtype(np.float32)
    dtype('float32')
    """
    try:
        dtype = np.dtype(value)
    except TypeError:
        dtype = None
    if dtype is None or dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: expected float32 or float64, got {value!r}")
    return dtype
