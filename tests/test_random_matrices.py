"""Tests for bnlessons.random_matrices: closed forms, high-precision references, Monte Carlo.

Monte Carlo tolerances: a sample mean of n draws is within z standard errors of the true mean with
probability 2 * (1 - Phi(z)); with z = 4 a test would fail for about 6 in 100,000 seeds. The seeds
are fixed, so the tests are deterministic; the tolerance says the check is statistically honest.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bnlessons.checks import mean_confidence_interval
from bnlessons.random_matrices import (
    SEED_SHAPES,
    chain_expected_output_norms,
    chain_norm_bounds,
    chain_rms_output_norms,
    chi_mean,
    expected_frobenius_norm,
    fan_in_sigmas,
    gaussian_chain_weights,
    random_unit_vector,
    rms_frobenius_norm,
    sample_chain_output_norms,
    sample_chain_output_norms_full,
    sample_chain_rms_output_norms,
    sample_frobenius_norms,
    sample_spectral_norms,
    spectral_norm_bound,
    square_chain_shapes,
)

Z = 4.0  # standard errors allowed in Monte Carlo comparisons (see module docstring)


def within(samples: np.ndarray, expected: float, z: float = Z) -> bool:
    se = samples.std(ddof=1) / math.sqrt(samples.size)
    return abs(samples.mean() - expected) <= z * se


# --------------------------------------------------------------------------- chi mean
def test_chi_mean_closed_forms() -> None:
    assert chi_mean(1) == pytest.approx(math.sqrt(2 / math.pi), rel=1e-15)
    assert chi_mean(2) == pytest.approx(math.sqrt(math.pi / 2), rel=1e-15)
    assert chi_mean(3) == pytest.approx(2 * math.sqrt(2 / math.pi), rel=1e-15)  # Maxwell mean


@pytest.mark.parametrize("k", [*range(1, 80), 100, 171, 200, 300, 340])
def test_chi_mean_matches_gamma_ratio(k: int) -> None:
    ref = math.sqrt(2) * math.gamma((k + 1) / 2) / math.gamma(k / 2)
    assert chi_mean(k) == pytest.approx(ref, rel=1e-13)


@pytest.mark.parametrize("k", [1, 7, 63, 64, 65, 100, 1000, 12_345, 10**6, 10**7, 10**8, 10**12])
def test_chi_mean_matches_mpmath(k: int) -> None:
    with mpmath.workdps(40):
        ref = mpmath.sqrt(2) * mpmath.exp(
            mpmath.loggamma(mpmath.mpf(k + 1) / 2) - mpmath.loggamma(mpmath.mpf(k) / 2)
        )
        assert chi_mean(k) == pytest.approx(float(ref), rel=4e-15)


@pytest.mark.parametrize("k", [10**2, 10**3, 10**4, 10**6, 10**8])
def test_chi_mean_large_k_asymptotics(k: int) -> None:
    # mu(k) = sqrt(k) (1 - 1/(4k) + 1/(32k^2) + ...) and sqrt(k - 1/2) = sqrt(k) (1 - 1/(4k)
    # - 1/(32k^2) + ...), so mu(k) / sqrt(k - 1/2) = 1 + 1/(16 k^2) + O(k^-3)
    ratio = chi_mean(k) / math.sqrt(k - 0.5)
    assert abs(ratio - 1 - 1 / (16 * k**2)) < 1 / k**3 + 4e-16
    if k <= 10**4:  # resolvable in float64
        assert ratio > 1


def test_chi_mean_monotone_and_below_sqrt_k() -> None:
    ks = np.unique(np.logspace(0, 8, 400).astype(int))
    mu = np.array([chi_mean(int(k)) for k in ks])
    assert np.all(np.diff(mu) > 0)
    assert np.all(mu < np.sqrt(ks))


# --------------------------------------------------------------------------- Exercise 2
def test_expected_frobenius_norm_seed_matrices() -> None:
    assert round(expected_frobenius_norm(100, 10), 4) == 31.6149  # W1
    assert round(rms_frobenius_norm(100, 10), 4) == 31.6228
    assert rms_frobenius_norm(100, 100) == 100.0  # W2
    assert rms_frobenius_norm(1, 100) == 10.0  # W3
    assert expected_frobenius_norm(100, 100) == pytest.approx(99.9975, abs=1e-4)
    assert expected_frobenius_norm(1, 100) == pytest.approx(9.9750, abs=1e-4)


@given(st.integers(1, 5000), st.integers(1, 5000), st.floats(1e-3, 1e3))
def test_property_jensen_and_scaling(m: int, n: int, sigma: float) -> None:
    exact = expected_frobenius_norm(m, n, sigma)
    assert exact < rms_frobenius_norm(m, n, sigma)
    assert exact == pytest.approx(sigma * expected_frobenius_norm(m, n), rel=1e-13)
    assert expected_frobenius_norm(m, n) == expected_frobenius_norm(n, m)


def test_spectral_norm_bound_values() -> None:
    assert spectral_norm_bound(100, 100) == 20.0
    assert spectral_norm_bound(100, 10, 2.0) == pytest.approx(2 * (10 + math.sqrt(10)))


@pytest.mark.parametrize(("m", "n"), [(100, 10), (100, 100), (1, 100)])
def test_frobenius_monte_carlo_matches_exact_mean(m: int, n: int) -> None:
    s = sample_frobenius_norms(m, n, 2000, rng=11)
    assert within(s, expected_frobenius_norm(m, n))
    # second moment: E||M||_F^2 = mn exactly
    assert within(s**2, m * n)


def test_frobenius_sampler_is_direct_and_batch_independent() -> None:
    a = sample_frobenius_norms(3, 4, 7, sigma=2.0, rng=5, batch_size=3)
    b = sample_frobenius_norms(3, 4, 7, sigma=2.0, rng=5)
    mats = 2.0 * np.random.default_rng(5).standard_normal((7, 3, 4))
    np.testing.assert_allclose(a, b, rtol=1e-15)
    np.testing.assert_allclose(a, np.linalg.norm(mats, axis=(1, 2)), rtol=1e-13)


def test_spectral_sampler_is_direct_and_batch_independent() -> None:
    a = sample_spectral_norms(5, 3, 9, sigma=0.5, rng=6, batch_size=2)
    b = sample_spectral_norms(5, 3, 9, sigma=0.5, rng=6)
    mats = 0.5 * np.random.default_rng(6).standard_normal((9, 5, 3))
    np.testing.assert_allclose(a, b, rtol=1e-15)
    np.testing.assert_allclose(a, [np.linalg.norm(w, 2) for w in mats], rtol=1e-12)
    wide = sample_spectral_norms(3, 5, 9, rng=6)  # Gram matrix taken on the other side
    mats = np.random.default_rng(6).standard_normal((9, 3, 5))
    np.testing.assert_allclose(wide, np.linalg.svd(mats, compute_uv=False)[:, 0], rtol=1e-12)


@pytest.mark.parametrize(("m", "n"), [(100, 100), (100, 10), (1, 100), (400, 20)])
def test_spectral_mean_between_column_norm_and_gordon(m: int, n: int) -> None:
    s = sample_spectral_norms(m, n, 120, rng=12)
    est = mean_confidence_interval(s, 0.9999)  # about 4 standard errors
    # ||M||_2 >= ||M e_1|| whose mean is chi_mean(m); Gordon: E||M||_2 <= sqrt(m) + sqrt(n)
    assert est.high >= chi_mean(m)
    assert est.low <= spectral_norm_bound(m, n)
    assert np.all(s <= rms_frobenius_norm(m, n) * 2)  # sanity: nowhere near sqrt(mn) x 2


def test_spectral_far_below_frobenius_for_square() -> None:
    s = sample_spectral_norms(100, 100, 40, rng=13)
    assert s.mean() < 0.25 * expected_frobenius_norm(100, 100)


# --------------------------------------------------------------------------- Exercise 3
def test_seed_chain_exact_values_and_bounds() -> None:
    exact = chain_expected_output_norms()
    assert [round(float(exact[0]), 4), round(float(exact[1]), 3), round(float(exact[2]), 2)] == [
        9.9750,
        99.501,
        79.39,
    ]
    mu100 = chi_mean(100)
    np.testing.assert_allclose(
        exact, [mu100, mu100**2, mu100**2 * math.sqrt(2 / math.pi)], rtol=1e-14
    )
    bounds = chain_norm_bounds()
    np.testing.assert_allclose(bounds, np.sqrt(1000) * np.array([1, 100, 1000]), rtol=1e-14)
    np.testing.assert_allclose(bounds / exact, [3.17, 31.78, 398.3], rtol=2e-3)


def test_chain_exact_depends_on_output_sizes_and_scales() -> None:
    a = chain_expected_output_norms([(7, 3), (2, 7)], sigma=[2.0, 0.5], x_norm=3.0)
    np.testing.assert_allclose(a, [3 * 2 * chi_mean(7), 3 * chi_mean(7) * chi_mean(2)])


@st.composite
def chain_shapes(draw: st.DrawFn) -> list[tuple[int, int]]:
    dims = draw(st.lists(st.integers(1, 300), min_size=2, max_size=8))
    return [(dims[i + 1], dims[i]) for i in range(len(dims) - 1)]


@settings(max_examples=100)
@given(chain_shapes(), st.floats(0.01, 10.0))
def test_property_exact_below_both_bounds(shapes: list[tuple[int, int]], sigma: float) -> None:
    exact = chain_expected_output_norms(shapes, sigma)
    assert np.all(exact <= chain_norm_bounds(shapes, sigma) * (1 + 1e-12))
    assert np.all(exact <= chain_norm_bounds(shapes, sigma, kind="spectral") * (1 + 1e-12))


def test_fast_chain_sampler_matches_exact_means() -> None:
    s = sample_chain_output_norms(n_samples=100_000, rng=21)
    assert s.shape == (100_000, 3)
    for j, mu in enumerate(chain_expected_output_norms()):
        assert within(s[:, j], mu)
    # second moments: E||y_1||^2 = 100, E||y_2||^2 = 100^2, E y^2 = 100^2
    for j, m2 in enumerate([100.0, 1e4, 1e4]):
        assert within(s[:, j] ** 2, m2)


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic sup_t |F_a(t) - F_b(t)|."""
    grid = np.concatenate([a, b])
    fa = np.searchsorted(np.sort(a), grid, side="right") / a.size
    fb = np.searchsorted(np.sort(b), grid, side="right") / b.size
    return float(np.max(np.abs(fa - fb)))


