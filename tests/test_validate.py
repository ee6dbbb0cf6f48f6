"""Tests of the shared argument checks (``bnlessons._validate``)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from bnlessons import _validate as v

DIALECT = re.compile(r"^[\w\[\]\(\) ,-]+: expected .+, got .+$")


def message(exc: pytest.ExceptionInfo[Exception]) -> str:
    text = str(exc.value)
    assert DIALECT.match(text), text  # "name: expected X, got Y"
    return text


def test_expected_formats_the_one_dialect() -> None:
    assert v.expected("k", "an int >= 1", 0) == "k: expected an int >= 1, got 0"
    assert v.expected("kind", "'a' or 'b'", "c") == "kind: expected 'a' or 'b', got 'c'"


@pytest.mark.parametrize("value", [0, 1, 7, np.int64(3), np.uint8(2)])
def test_integer_accepts_python_and_numpy_ints(value: int) -> None:
    out = v.integer(value, "k")
    assert type(out) is int and out == int(value)


@pytest.mark.parametrize("value", [True, False, 1.0, "1", None, np.float64(1.0)])
def test_integer_rejects_bool_and_non_ints_with_type_error(value: object) -> None:
    with pytest.raises(TypeError) as info:
        v.integer(value, "k")
    assert message(info).startswith("k: expected an int, got ")
    assert type(value).__name__ in str(info.value)


def test_positive_and_nonnegative_int_bounds() -> None:
    assert v.positive_int(1, "n") == 1
    assert v.nonnegative_int(0, "seed") == 0
    with pytest.raises(ValueError) as info:
        v.positive_int(0, "n")
    assert message(info) == "n: expected an int >= 1, got 0"
    with pytest.raises(ValueError) as info:
        v.nonnegative_int(-2, "seed")
    assert message(info) == "seed: expected an int >= 0, got -2"
    with pytest.raises(ValueError, match="steps: expected an int >= 2, got 1"):
        v.integer(1, "steps", minimum=2)
    with pytest.raises(TypeError, match="n: expected an int >= 1, got bool"):
        v.positive_int(True, "n")


@pytest.mark.parametrize("value", [1e-300, 0.5, 2, np.float32(3.5), 1e300])
def test_positive_float_accepts_finite_positive_reals(value: float) -> None:
    out = v.positive_float(value, "h")
    assert type(out) is float and out == float(value)


@pytest.mark.parametrize("value", [0.0, -1.0, -0.0, float("nan"), float("inf"), -np.inf])
def test_positive_float_rejects_values_with_value_error(value: float) -> None:
    with pytest.raises(ValueError) as info:
        v.positive_float(value, "h")
    assert message(info) == f"h: expected a finite number > 0, got {value!r}"


@pytest.mark.parametrize("value", [True, "0.1", None, 1j, [1.0]])
def test_real_rejects_non_reals_with_type_error(value: object) -> None:
    with pytest.raises(TypeError) as info:
        v.positive_float(value, "h")
    assert message(info) == f"h: expected a real number, got {type(value).__name__}"


def test_probability_closed_and_open_interval() -> None:
    assert v.probability(0, "p") == 0.0 and v.probability(1, "p") == 1.0
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"p: expected a number in \[0, 1\]"):
            v.probability(bad, "p")
    for bad in (0.0, 1.0):
        with pytest.raises(ValueError, match=r"c: expected a number in \(0, 1\)"):
            v.probability(bad, "c", open_interval=True)
    assert v.optional_probability(None, "momentum") is None
    assert v.optional_probability(0.25, "momentum") == 0.25
    with pytest.raises(TypeError, match="momentum: expected a real number, got str"):
        v.optional_probability("0.1", "momentum")


def test_boolean_instance_and_sequence() -> None:
    assert v.boolean(False, "flag") is False
    with pytest.raises(TypeError, match="flag: expected a bool, got int"):
        v.boolean(1, "flag")
    assert v.instance(2.5, float, "x") == 2.5
    with pytest.raises(TypeError, match="x: expected a float, got str"):
        v.instance("2.5", float, "x")
    assert v.sequence([1, 2], "dims", "a sequence of ints") == [1, 2]
    for bad in ("12", b"12", np.arange(2), 3):
        with pytest.raises(TypeError, match="dims: expected a sequence of ints, got"):
            v.sequence(bad, "dims", "a sequence of ints")


def test_real_array_converts_to_float64_and_checks_finiteness() -> None:
    out = v.real_array([[1, 2], [3, 4]], "x")
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [[1.0, 2.0], [3.0, 4.0]])
    assert v.real_array([np.inf], "x", finite=False)[0] == np.inf
    with pytest.raises(ValueError, match="x: expected finite values, got NaN or inf"):
        v.real_array([1.0, np.nan], "x")
    with pytest.raises(TypeError, match="x: expected a real numeric array, got dtype complex"):
        v.real_array(np.ones(2, dtype=complex), "x")
    with pytest.raises(TypeError, match="x: expected a real numeric array, got dtype <U1"):
        v.real_array(["a"], "x")
    with pytest.raises(TypeError, match="x: expected a real numeric array, got list"):
        v.real_array([[1.0], [1.0, 2.0]], "x")  # ragged


def test_float_array_and_float_dtype() -> None:
    x = np.zeros((2, 3), np.float32)
    assert v.float_array(x, "x", min_ndim=2) is x
    with pytest.raises(ValueError, match=r"x: expected at least 2 axes, got shape \(3,\)"):
        v.float_array(np.zeros(3), "x", min_ndim=2)
    with pytest.raises(TypeError, match="x: expected a float32 or float64 array, got dtype int64"):
        v.float_array(np.zeros(3, np.int64), "x")
    assert v.float_dtype(np.float64) == np.dtype(np.float64)
    assert v.float_dtype("float32") == np.dtype(np.float32)
    for bad in (np.float16, np.int32, "not a dtype"):
        with pytest.raises(TypeError, match="dtype: expected float32 or float64, got"):
            v.float_dtype(bad)
