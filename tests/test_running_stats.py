"""Tests for bnlessons.running_stats, against closed forms and float64 two-pass references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bnlessons.running_stats import ExponentialMovingAverage, RunningMoments


def two_pass(data: np.ndarray, axis: int | tuple[int, ...] = 0, ddof: int = 0):
    """Mean and variance over ``axis`` in float64, two passes, written out here."""
    x = np.asarray(data, dtype=np.float64)
    n = np.prod([x.shape[a] for a in np.atleast_1d(axis)])
    mean = x.sum(axis=axis, keepdims=True) / n
    var = ((x - mean) ** 2).sum(axis=axis) / (n - ddof)
    return mean.squeeze(axis=axis), var


# --------------------------------------------------------------------------- EMA
@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=30),
    momentum=st.floats(0, 1),
    initial=st.floats(-10, 10),
)
def test_ema_closed_form(values: list[float], momentum: float, initial: float) -> None:
    """a_t = (1-m)^t a_0 + sum_k m (1-m)^(t-k) v_k."""
    ema = ExponentialMovingAverage(momentum, initial=initial)
    for v in values:
        ema.update(v)
    t = len(values)
    expected = (1 - momentum) ** t * initial + sum(
        momentum * (1 - momentum) ** (t - k) * v for k, v in enumerate(values, start=1)
    )
    assert ema.count == t
    assert float(ema.value) == pytest.approx(expected, rel=1e-9, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=30))
def test_ema_momentum_none_is_the_plain_average(values: list[float]) -> None:
    ema = ExponentialMovingAverage(None, initial=123.0)  # the initial value gets weight 0
    for v in values:
        ema.update(v)
    assert float(ema.value) == pytest.approx(sum(values) / len(values), rel=1e-9, abs=1e-9)


def test_ema_of_arrays_is_updated_in_place() -> None:
    start = np.zeros(3, dtype=np.float32)
    ema = ExponentialMovingAverage(0.25, initial=start)
    buffer = ema.value
    ema.update(np.array([4.0, 8.0, -4.0]))
    assert ema.value is buffer and buffer.dtype == np.float32
    np.testing.assert_array_equal(buffer, [1.0, 2.0, -1.0])
    np.testing.assert_array_equal(start, 0.0)  # the initial array was copied


def test_ema_scalar_initial_takes_the_shape_of_the_first_update() -> None:
    ema = ExponentialMovingAverage(0.5)
    ema.update(np.array([2.0, 4.0]))
    np.testing.assert_array_equal(ema.value, [1.0, 2.0])
    with pytest.raises(ValueError, match=r"value: expected shape \(2,\), got \(3,\)"):
        ema.update(np.ones(3))


def test_ema_value_setter_checks_shape() -> None:
    ema = ExponentialMovingAverage(0.5, initial=np.zeros(2))
    ema.value = [1.0, 2.0]
    np.testing.assert_array_equal(ema.value, [1.0, 2.0])
    with pytest.raises(ValueError, match=r"value: expected shape \(2,\), got \(\)"):
        ema.value = 1.0


@pytest.mark.parametrize("momentum", [-0.01, 1.01, float("nan"), float("inf")])
def test_ema_momentum_outside_unit_interval(momentum: float) -> None:
    with pytest.raises(ValueError, match=r"momentum: expected a number in \[0, 1\]") as info:
        ExponentialMovingAverage(momentum)
    assert repr(momentum) in str(info.value)


def test_ema_momentum_type() -> None:
    with pytest.raises(TypeError, match=r"momentum.*str"):
        ExponentialMovingAverage("0.1")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- moments
def test_moments_of_a_stream_equal_the_two_pass_reference() -> None:
    rng = np.random.default_rng(0)
    batches = [rng.normal(5.0, 2.0, size=(n, 3)) for n in (1, 7, 2, 30)]
    moments = RunningMoments()
    for b in batches:
        moments.update(b)
    mean, var = two_pass(np.concatenate(batches))
    _, var1 = two_pass(np.concatenate(batches), ddof=1)
    assert moments.count == 40
    np.testing.assert_allclose(moments.mean, mean, rtol=1e-14)
    np.testing.assert_allclose(moments.var(), var, rtol=1e-13)
    np.testing.assert_allclose(moments.var(ddof=1), var1, rtol=1e-13)


def test_moments_with_an_axis_tuple() -> None:
    """Per-channel moments of (N, C, H, W) maps: reduce over (0, 2, 3), as BatchNorm2d does."""
    rng = np.random.default_rng(1)
    maps = [rng.normal(size=(2, 3, 4, 5)) + np.arange(3)[:, None, None] for _ in range(3)]
    moments = RunningMoments()
    for m in maps:
        moments.update(m, axis=(0, 2, -1))
    mean, var = two_pass(np.concatenate(maps), axis=(0, 2, 3))
    assert moments.count == 3 * 2 * 4 * 5
    np.testing.assert_allclose(moments.mean, mean, rtol=1e-13)
    np.testing.assert_allclose(moments.var(), var, rtol=1e-13)


def test_moments_are_stable_far_from_zero() -> None:
    """1e9 + N(0, 1) in batches of 10: E[x^2] - E[x]^2 would lose every digit."""
    rng = np.random.default_rng(2)
    data = 1e9 + rng.standard_normal((10_000, 2))
    moments = RunningMoments()
    for b in np.split(data, 1000):
        moments.update(b)
    np.testing.assert_allclose(moments.var(), two_pass(data)[1], rtol=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 40), min_size=1, max_size=8),
    loc=st.floats(-1e6, 1e6),
    scale=st.floats(1e-3, 1e3),
    seed=st.integers(0, 2**32 - 1),
)
def test_merge_equals_concatenation(sizes: list[int], loc: float, scale: float, seed: int) -> None:
    """Moments of k shards, merged, equal the moments of their concatenation (sync BN)."""
    rng = np.random.default_rng(seed)
    shards = [loc + scale * rng.standard_normal((n, 4)) for n in sizes]
    merged = RunningMoments()
    for shard in shards:
        part = RunningMoments()
        part.update(shard)
        merged = merged.merge(part)
    data = np.concatenate(shards)
    assert merged.count == len(data)
    if len(data) == 0:
        return
    mean, var = two_pass(data)
    np.testing.assert_allclose(merged.mean, mean, rtol=1e-12, atol=1e-12 * scale)
    # 1e-12 relative, or the rounding of the shard means (eps * |mean|) seen against the
    # standard deviation when the data sit far from zero relative to their spread
    rounding = np.finfo(np.float64).eps * np.abs(mean) / np.sqrt(np.maximum(var, 1e-300))
    tol = np.maximum(1e-12, 10 * rounding)
    assert np.all(np.abs(merged.var() - var) <= tol * var + 1e-300)


def test_merge_of_shards_matches_concatenation_to_1e_12() -> None:
    rng = np.random.default_rng(3)
    shards = [rng.normal(3.0, 2.0, size=(n, 5)) for n in (100, 1, 37, 250, 2)]
    merged = RunningMoments()
    for shard in shards:
        part = RunningMoments()
        part.update(shard)
        merged = merged.merge(part)
    mean, var = two_pass(np.concatenate(shards))
    np.testing.assert_allclose(merged.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(merged.var(), var, rtol=1e-12)
    np.testing.assert_allclose(merged.var(ddof=1), var * 390 / 389, rtol=1e-12)


def test_merge_leaves_its_operands_unchanged() -> None:
    a, b = RunningMoments(), RunningMoments()
    a.update(np.array([[1.0], [3.0]]))
    b.update(np.array([[10.0]]))
    merged = a.merge(b)
    assert (a.count, b.count, merged.count) == (2, 1, 3)
    np.testing.assert_array_equal(a.mean, [2.0])
    np.testing.assert_allclose(merged.mean, [14.0 / 3.0])
    # closed form: values 1, 3, 10 have mean 14/3 and sum of squares 110
    np.testing.assert_allclose(merged.var(), [110 / 3 - (14 / 3) ** 2])


def test_empty_moments() -> None:
    moments = RunningMoments()
    assert moments.count == 0
    with pytest.raises(ValueError, match="mean: expected at least one update"):
        _ = moments.mean
    with pytest.raises(ValueError, match="ddof: expected count > ddof, got count=0"):
        moments.var()
    moments.update(np.empty((0, 3)))
    assert moments.count == 0


def test_bad_moments_input() -> None:
    moments = RunningMoments()
    moments.update(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"ddof: expected count > ddof, got count=2 and ddof=2"):
        moments.var(ddof=2)
    with pytest.raises(ValueError, match="ddof: expected an int >= 0, got -1"):
        moments.var(ddof=-1)
    with pytest.raises(ValueError, match=r"batch: expected per-feature shape \(3,\), got \(4,\)"):
        moments.update(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"axis: expected distinct axes of a 2-d batch, got 2"):
        moments.update(np.ones((2, 3)), axis=2)
    with pytest.raises(ValueError, match=r"axis: .* got \(0, 0\)"):
        moments.update(np.ones((2, 3)), axis=(0, 0))
    with pytest.raises(TypeError, match="batch: expected a real numeric array, got dtype <U1"):
        moments.update(np.array([["a"]]))
    with pytest.raises(TypeError, match="other: expected a RunningMoments, got int"):
        moments.merge(3)  # type: ignore[arg-type]