def test_fast_chain_sampler_agrees_with_full_matrix_sampler() -> None:
    x = np.arange(1.0, 11.0)
    x /= np.linalg.norm(x)  # a unit input that is not a basis vector
    full = sample_chain_output_norms_full(n_samples=3000, x=x, rng=31)
    fast = sample_chain_output_norms(n_samples=20_000, x=x, rng=32)
    n, m = full.shape[0], fast.shape[0]
    # two-sample KS at level 1e-3: critical value sqrt(-ln(1e-3/2)/2) * sqrt((n+m)/(n m))
    d_crit = math.sqrt(-math.log(0.5e-3) / 2) * math.sqrt((n + m) / (n * m))
    for j in range(3):
        assert ks_statistic(full[:, j], fast[:, j]) < d_crit
        se = math.sqrt(full[:, j].var(ddof=1) / n + fast[:, j].var(ddof=1) / m)
        assert abs(full[:, j].mean() - fast[:, j].mean()) < Z * se


def test_full_sampler_matches_manual_products() -> None:
    shapes = [(3, 2), (4, 3), (1, 4)]
    x = np.array([0.6, -0.8])
    got = sample_chain_output_norms_full(shapes, 5, sigma=[1.0, 2.0, 0.5], x=x, rng=7)
    rng = np.random.default_rng(7)
    ws = [s * rng.standard_normal((5, *sh)) for sh, s in zip(shapes, [1.0, 2.0, 0.5], strict=True)]
    for t in range(5):
        y1 = ws[0][t] @ x
        y2 = ws[1][t] @ y1
        y3 = ws[2][t] @ y2
        np.testing.assert_allclose(got[t], [np.linalg.norm(v) for v in (y1, y2, y3)], rtol=1e-13)
    batched = sample_chain_output_norms_full(
        shapes, 5, sigma=[1.0, 2.0, 0.5], x=x, rng=7, batch_size=2
    )
    assert batched.shape == (5, 3)


