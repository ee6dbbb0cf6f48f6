"""Tests for bnlessons.batchnorm, against float64 two-pass references written here,
central finite differences and closed forms."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bnlessons.batchnorm import BatchNorm, BatchNormCache, batchnorm_backward, batchnorm_forward
from bnlessons.checks import numerical_gradient, relative_error

SHAPES = [(7, 3), (5, 4, 6), (3, 2, 4, 5), (2, 3, 2, 2, 3)]
# Finite-difference step: the central difference errs by O(h**2) (truncation) plus
# O(eps * |L| / h) (rounding); h near eps**(1/3) balances them for these O(1)-O(10) losses.
H = 3e-5


# --------------------------------------------------------------------------- references
def reference_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and biased variance, float64, two passes, written out by hand."""
    x64 = np.moveaxis(x.astype(np.float64), 1, 0).reshape(x.shape[1], -1)  # (C, m)
    m = x64.shape[1]
    mean = x64.sum(axis=1) / m
    var = ((x64 - mean[:, None]) ** 2).sum(axis=1) / m
    return mean, var


def per_channel(v: np.ndarray, ndim: int) -> np.ndarray:
    return np.asarray(v).reshape((-1,) + (1,) * (ndim - 2))


def reference_bn(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float, mean=None, var=None
) -> np.ndarray:
    """Algorithm 1 (or, with mean/var given, Algorithm 2) in float64."""
    if mean is None or var is None:
        mean, var = reference_stats(x)
    x64 = x.astype(np.float64)
    x_hat = (x64 - per_channel(mean, x.ndim)) / np.sqrt(per_channel(var, x.ndim) + eps)
    return per_channel(gamma, x.ndim) * x_hat + per_channel(beta, x.ndim)


