"""Tests for bnlessons.checks: finite differences and Monte Carlo means, against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bnlessons.checks import (
    MeanEstimate,
    mean_confidence_interval,
    numerical_gradient,
    relative_error,
)


def test_numerical_gradient_quadratic_form() -> None:
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 4))
    x = rng.standard_normal(4)
    x0 = x.copy()
    num = numerical_gradient(lambda v: float(v @ a @ v), x)
    # d/dx x^T A x = (A + A^T) x; central differences are exact for quadratics up to rounding
    np.testing.assert_allclose(num, (a + a.T) @ x0, rtol=1e-7, atol=1e-8)
    np.testing.assert_array_equal(x, x0)


def test_numerical_gradient_restores_x_when_f_raises() -> None:
    x = np.array([1.0, 2.0])
    x0 = x.copy()

    def bad(v: np.ndarray) -> float:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        numerical_gradient(bad, x)
    np.testing.assert_array_equal(x, x0)


def test_numerical_gradient_matrix_and_size_one_output() -> None:
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    num = numerical_gradient(lambda m: np.array([[np.sum(m**3)]]), x)  # type: ignore[arg-type,return-value]
    np.testing.assert_allclose(num, 3 * x**2, rtol=1e-6)


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@given(hnp.arrays(np.float64, st.integers(1, 10), elements=finite), st.data())
def test_property_relative_error_symmetric_and_bounded(a: np.ndarray, data: st.DataObject) -> None:
    b = data.draw(hnp.arrays(np.float64, a.shape, elements=finite))
    r = relative_error(a, b)
    assert r == relative_error(b, a)
    assert 0.0 <= r <= 1.0
    assert relative_error(a, a) == 0.0


def test_relative_error_definition() -> None:
    assert relative_error([1.0, 2.0, 0.0], [1.1, 2.0, 0.0]) == pytest.approx(0.1 / 2.1)
    assert relative_error([0.0], [0.0]) == 0.0
    assert relative_error([1.0], [-1.0]) == 1.0
    assert relative_error(np.empty(0), np.empty(0)) == 0.0


def test_bad_numerical_gradient_inputs() -> None:
    with pytest.raises(TypeError, match=r"x: expected a floating-point numpy array.*got int64"):
        numerical_gradient(lambda v: 0.0, np.array([1, 2], dtype=np.int64))
    with pytest.raises(TypeError, match="got list"):
        numerical_gradient(lambda v: 0.0, [1.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"h: expected a finite number > 0, got 0\.0"):
        numerical_gradient(lambda v: 0.0, np.ones(2), h=0.0)
    with pytest.raises(
        ValueError, match=r"f: expected a scalar result, got an array of shape \(2,\)"
    ):
        numerical_gradient(lambda v: v, np.ones(2))  # type: ignore[arg-type,return-value]


def test_bad_relative_error_inputs() -> None:
    with pytest.raises(ValueError, match=r"b: expected the shape of a, \(2,\), got \(3,\)"):
        relative_error(np.ones(2), np.ones(3))
    with pytest.raises(TypeError, match="a: expected a real numeric array"):
        relative_error(np.array(["x"]), np.ones(1))


def test_mean_confidence_interval_formula() -> None:
    x = np.array([1.0, 2.0, 4.0, 8.0])
    est = mean_confidence_interval(x)
    se = x.std(ddof=1) / 2
    assert isinstance(est, MeanEstimate)
    assert est.mean == 3.75
    assert est.stderr == pytest.approx(se)
    assert est.low == pytest.approx(3.75 - 1.959963984540054 * se)
    assert est.high == pytest.approx(3.75 + 1.959963984540054 * se)
    assert est.half_width == pytest.approx(1.959963984540054 * se)
    assert est.n == 4
    assert est.contains(3.75)
    assert not est.contains(100.0)


def test_mean_confidence_interval_coverage() -> None:
    rng = np.random.default_rng(51)
    trials = 2000
    hits = sum(
        mean_confidence_interval(rng.exponential(size=400)).contains(1.0) for _ in range(trials)
    )
    # binomial(2000, 0.95): sd = sqrt(2000 * 0.95 * 0.05) = 9.7 hits; allow 4 sd
    assert abs(hits - 0.95 * trials) < 4 * math.sqrt(trials * 0.95 * 0.05)


def test_bad_mean_confidence_interval_inputs() -> None:
    with pytest.raises(ValueError, match=r"at least 2 entries, got shape \(1,\)"):
        mean_confidence_interval([1.0])
    with pytest.raises(ValueError, match=r"samples: expected 1-D .*got shape \(2, 2\)"):
        mean_confidence_interval(np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"confidence: expected a number in \(0, 1\), got 1\.5"):
        mean_confidence_interval([1.0, 2.0], confidence=1.5)
    with pytest.raises(ValueError, match="samples: expected finite values"):
        mean_confidence_interval([1.0, np.inf])
    with pytest.raises(TypeError, match="samples: expected a real numeric array"):
        mean_confidence_interval(["a", "b"])