def test_sampler_scales_with_input_norm_and_is_reproducible() -> None:
    a = sample_chain_output_norms(n_samples=50, x=3.0 * np.eye(10)[0], rng=1)
    b = sample_chain_output_norms(n_samples=50, rng=np.random.default_rng(1))
    np.testing.assert_allclose(a, 3.0 * b, rtol=1e-15)


def test_fan_in_scaling_keeps_square_chain_norm() -> None:
    shapes = square_chain_shapes(100, 20)
    sig = fan_in_sigmas(shapes)
    assert sig == [0.1] * 20
    exact = chain_expected_output_norms(shapes, sig)
    # E||y_i||^2 = 1 for every depth; the mean decays only as (chi_mean(100)/10)^i
    np.testing.assert_allclose(exact, (chi_mean(100) / 10) ** np.arange(1, 21), rtol=1e-13)
    # (1 - 1/(4*100) + ...)^20 ~ exp(-1/20): the mean drifts 5% in 20 layers, not 10x per layer
    assert 0.95 < exact[-1] < 0.96
    s = sample_chain_output_norms(shapes, 50_000, sigma=sig, rng=41)
    for j in (0, 9, 19):
        assert within(s[:, j], exact[j])
        assert within(s[:, j] ** 2, 1.0)
    unscaled = chain_expected_output_norms(shapes)
    np.testing.assert_allclose(unscaled / exact, 10.0 ** np.arange(1, 21), rtol=1e-12)