def batch(shape: tuple[int, ...], seed: int, loc: float = 0.0, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # a different mean and spread per channel
    c_loc = loc + rng.uniform(-2, 2, size=shape[1])
    c_scale = scale * rng.uniform(0.5, 2, size=shape[1])
    return per_channel(c_loc, len(shape)) + per_channel(c_scale, len(shape)) * rng.standard_normal(
        shape
    )


# --------------------------------------------------------------------------- forward
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_two_pass_reference(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(1)
    x = batch(shape, seed=2, loc=3.0, scale=2.0)
    gamma, beta = rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    y, cache = batchnorm_forward(x, gamma, beta, eps=1e-3)
    np.testing.assert_allclose(y, reference_bn(x, gamma, beta, 1e-3), rtol=1e-12, atol=1e-12)
    mean, var = reference_stats(x)
    np.testing.assert_allclose(cache.mean, mean, rtol=1e-13)
    np.testing.assert_allclose(cache.var, var, rtol=1e-12)
    assert cache.count == x.size // shape[1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(9, 4), (3, 4, 5, 2)])
def test_output_dtype_equals_input_dtype(dtype: type, shape: tuple[int, ...]) -> None:
    x = batch(shape, seed=3).astype(dtype)
    gamma, beta = np.full(shape[1], 1.5), np.full(shape[1], -0.5)
    y, cache = batchnorm_forward(x, gamma, beta)
    assert y.dtype == dtype and cache.x_hat.dtype == dtype and y.shape == shape
    dx, _, _ = batchnorm_backward(np.ones_like(y), cache)
    assert dx.dtype == dtype and dx.shape == shape
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, reference_bn(x, gamma, beta, 1e-5), rtol=tol, atol=tol)


def test_no_affine_output_is_x_hat() -> None:
    x = batch((6, 3), seed=4)
    y, cache = batchnorm_forward(x, None, None)
    np.testing.assert_allclose(y, reference_bn(x, np.ones(3), np.zeros(3), 1e-5), atol=1e-12)
    assert y is not cache.x_hat and cache.gamma is None


@pytest.mark.parametrize("shape", [(65536, 3), (64, 2, 32, 32), (256, 3)])
def test_variance_is_stable_in_float32(shape: tuple[int, ...]) -> None:
    """float32 1000 + N(0, 1), in blocks or one small batch: variance within 1e-5 relative."""
    rng = np.random.default_rng(5)
    x = (1000.0 + rng.standard_normal(shape)).astype(np.float32)
    _, cache = batchnorm_forward(x, None, None)
    x64 = np.moveaxis(x.astype(np.float64), 1, 0).reshape(shape[1], -1)
    mean = x64.sum(axis=1) / x64.shape[1]
    var = ((x64 - mean[:, None]) ** 2).sum(axis=1) / x64.shape[1]  # float64 two-pass
    np.testing.assert_allclose(cache.var, var, rtol=1e-5)
    # the one-pass formula in float32 is far off here: the reason for two passes
    one_pass = (x * x).mean(axis=0, dtype=np.float32) - x.mean(axis=0, dtype=np.float32) ** 2
    assert np.abs(one_pass.reshape(-1)[0] / var[0] - 1) > 1e-2


# --------------------------------------------------------------------------- gradients
def loss_weights(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
def test_gradients_match_finite_differences(shape: tuple[int, ...], affine: bool) -> None:
    rng = np.random.default_rng(6)
    x = batch(shape, seed=7, loc=1.0)
    gamma = rng.uniform(0.5, 2.0, shape[1]) if affine else None
    beta = rng.standard_normal(shape[1]) if affine else None
    w = loss_weights(shape, seed=8)  # L = sum(w * y), so dL/dy = w

    def loss_of_x(x_: np.ndarray) -> float:
        return float(np.sum(w * batchnorm_forward(x_, gamma, beta)[0]))

    _, cache = batchnorm_forward(x, gamma, beta)
    dx, dgamma, dbeta = batchnorm_backward(w, cache)
    assert relative_error(dx, numerical_gradient(loss_of_x, x, h=H)) < 1e-7
    if affine:
        assert gamma is not None and beta is not None

        def loss_of_gamma(g: np.ndarray) -> float:
            return float(np.sum(w * batchnorm_forward(x, g, beta)[0]))

        def loss_of_beta(b: np.ndarray) -> float:
            return float(np.sum(w * batchnorm_forward(x, gamma, b)[0]))

        assert relative_error(dgamma, numerical_gradient(loss_of_gamma, gamma, h=H)) < 1e-7
        assert relative_error(dbeta, numerical_gradient(loss_of_beta, beta, h=H)) < 1e-7
    else:  # the gradient a gamma/beta of ones/zeros would get
        x_hat = reference_bn(x, np.ones(shape[1]), np.zeros(shape[1]), 1e-5)
        axes = (0, *range(2, len(shape)))
        np.testing.assert_allclose(dgamma, (w * x_hat).sum(axis=axes), rtol=1e-10)
        np.testing.assert_allclose(dbeta, w.sum(axis=axes), rtol=1e-10)


def paper_backward(
    dy: np.ndarray, x: np.ndarray, gamma: np.ndarray, eps: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The backprop equations of Ioffe & Szegedy (2015, section 3), step by step, float64."""
    dy, x = dy.astype(np.float64), x.astype(np.float64)
    axes = (0, *range(2, x.ndim))
    m = x.size // x.shape[1]
    mu, var = (per_channel(v, x.ndim) for v in reference_stats(x))
    g = per_channel(gamma, x.ndim)
    x_hat = (x - mu) / np.sqrt(var + eps)
    dx_hat = dy * g
    dvar = np.sum(dx_hat * (x - mu), axis=axes, keepdims=True) * -0.5 * (var + eps) ** -1.5
    dmu = (
        np.sum(-dx_hat / np.sqrt(var + eps), axis=axes, keepdims=True)
        + dvar * np.sum(-2 * (x - mu), axis=axes, keepdims=True) / m
    )
    dx = dx_hat / np.sqrt(var + eps) + dvar * 2 * (x - mu) / m + dmu / m
    return dx, np.sum(dy * x_hat, axis=axes), np.sum(dy, axis=axes)


# shapes that the implementation walks in several cache-sized blocks (and a ragged last one)
LARGE_SHAPES = [(1000, 300), (700, 7), (3, 4, 100, 100), (400, 3, 50), (5, 2, 3, 7000)]
# one block, the whole-array path of a small (N, C) batch (bnlessons._blocks.small_forward),
# whose per-channel factors are repeated down a tile of k rows dividing N: all of them
# (60, 100), 64 of 256 (256, 200), 16 of 256 in float32 (256, 1024), 1 when N is prime (251, 300)
SMALL_SHAPES = [(60, 100), (256, 40), (3, 5), (256, 200), (256, 1024), (251, 300)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", LARGE_SHAPES + SMALL_SHAPES)
def test_large_batches_match_the_references(shape: tuple[int, ...], dtype: type) -> None:
    rng = np.random.default_rng(12)
    x = batch(shape, seed=13, loc=-2.0, scale=3.0).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    gamma, beta = rng.uniform(0.5, 2, shape[1]), rng.standard_normal(shape[1])
    y, cache = batchnorm_forward(x, gamma, beta)
    mean, var = reference_stats(x)
    rtol = 1e-11 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(cache.mean, mean, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(cache.var, var, rtol=rtol)
    np.testing.assert_allclose(y, reference_bn(x, gamma, beta, 1e-5), rtol=rtol, atol=10 * rtol)
    dx, dgamma, dbeta = batchnorm_backward(dy, cache)
    ref_dx, ref_dgamma, ref_dbeta = paper_backward(dy, x, gamma, 1e-5)
    scale = np.abs(ref_dx).max()
    np.testing.assert_allclose(
        dx, ref_dx, rtol=0, atol=(1e-11 if dtype == np.float64 else 1e-4) * scale
    )
    np.testing.assert_allclose(dgamma, ref_dgamma, rtol=rtol * 10, atol=rtol * np.sqrt(dy.size))
    np.testing.assert_allclose(dbeta, ref_dbeta, rtol=rtol * 10, atol=rtol * np.sqrt(dy.size))


def test_statistics_when_the_first_block_lies_far_from_the_batch_mean() -> None:
    """A large (N, C) batch is centred on its first block's mean (256 rows here): with those
    rows 1000 above the other 65,280 (16 standard deviations from the batch mean), centring on
    them cancels digits of the float32 sums (errors of ~3e-6); the statistics are then taken
    again centred on the batch mean, as accurate as for any batch (~2e-7)."""
    x = batch((65536, 16), seed=21)
    x[:256] += 1000.0
    x32 = x.astype(np.float32)
    _, cache = batchnorm_forward(x32, None, None)
    mean, var = reference_stats(x32)
    np.testing.assert_allclose(cache.mean, mean, rtol=1e-6)
    np.testing.assert_allclose(cache.var, var, rtol=1e-6)


def test_cache_is_a_frozen_dataclass() -> None:
    _, cache = batchnorm_forward(batch((4, 2), seed=9), None, None)
    assert isinstance(cache, BatchNormCache)
    with pytest.raises(AttributeError):
        cache.eps = 1.0  # type: ignore[misc]


# --------------------------------------------------------------------------- the layer
def test_layer_defaults() -> None:
    bn = BatchNorm(4)
    assert bn.training and bn.num_batches_tracked == 0 and bn.momentum == 0.1
    np.testing.assert_array_equal(bn.gamma, np.ones(4))
    np.testing.assert_array_equal(bn.beta, np.zeros(4))
    np.testing.assert_array_equal(bn.running_mean, np.zeros(4))
    np.testing.assert_array_equal(bn.running_var, np.ones(4))
    assert bn.eval() is bn and not bn.training
    assert bn.train() is bn and bn.training
    assert bn.gamma is not None and bn.gamma.dtype == np.float64
    assert BatchNorm(4, dtype=np.float32).running_var.dtype == np.float32


@pytest.mark.parametrize("shape", [(10, 3), (4, 3, 5), (3, 3, 4, 2)])
@pytest.mark.parametrize("momentum", [0.1, 0.5, 0.0, 1.0])
def test_running_statistics_follow_the_momentum_rule(
    shape: tuple[int, ...], momentum: float
) -> None:
    bn = BatchNorm(shape[1], momentum=momentum)
    running_mean, running_var = np.zeros(shape[1]), np.ones(shape[1])
    m = np.prod(shape) // shape[1]
    for step in range(4):
        x = batch(shape, seed=10 + step, loc=5.0, scale=3.0)
        bn(x)
        mean, var = reference_stats(x)
        running_mean = (1 - momentum) * running_mean + momentum * mean
        running_var = (1 - momentum) * running_var + momentum * var * m / (m - 1)
    np.testing.assert_allclose(bn.running_mean, running_mean, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(bn.running_var, running_var, rtol=1e-12)
    assert bn.num_batches_tracked == 4


def test_momentum_none_is_the_cumulative_average() -> None:
    bn = BatchNorm(2, momentum=None)
    xs = [batch((6, 2), seed=20 + k, loc=2.0) for k in range(5)]
    for x in xs:
        bn(x)
    means = [reference_stats(x)[0] for x in xs]
    unbiased = [reference_stats(x)[1] * 6 / 5 for x in xs]
    np.testing.assert_allclose(bn.running_mean, np.mean(means, axis=0), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, np.mean(unbiased, axis=0), rtol=1e-12)


def test_changing_momentum_changes_the_next_update_only() -> None:
    """One momentum, one batch counter (PyTorch's model): a new momentum takes effect at once."""
    bn = BatchNorm(2, momentum=0.1)
    xs = [batch((6, 2), seed=40 + k, loc=1.0) for k in range(3)]
    bn(xs[0])
    bn.momentum = 0.5
    bn(xs[1])
    bn.momentum = None  # cumulative from here: the weight is 1 / num_batches_tracked
    bn(xs[2])
    expected = np.zeros(2)
    for x, weight in zip(xs, [0.1, 0.5, 1 / 3], strict=True):
        expected = (1 - weight) * expected + weight * reference_stats(x)[0]
    np.testing.assert_allclose(bn.running_mean, expected, rtol=1e-12)
    assert bn.num_batches_tracked == 3


def test_layer_reuses_its_work_buffer_only_for_the_same_shape() -> None:
    """The layer keeps the last small batch's work array: batches of other shapes (both
    small-batch kernels, and the blocked one) in any order give the references."""
    bn = BatchNorm(160)
    for k, shape in enumerate([(60, 160), (256, 160), (60, 160), (300, 160), (2, 160), (60, 160)]):
        x = batch(shape, seed=70 + k, loc=1.0, scale=2.0)
        dy = np.random.default_rng(80 + k).standard_normal(shape)
        y = bn(x)
        dx = bn.backward(dy)
        np.testing.assert_allclose(
            y, reference_bn(x, np.ones(160), np.zeros(160), 1e-5), atol=1e-12
        )
        ref_dx, ref_dgamma, _ = paper_backward(dy, x, np.ones(160), 1e-5)
        np.testing.assert_allclose(dx, ref_dx, atol=1e-11 * np.abs(ref_dx).max())
        np.testing.assert_allclose(bn.grad_gamma, ref_dgamma, rtol=1e-10, atol=1e-10)


def test_assigning_running_statistics_copies_the_values_in() -> None:
    bn, other = BatchNorm(3), BatchNorm(3)
    source = np.array([1.0, 2.0, 3.0])
    other.running_mean, other.running_var = source, source * 2
    source[:] = 0.0  # the layer keeps a copy, not the array
    assert other.running_mean.tolist() == [1.0, 2.0, 3.0]
    assert other.running_var.tolist() == [2.0, 4.0, 6.0]
    x = batch((5, 3), seed=41, loc=2.0)
    other(x)  # the next batch is folded into the assigned values
    mean, var = reference_stats(x)
    np.testing.assert_allclose(other.running_mean, 0.9 * np.array([1, 2, 3]) + 0.1 * mean)
    np.testing.assert_allclose(other.running_var, 0.9 * np.array([2, 4, 6]) + 0.1 * var * 5 / 4)
    raises(ValueError, "running_mean", "(3,)", "(2,)")(
        lambda: setattr(bn, "running_mean", np.zeros(2))
    )
    raises(TypeError, "running_var", "float", "bool")(
        lambda: setattr(bn, "running_var", np.ones(3, bool))
    )
    untracked = BatchNorm(3, track_running_stats=False)
    untracked.running_mean = None  # nothing to set
    assert untracked.running_mean is None
    raises(ValueError, "running_mean", "track_running_stats=False")(
        lambda: setattr(untracked, "running_mean", np.zeros(3))
    )


@pytest.mark.parametrize("shape", [(8, 3), (3, 3, 4, 2)])
def test_eval_mode_uses_running_statistics_and_its_gradient_is_the_affine_map(
    shape: tuple[int, ...],
) -> None:
    rng = np.random.default_rng(30)
    bn = BatchNorm(shape[1], momentum=0.3)
    bn.gamma, bn.beta = rng.uniform(0.5, 2, shape[1]), rng.standard_normal(shape[1])
    for step in range(3):
        bn(batch(shape, seed=31 + step, loc=4.0))
    running = (bn.running_mean.copy(), bn.running_var.copy(), bn.num_batches_tracked)
    bn.eval()
    x = batch(shape, seed=40, loc=4.0)
    y = bn(x)
    expected = reference_bn(x, bn.gamma, bn.beta, 1e-5, mean=running[0], var=running[1])
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(bn.running_mean, running[0])  # eval does not update
    assert bn.num_batches_tracked == running[2]
    scale, shift = bn.inference_affine()
    np.testing.assert_allclose(
        y, x * per_channel(scale, x.ndim) + per_channel(shift, x.ndim), rtol=1e-12, atol=1e-12
    )

    w = loss_weights(shape, seed=41)
    gamma, beta = bn.gamma.copy(), bn.beta.copy()

    def eval_loss(x_: np.ndarray, g: np.ndarray, b: np.ndarray) -> float:
        return float(np.sum(w * reference_bn(x_, g, b, 1e-5, mean=running[0], var=running[1])))

    dx = bn.backward(w)
    assert (
        relative_error(dx, numerical_gradient(lambda v: eval_loss(v, gamma, beta), x, h=H)) < 1e-7
    )
    num_g = numerical_gradient(lambda v: eval_loss(x, v, beta), gamma, h=H)
    num_b = numerical_gradient(lambda v: eval_loss(x, gamma, v), beta, h=H)
    assert relative_error(bn.grad_gamma, num_g) < 1e-7
    assert relative_error(bn.grad_beta, num_b) < 1e-7


def test_layer_train_backward_matches_finite_differences() -> None:
    shape = (6, 3, 2, 2)
    bn = BatchNorm(3)
    x, w = batch(shape, seed=50), loss_weights(shape, seed=51)
    bn(x)
    dx = bn.backward(w)

    def loss(x_: np.ndarray) -> float:
        return float(np.sum(w * reference_bn(x_, np.ones(3), np.zeros(3), 1e-5)))

    assert relative_error(dx, numerical_gradient(loss, x, h=H)) < 1e-7
    x_hat = reference_bn(x, np.ones(3), np.zeros(3), 1e-5)
    np.testing.assert_allclose(bn.grad_gamma, (w * x_hat).sum(axis=(0, 2, 3)), rtol=1e-10)
    np.testing.assert_allclose(bn.grad_beta, w.sum(axis=(0, 2, 3)), rtol=1e-10)


def test_without_running_statistics_batch_statistics_are_used_in_eval_too() -> None:
    bn = BatchNorm(3, track_running_stats=False)
    assert bn.running_mean is None and bn.running_var is None
    assert bn.num_batches_tracked is None
    x = batch((5, 3), seed=60, loc=7.0)
    y_train = bn(x)
    y_eval = bn.eval()(x)
    expected = reference_bn(x, np.ones(3), np.zeros(3), 1e-5)
    np.testing.assert_allclose(y_train, expected, atol=1e-12)
    np.testing.assert_allclose(y_eval, expected, atol=1e-12)
    dx = bn.backward(np.ones_like(x))  # batch-statistics backward: constant dy gives 0
    np.testing.assert_allclose(dx, 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="track_running_stats"):
        bn.inference_affine()


def test_no_affine_layer() -> None:
    bn = BatchNorm(2, affine=False)
    assert bn.gamma is None and bn.beta is None
    x = batch((5, 2), seed=70, loc=-3.0)
    np.testing.assert_allclose(bn(x), reference_bn(x, np.ones(2), np.zeros(2), 1e-5), atol=1e-12)
    bn.backward(np.ones_like(x))
    assert bn.grad_gamma is None and bn.grad_beta is None


def test_float32_layer_keeps_float32() -> None:
    bn = BatchNorm(3, dtype=np.float32)
    x = batch((8, 3), seed=80).astype(np.float32)
    y = bn(x)
    assert y.dtype == np.float32 and bn.backward(y).dtype == np.float32
    assert bn.running_mean.dtype == np.float32 and bn.grad_gamma.dtype == np.float32
    assert bn.eval()(x).dtype == np.float32


# --------------------------------------------------------------------------- properties
shapes = st.one_of(
    st.tuples(st.integers(2, 12), st.integers(1, 4)),
    st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(1, 4), st.integers(2, 4)),
)
locs = st.floats(-1e3, 1e3)
scales = st.floats(1e-2, 1e2)
seeds = st.integers(0, 2**32 - 1)


@settings(max_examples=60, deadline=None)
@given(shape=shapes, loc=locs, scale=scales, seed=seeds)
def test_train_output_has_zero_mean_and_unit_variance(
    shape: tuple[int, ...], loc: float, scale: float, seed: int
) -> None:
    x = batch(shape, seed, loc, scale)
    eps = 1e-5
    y, _ = batchnorm_forward(x, np.ones(shape[1]), np.zeros(shape[1]), eps=eps)
    mean_y, var_y = reference_stats(y)
    _, var_x = reference_stats(x)
    np.testing.assert_allclose(mean_y, 0.0, atol=1e-9)
    # closed form: var(x_hat) = var / (var + eps), which is 1 up to eps
    np.testing.assert_allclose(var_y, var_x / (var_x + eps), rtol=1e-9)


@settings(max_examples=60, deadline=None)
@given(shape=shapes, loc=locs, scale=scales, seed=seeds)
def test_gamma_sigma_beta_mu_recovers_the_input(
    shape: tuple[int, ...], loc: float, scale: float, seed: int
) -> None:
    """The notes' claim: gamma = sqrt(var + eps) and beta = mean give back y = x."""
    x = batch(shape, seed, loc, scale)
    mean, var = reference_stats(x)
    y, _ = batchnorm_forward(x, np.sqrt(var + 1e-5), mean)
    np.testing.assert_allclose(y, x, rtol=0, atol=1e-10 * (abs(loc) + 2 * scale + 2))


@settings(max_examples=60, deadline=None)
@given(
    shape=shapes,
    seed=seeds,
    a=st.floats(1e-3, 1e3),
)
def test_scale_invariance(shape: tuple[int, ...], seed: int, a: float) -> None:
    """Paper section 3.3: BN(a W u) = BN(W u), exact once eps scales with a**2."""
    rng = np.random.default_rng(seed)
    u = rng.standard_normal((shape[0], 5, *shape[2:]))
    w = rng.standard_normal((shape[1], 5))
    z = np.einsum("cf,nf...->nc...", w, u)  # W u per sample (and spatial position)
    eps = 1e-5
    y, cache = batchnorm_forward(z, None, None, eps=eps)
    y_a, cache_a = batchnorm_forward(a * z, None, None, eps=eps * a**2)
    np.testing.assert_allclose(y_a, y, rtol=1e-9, atol=1e-9)
    # and the gradient with respect to the layer input scales as 1/a
    dy = rng.standard_normal(z.shape)
    dz = batchnorm_backward(dy, cache)[0]
    dz_a = batchnorm_backward(dy, cache_a)[0]
    np.testing.assert_allclose(a * dz_a, dz, rtol=1e-8, atol=1e-8 * np.abs(dz).max())
    # with one fixed eps it holds up to O(eps / var): |x_hat| <= sqrt(m) and
    # |1/sqrt(v + eps/a^2) - 1/sqrt(v + eps)| <= eps (1 + 1/a^2) / (2 v^1.5)
    _, var = reference_stats(z)
    if var.min() > 1e-2:
        y_fixed, _ = batchnorm_forward(a * z, None, None, eps=eps)
        bound = np.sqrt(cache.count) * eps * (1 + a**-2) / var.min()
        np.testing.assert_allclose(y_fixed, y, rtol=0, atol=bound)


@settings(max_examples=60, deadline=None)
@given(shape=shapes, loc=locs, scale=scales, seed=seeds)
def test_dx_sums_to_zero_per_channel(
    shape: tuple[int, ...], loc: float, scale: float, seed: int
) -> None:
    x = batch(shape, seed, loc, scale)
    rng = np.random.default_rng(seed + 1)
    gamma = rng.uniform(0.1, 3, shape[1])
    _, cache = batchnorm_forward(x, gamma, rng.standard_normal(shape[1]))
    dy = rng.standard_normal(shape)
    dx, _, _ = batchnorm_backward(dy, cache)
    axes = (0, *range(2, len(shape)))
    # the size dx can have: |gamma| / std * m * max|dy|
    bound = 3 * cache.inv_std * np.abs(dy).max() * cache.count
    # times the conditioning of centering: the rounding of the mean is eps * |mean| / std
    bound *= 1 + np.abs(cache.mean) * cache.inv_std
    assert np.all(np.abs(dx.sum(axis=axes)) <= 1e-12 * bound)
    # closed form of its component along x_hat: scale * dgamma * eps / (var + eps), which
    # vanishes as eps -> 0 (x_hat is the other direction the normalization removes)
    dgamma = np.sum(dy * cache.x_hat, axis=axes)
    along = gamma / np.sqrt(cache.var + 1e-5) * dgamma * 1e-5 / (cache.var + 1e-5)
    np.testing.assert_allclose(
        np.sum(dx * cache.x_hat, axis=axes), along, rtol=1e-6, atol=1e-11 * bound.max()
    )


@settings(max_examples=25, deadline=None)
@given(
    mu=st.floats(-100, 100),
    sigma=st.floats(0.1, 10),
    seed=seeds,
    momentum=st.sampled_from([None, 0.01]),
)
def test_running_statistics_converge_to_the_population(
    mu: float, sigma: float, seed: int, momentum: float | None
) -> None:
    rng = np.random.default_rng(seed)
    bn = BatchNorm(2, momentum=momentum)
    for _ in range(800):
        bn(mu + sigma * rng.standard_normal((16, 2)))
    # cumulative: 12,800 draws; momentum 0.01: about 200 batches of 16 in the average
    n_eff = 800 * 16 if momentum is None else 16 / (momentum / (2 - momentum))
    tol_mean = 6 * sigma / np.sqrt(n_eff)
    tol_var = 6 * sigma**2 * np.sqrt(2 / n_eff)
    # the initial values (0 and 1) keep the weight (1 - momentum)**800 in the average
    left = 0.0 if momentum is None else (1 - momentum) ** 800
    np.testing.assert_allclose(bn.running_mean, (1 - left) * mu, atol=tol_mean)
    np.testing.assert_allclose(bn.running_var, (1 - left) * sigma**2 + left, atol=tol_var)


@settings(max_examples=40, deadline=None)
@given(shape=shapes, loc=locs, scale=scales, seed=seeds, momentum=st.floats(0, 1))
def test_eval_output_is_the_folded_affine_map(
    shape: tuple[int, ...], loc: float, scale: float, seed: int, momentum: float
) -> None:
    rng = np.random.default_rng(seed)
    bn = BatchNorm(shape[1], momentum=momentum)
    bn.gamma, bn.beta = rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    for k in range(3):
        bn(batch(shape, seed + k, loc, scale))
    x = batch(shape, seed + 3, loc, scale)
    y = bn.eval()(x)
    scale_, shift = bn.inference_affine()
    folded = x * per_channel(scale_, x.ndim) + per_channel(shift, x.ndim)
    np.testing.assert_allclose(y, folded, rtol=1e-12, atol=1e-12 * np.abs(folded).max())
    # and both equal Algorithm 2 written out
    expected = reference_bn(x, bn.gamma, bn.beta, 1e-5, mean=bn.running_mean, var=bn.running_var)
    np.testing.assert_allclose(y, expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())


# --------------------------------------------------------------------------- bad input
def raises(
    exc: type[Exception], *words: str
) -> Callable[[Callable[[], object]], None]:  # pragma: no cover - helper
    def check(call: Callable[[], object]) -> None:
        with pytest.raises(exc) as info:
            call()
        for word in words:
            assert word in str(info.value), (word, str(info.value))

    return check


def test_bad_x_dimensions() -> None:
    raises(ValueError, "x", "(N, C)", "(5,)")(lambda: batchnorm_forward(np.ones(5), None, None))
    raises(ValueError, "x", "(N, C)", "(5,)")(lambda: BatchNorm(5)(np.ones(5)))


def test_channel_count_must_match_num_features() -> None:
    raises(ValueError, "x", "3 channels", "(4, 2)")(lambda: BatchNorm(3)(np.ones((4, 2))))
    raises(ValueError, "x", "3 channels", "(4, 2, 5)")(lambda: BatchNorm(3)(np.ones((4, 2, 5))))


def test_gamma_and_beta_shapes() -> None:
    x = np.ones((4, 3))
    raises(ValueError, "gamma", "(3,)", "(2,)")(lambda: batchnorm_forward(x, np.ones(2), None))
    raises(ValueError, "beta", "(3,)", "(3, 1)")(
        lambda: batchnorm_forward(x, None, np.ones((3, 1)))
    )


@pytest.mark.parametrize("shape", [(1, 3), (1, 3, 1), (1, 2, 1, 1)])
def test_one_value_per_channel_in_training(shape: tuple[int, ...]) -> None:
    x = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    raises(ValueError, "x", "more than 1 value per channel", str(shape))(
        lambda: batchnorm_forward(x, None, None)
    )
    raises(ValueError, "x", "more than 1 value per channel")(lambda: BatchNorm(shape[1])(x))


def test_a_single_sample_is_fine_in_eval_mode() -> None:
    bn = BatchNorm(3).eval()
    x = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(bn(x), x / np.sqrt(1 + 1e-5))


def test_dy_shape_must_match_the_forward_output() -> None:
    x = np.random.default_rng(90).standard_normal((4, 3))
    _, cache = batchnorm_forward(x, None, None)
    raises(ValueError, "dy", "(4, 3)", "(3, 4)")(
        lambda: batchnorm_backward(np.ones((3, 4)), cache)
    )
    bn = BatchNorm(3)
    bn(x)
    raises(ValueError, "dy", "(4, 3)", "(4, 3, 1)")(lambda: bn.backward(np.ones((4, 3, 1))))
    bn.eval()(x)
    raises(ValueError, "dy", "(4, 3)", "(2, 3)")(lambda: bn.backward(np.ones((2, 3))))


def test_backward_before_forward() -> None:
    raises(ValueError, "forward")(lambda: BatchNorm(3).backward(np.ones((4, 3))))
    raises(TypeError, "cache", "BatchNormCache")(
        lambda: batchnorm_backward(np.ones((4, 3)), None)  # type: ignore[arg-type]
    )


def test_non_float_dtypes() -> None:
    ints = np.ones((4, 3), dtype=np.int64)
    raises(TypeError, "x", "float32 or float64", "int64")(
        lambda: batchnorm_forward(ints, None, None)
    )
    raises(TypeError, "x", "float32 or float64", "int64")(lambda: BatchNorm(3)(ints))
    raises(TypeError, "x", "bool")(lambda: BatchNorm(3)(ints > 0))
    raises(TypeError, "dtype", "float32 or float64", "int32")(
        lambda: BatchNorm(3, dtype=np.int32)  # type: ignore[arg-type]
    )
    _, cache = batchnorm_forward(np.eye(3), None, None)
    raises(TypeError, "dy", "float", "int64")(lambda: batchnorm_backward(ints[:3], cache))
    bn = BatchNorm(3)
    bn(np.eye(3))
    raises(TypeError, "dy", "float", "int64")(lambda: bn.backward(ints[:3]))
    raises(TypeError, "gamma", "float")(lambda: batchnorm_forward(np.eye(3), ints[0], None))


@pytest.mark.parametrize("eps", [0.0, -1e-5, float("nan"), float("inf")])
def test_eps_must_be_positive(eps: float) -> None:
    raises(ValueError, "eps", "> 0", repr(eps))(
        lambda: batchnorm_forward(np.eye(3), None, None, eps=eps)
    )
    raises(ValueError, "eps", "> 0")(lambda: BatchNorm(3, eps=eps))


@pytest.mark.parametrize("momentum", [-0.1, 1.5, float("nan")])
def test_momentum_outside_unit_interval(momentum: float) -> None:
    raises(ValueError, "momentum", "[0, 1]", repr(momentum))(
        lambda: BatchNorm(3, momentum=momentum)
    )
    bn = BatchNorm(3)
    with pytest.raises(ValueError, match="momentum"):
        bn.momentum = momentum
    raises(TypeError, "momentum", "str")(lambda: BatchNorm(3, momentum="0.1"))  # type: ignore[arg-type]


@pytest.mark.parametrize("num_features", [0, -2])
def test_num_features_at_least_one(num_features: int) -> None:
    raises(ValueError, "num_features", ">= 1", str(num_features))(lambda: BatchNorm(num_features))


def test_num_features_must_be_an_int() -> None:
    raises(TypeError, "num_features", "int", "float")(lambda: BatchNorm(3.0))  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("shape", [(6, 3), (2, 3, 2, 2)])
def test_nan_or_inf_in_a_training_batch(bad: float, shape: tuple[int, ...]) -> None:
    x = batch(shape, seed=95)
    x.reshape(-1)[4] = bad  # in channel 1 for both shapes? report whichever channel it is
    channel = np.unravel_index(4, shape)[1]
    raises(ValueError, "x", "finite", "NaN or inf", f"[{channel}]")(
        lambda: batchnorm_forward(x, None, None)
    )
    bn = BatchNorm(3)
    raises(ValueError, "x", "finite")(lambda: bn(x))
    assert bn.num_batches_tracked == 0  # the bad batch did not reach the running statistics
    np.testing.assert_array_equal(bn.running_mean, np.zeros(3))