def test_gaussian_chain_weights_shapes_and_scale() -> None:
    ws = gaussian_chain_weights([(200, 300), (50, 200)], sigma=[0.5, 3.0], rng=0)
    assert [w.shape for w in ws] == [(200, 300), (50, 200)]
    # sample std of 60,000 and 10,000 normals: within 4 relative standard errors 1/sqrt(2N)
    assert abs(ws[0].std() / 0.5 - 1) < 4 / math.sqrt(2 * 60_000)
    assert abs(ws[1].std() / 3.0 - 1) < 4 / math.sqrt(2 * 10_000)


def test_random_unit_vector_is_unit_and_isotropic() -> None:
    rng = np.random.default_rng(61)
    xs = np.array([random_unit_vector(5, rng) for _ in range(4000)])
    np.testing.assert_allclose(np.linalg.norm(xs, axis=1), 1.0, rtol=1e-14)
    # uniform on the sphere: E x_i = 0 and E x_i^2 = 1/n for every coordinate
    for i in range(5):
        assert within(xs[:, i], 0.0)
        assert within(xs[:, i] ** 2, 0.2)
    np.testing.assert_array_equal(random_unit_vector(3, rng=8), random_unit_vector(3, rng=8))


def test_bad_random_unit_vector() -> None:
    with pytest.raises(ValueError, match="n: expected an int >= 1, got 0"):
        random_unit_vector(0)
    with pytest.raises(TypeError, match="rng: expected a numpy Generator"):
        random_unit_vector(3, rng=1.5)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- mean + interval


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("fn", [expected_frobenius_norm, rms_frobenius_norm, spectral_norm_bound])
def test_bad_m_n_sigma(fn: object) -> None:
    f = fn  # type: ignore[assignment]
    with pytest.raises(ValueError, match="m: expected an int >= 1, got 0"):
        f(0, 3)  # type: ignore[operator]
    with pytest.raises(ValueError, match="n: expected an int >= 1, got -2"):
        f(3, -2)  # type: ignore[operator]
    with pytest.raises(ValueError, match=r"sigma: expected a finite number > 0, got 0\.0"):
        f(3, 3, 0.0)  # type: ignore[operator]
    with pytest.raises(ValueError, match=r"sigma: expected a finite number > 0, got -1"):
        f(3, 3, -1)  # type: ignore[operator]
    with pytest.raises(ValueError, match="sigma: expected a finite number > 0, got nan"):
        f(3, 3, float("nan"))  # type: ignore[operator]
    with pytest.raises(TypeError, match="m: expected an int >= 1, got float"):
        f(3.0, 3)  # type: ignore[operator]
    with pytest.raises(TypeError, match="n: expected an int >= 1, got bool"):
        f(3, True)  # type: ignore[operator]
    with pytest.raises(TypeError, match="sigma: expected a real number, got str"):
        f(3, 3, "1")  # type: ignore[operator]


def test_bad_chi_mean_k() -> None:
    with pytest.raises(ValueError, match="k: expected an int >= 1, got 0"):
        chi_mean(0)


def test_bad_chain_shapes_do_not_compose() -> None:
    with pytest.raises(
        ValueError, match=r"shapes\[1\] \(W2\): expected n == 100.*got \(100, 10\)"
    ):
        chain_expected_output_norms([(100, 10), (100, 10)])
    with pytest.raises(
        ValueError, match=r"shapes\[0\]: expected an \(m, n\) pair, got \(1, 2, 3\)"
    ):
        chain_norm_bounds([(1, 2, 3)])
    with pytest.raises(ValueError, match="at least one"):
        sample_chain_output_norms([])
    with pytest.raises(
        ValueError, match=r"shapes\[0\]\[0\] \(m of W1\): expected an int >= 1, got 0"
    ):
        gaussian_chain_weights([(0, 3)])
    with pytest.raises(TypeError, match="shapes: expected a sequence of"):
        sample_chain_output_norms_full(np.ones((2, 2)))  # type: ignore[arg-type]


def test_bad_sigma_per_layer() -> None:
    with pytest.raises(
        ValueError, match=r"sigma: expected a float or one entry per layer \(3\), got 2"
    ):
        chain_expected_output_norms(SEED_SHAPES, sigma=[1.0, 1.0])
    with pytest.raises(ValueError, match=r"sigma\[1\]: expected a finite number > 0, got 0\.0"):
        chain_norm_bounds(SEED_SHAPES, sigma=[1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match=r"sigma: expected a finite number > 0, got -1\.0"):
        sample_chain_output_norms(sigma=-1.0)


def test_bad_x_does_not_match_w1() -> None:
    with pytest.raises(ValueError, match=r"x: expected shape \(10,\) or \(10, 1\).*got \(3,\)"):
        sample_chain_output_norms(n_samples=5, x=np.ones(3))
    with pytest.raises(ValueError, match=r"x: expected shape \(10,\).*got \(1, 10\)"):
        sample_chain_output_norms_full(n_samples=5, x=np.ones((1, 10)))
    with pytest.raises(ValueError, match=r"x_norm: expected a finite number > 0, got 0\.0"):
        chain_expected_output_norms(x_norm=0.0)


def test_bad_sample_counts_rng_and_kind() -> None:
    with pytest.raises(ValueError, match="n_samples: expected an int >= 1, got 0"):
        sample_chain_output_norms(n_samples=0)
    with pytest.raises(ValueError, match="batch_size: expected an int >= 1, got 0"):
        sample_frobenius_norms(2, 2, 3, batch_size=0)
    with pytest.raises(ValueError, match="m: expected an int >= 1, got 0"):
        sample_spectral_norms(0, 2, 3)
    with pytest.raises(ValueError, match=r"sigma: expected a finite number > 0, got 0\.0"):
        sample_spectral_norms(2, 2, 3, sigma=0.0)
    with pytest.raises(
        TypeError, match="rng: expected a numpy Generator, an int seed or None, got str"
    ):
        sample_chain_output_norms(rng="seed")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kind: expected 'frobenius' or 'spectral', got 'l1'"):
        chain_norm_bounds(kind="l1")  # type: ignore[arg-type]


# ------------------------------------------------------------------ RMS sizes (Exercise 3)
def _unit_columns(rng: np.random.Generator, n: int, b: int) -> np.ndarray:
    z = rng.standard_normal((n, b))
    return z / np.linalg.norm(z, axis=0)


def test_rms_output_norms_plain_match_monte_carlo() -> None:
    """E||y_i||^2 from matrices drawn here, within 4 standard errors."""
    shapes, sigmas = [(5, 3), (4, 5), (2, 4)], [0.5, 2.0, 1.5]
    rng = np.random.default_rng(31)
    n = 40_000
    y = _unit_columns(rng, 3, n).T[:, :, None]  # one unit input per network
    expected = chain_rms_output_norms(shapes, sigmas) ** 2
    for i, ((m, k), s) in enumerate(zip(shapes, sigmas, strict=True)):
        y = s * rng.standard_normal((n, m, k)) @ y
        assert within(np.sum(y[:, :, 0] ** 2, axis=1), float(expected[i]))


def test_rms_output_norms_plain_scale_with_input() -> None:
    """E||W u||^2 = sigma^2 m ||u||^2, layer after layer: sqrt(prod sigma_j^2 m_j) ||x||."""
    got = chain_rms_output_norms([(4, 2), (9, 4)], [0.5, 2.0], x_norm=3.0)
    assert np.allclose(got, [3.0 * 0.5 * 2.0, 3.0 * 0.5 * 2.0 * 2.0 * 3.0], rtol=1e-14)


def test_rms_output_norms_normalized_match_monte_carlo() -> None:
    """Normalized layers written out here (eps = 0): sqrt(m_i), then sigma_L sqrt(m_L m_{L-1})."""
    shapes, sigmas = [(6, 3), (5, 6), (3, 5)], [7.0, 0.1, 1.5]
    rng = np.random.default_rng(32)
    expected = chain_rms_output_norms(shapes, sigmas, normalized=True) ** 2
    assert np.allclose(expected, [6.0, 5.0, 1.5**2 * 3 * 5], rtol=1e-14)
    per_network = []
    for _ in range(4_000):
        a = _unit_columns(rng, 3, 16)
        sizes = []
        for i, ((m, k), s) in enumerate(zip(shapes, sigmas, strict=True)):
            a = s * rng.standard_normal((m, k)) @ a
            if i < len(shapes) - 1:  # each unit to batch mean 0 and variance 1
                a = (a - a.mean(axis=1, keepdims=True)) / a.std(axis=1, keepdims=True)
            sizes.append(np.mean(np.sum(a**2, axis=0)))
        per_network.append(sizes)
    squares = np.array(per_network)
    assert np.allclose(squares[:, :2], expected[:2], rtol=1e-12)  # exact for every network
    assert within(squares[:, 2], float(expected[2]))


def test_rms_output_norms_single_layer_is_never_normalized() -> None:
    plain = chain_rms_output_norms([(9, 4)], 2.0, x_norm=0.5)
    assert np.array_equal(
        plain, chain_rms_output_norms([(9, 4)], 2.0, x_norm=0.5, normalized=True)
    )
    assert plain[0] == 0.5 * 2.0 * 3.0


def test_rms_sampler_unbiased_for_plain_chain() -> None:
    """The square of each estimate is unbiased for E||y_i||^2: 40 independent runs, 4 SE."""
    shapes, sigmas = [(4, 3), (6, 4), (1, 6)], [1.5, 0.5, 2.0]
    runs = np.array(
        [
            sample_chain_rms_output_norms(shapes, 50, sigma=sigmas, batch=8, rng=seed) ** 2
            for seed in range(40)
        ]
    )
    expected = np.array([1.5**2 * 4, 1.5**2 * 4 * 0.25 * 6, 1.5**2 * 4 * 0.25 * 6 * 4.0])
    for i in range(3):
        assert within(runs[:, i], float(expected[i])), (runs[:, i].mean(), expected[i])


def test_rms_sampler_normalized_hidden_layers_exact() -> None:
    """A normalized unit has batch variance var / (var + eps): with a tiny eps, sqrt(m) exactly."""
    sizes = sample_chain_rms_output_norms(
        [(7, 3), (5, 7), (2, 5)], 3, sigma=[100.0, 0.01, 1.0], normalize=True, eps=1e-12, rng=1
    )
    assert np.allclose(sizes[:2], [np.sqrt(7), np.sqrt(5)], rtol=1e-9), sizes
    tiny_weights = sample_chain_rms_output_norms(  # eps takes over: variance about 1e-6 / 3 < eps
        [(7, 3), (2, 7)], 20, sigma=[1e-3, 1.0], normalize=True, eps=1e-5, rng=1
    )
    assert tiny_weights[0] < 0.5 * np.sqrt(7), tiny_weights


def test_rms_sampler_is_reproducible_and_draws_unit_inputs() -> None:
    a = sample_chain_rms_output_norms([(3, 2)], 4, sigma=1.0, batch=5, rng=3)
    b = sample_chain_rms_output_norms([(3, 2)], 4, sigma=1.0, batch=5, rng=3)
    assert np.array_equal(a, b)
    # one 1 x 1 layer: y = w x with |x| = 1, so the mean square is E[w^2] = sigma^2 = 4; over
    # 20,000 networks its standard error is sqrt(2 sigma^4 / 20,000) = 0.04, i.e. 0.01 on the
    # root: 0.05 is 5 standard errors
    one = sample_chain_rms_output_norms([(1, 1)], 20_000, sigma=2.0, batch=2, rng=4)
    assert abs(one[0] - 2.0) < 0.05, one


def test_bad_rms_arguments() -> None:
    with pytest.raises(ValueError, match="batch: expected an int >= 2, got 1"):
        sample_chain_rms_output_norms(batch=1)
    with pytest.raises(ValueError, match="n_networks: expected an int >= 1, got 0"):
        sample_chain_rms_output_norms(n_networks=0)
    with pytest.raises(TypeError, match="normalize: expected a bool, got int"):
        sample_chain_rms_output_norms(normalize=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"eps: expected a finite number > 0, got 0\.0"):
        sample_chain_rms_output_norms(eps=0.0)
    with pytest.raises(TypeError, match="normalized: expected a bool, got str"):
        chain_rms_output_norms(normalized="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"x_norm: expected a finite number > 0, got 0"):
        chain_rms_output_norms(x_norm=0)
