"""Tests for bnlessons.norms: the noise's distribution, finite differences, the variants' runs."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest

from bnlessons.batchnorm import BatchNorm
from bnlessons.checks import numerical_gradient
from bnlessons.layernorm import LayerNorm
from bnlessons.mlp import SigmoidMLP
from bnlessons.mnist import MnistData, images_to_features, load_mnist
from bnlessons.norms import (
    NoisyBatchNorm,
    Norm,
    NormConfig,
    norm_layers,
    training_mode_accuracy,
    use_norm,
)
from bnlessons.training import FIGURE1, TrainingConfig, evaluate, train


@pytest.fixture(scope="module")
def data() -> MnistData:
    return load_mnist()


def test_noise_matches_its_distribution_over_many_steps() -> None:
    """Scales ~ U(1, 3) and shifts ~ U(-2, 2): means and variances within 4 standard errors."""
    units, steps = 50, 400
    layer = NoisyBatchNorm(units, max_scale=3.0, max_shift=2.0, rng=np.random.default_rng(1))
    x = np.random.default_rng(2).normal(5.0, 3.0, size=(64, units))
    scales, shifts = [], []
    for _ in range(steps):
        y = layer(x)
        assert layer.scale is not None and layer.shift is not None
        # each unit's output over the batch has mean shift and std scale * sd(x_hat)
        np.testing.assert_allclose(y.mean(axis=0), layer.shift, atol=1e-9)
        x_hat_sd = np.sqrt(x.var(axis=0) / (x.var(axis=0) + layer.eps))
        np.testing.assert_allclose(y.std(axis=0), layer.scale * x_hat_sd, rtol=1e-9)
        scales.append(layer.scale.copy())
        shifts.append(layer.shift.copy())
    a, b = np.concatenate(scales), np.concatenate(shifts)
    n = a.size
    for sample, mean, var in ((a, 2.0, 4.0 / 12), (b, 0.0, 16.0 / 12)):
        assert abs(sample.mean() - mean) < 4 * np.sqrt(var / n), sample.mean()
        # variance of a uniform's squared deviation: E(d^4) - var^2 = var^2 (9/5 - 1)
        assert abs(sample.var() - var) < 4 * np.sqrt(0.8 * var**2 / n), sample.var()
    assert a.min() >= 1.0 and a.max() <= 3.0 and np.abs(b).max() <= 2.0
    # redrawn at every step: consecutive draws differ
    assert not np.array_equal(scales[0], scales[1])


def test_noisy_backward_matches_finite_differences() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 4))
    upstream = rng.normal(size=(6, 4))
    gamma, beta = rng.normal(size=4), rng.normal(size=4)

    def layer() -> NoisyBatchNorm:  # the same noise at every call
        lay = NoisyBatchNorm(4, rng=np.random.default_rng(7))
        lay.gamma[...], lay.beta[...] = gamma, beta
        return lay

    def loss(_: np.ndarray) -> float:
        return float(np.sum(layer()(x) * upstream))

    noisy = layer()
    noisy(x)
    dx = noisy.backward(upstream)
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(noisy.grad_gamma, numerical_gradient(loss, gamma), rtol=1e-5)
    np.testing.assert_allclose(noisy.grad_beta, numerical_gradient(loss, beta), rtol=1e-5)


def test_noisy_eval_mode_is_bn_times_the_mean_scale() -> None:
    x = np.random.default_rng(4).normal(size=(10, 3))
    noisy, plain = NoisyBatchNorm(3, max_scale=5.0, rng=np.random.default_rng(0)), BatchNorm(3)
    noisy(x), plain(x)
    np.testing.assert_allclose(noisy.eval()(x), 3.0 * plain.eval()(x), rtol=1e-12)


def test_noise_free_noisy_bn_is_bn() -> None:
    x = np.random.default_rng(5).normal(size=(10, 3))
    noisy = NoisyBatchNorm(3, max_scale=1.0, max_shift=0.0, rng=np.random.default_rng(0))
    np.testing.assert_allclose(noisy(x), BatchNorm(3)(x), rtol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"max_scale": 0.5}, ValueError, "max_scale: expected a finite number >= 1, got 0.5"),
        ({"max_shift": -1.0}, ValueError, "max_shift: expected a finite number >= 0, got -1.0"),
        ({"max_scale": True}, TypeError, "max_scale: expected a real number, got bool"),
        ({"rng": 0}, TypeError, "rng: expected a Generator, got int"),
    ],
)
def test_noisy_arguments_are_checked(kwargs: dict, error: type, message: str) -> None:
    kwargs = {"rng": np.random.default_rng(0), **kwargs}
    with pytest.raises(error, match=f"^{message}$"):
        NoisyBatchNorm(3, **kwargs)


def test_noisy_backward_needs_a_training_forward() -> None:
    with pytest.raises(ValueError, match=r"^dy: expected a training-mode forward"):
        NoisyBatchNorm(2, rng=np.random.default_rng(0)).backward(np.ones((2, 2)))


def test_norm_layers_builds_each_kind() -> None:
    kinds = {
        Norm.NONE: [],
        Norm.BATCH: [BatchNorm] * 2,
        Norm.LAYER: [LayerNorm] * 2,
        Norm.NOISY_BATCH: [NoisyBatchNorm] * 2,
    }
    for norm, classes in kinds.items():
        layers = norm_layers(norm, (3, 4), dtype=np.float32, rng=np.random.default_rng(0))
        assert [type(layer) for layer in layers] == classes
    with pytest.raises(ValueError, match=r"^rng: expected a numpy.random.Generator"):
        norm_layers(Norm.NOISY_BATCH, (3,), dtype=np.float32)
    with pytest.raises(TypeError, match=r"^norm: expected a Norm, got str$"):
        norm_layers("layer", (3,), dtype=np.float32)  # type: ignore[arg-type]


def test_use_norm_checks_the_network_and_the_layers() -> None:
    plain = SigmoidMLP((4, 3, 2), batch_norm=False, init_std=1.0, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"^network: expected a network built with batch_norm"):
        use_norm(plain, [LayerNorm(3)])
    net = SigmoidMLP((4, 3, 2), batch_norm=True, init_std=1.0, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"^layers: expected 1 layers, got 2$"):
        use_norm(net, [LayerNorm(3), LayerNorm(3)])
    net.training = False
    noisy = NoisyBatchNorm(3, rng=np.random.default_rng(0))
    use_norm(net, [noisy])
    assert not noisy.training  # the new layer takes the network's mode


def test_layer_norm_network_matches_finite_differences() -> None:
    """The network's backward pass through LayerNorm, against central differences."""
    rng = np.random.default_rng(6)
    net = use_norm(
        SigmoidMLP((5, 4, 3), batch_norm=True, init_std=1.0, rng=rng),
        [LayerNorm(4)],
    )
    x, y = rng.normal(size=(7, 5)), rng.integers(0, 3, size=7)
    from bnlessons.mlp import softmax_cross_entropy

    def loss(_: np.ndarray) -> float:
        return softmax_cross_entropy(net.forward(x), y)[0]

    _, d = softmax_cross_entropy(net.forward(x), y)
    net.backward(d)
    analytic = [g.copy() for g in net.grad_weights]
    for w, g in zip(net.weights, analytic, strict=True):
        np.testing.assert_allclose(g, numerical_gradient(loss, w), rtol=1e-5, atol=1e-8)


def test_config_checks_batch_norm_against_norm() -> None:
    with pytest.raises(ValueError, match=r"^batch_norm: expected False for Norm.NONE, got True$"):
        NormConfig(norm=Norm.NONE)
    with pytest.raises(ValueError, match=r"^max_scale: expected a finite number >= 1"):
        NormConfig(norm=Norm.NOISY_BATCH, noise_scale=0.0)
    config = NormConfig.from_config(FIGURE1, norm=Norm.NONE, steps=10)
    assert not config.batch_norm and config.steps == 10 and config.init_std == FIGURE1.init_std


def test_batch_and_none_configs_give_the_runs_of_training_config(data: MnistData) -> None:
    for batch_norm, norm in ((False, Norm.NONE), (True, Norm.BATCH)):
        base = TrainingConfig(batch_norm=batch_norm, steps=30, eval_every=10, init_std=1.0)
        ours = NormConfig.from_config(base, norm=norm)
        a, b = train(base, data), train(ours, data)
        assert np.array_equal(a.test_accuracy, b.test_accuracy)
        assert all(
            np.array_equal(u, v) for u, v in zip(a.network.weights, b.network.weights, strict=True)
        )


def test_noisy_run_starts_from_the_bn_run_and_then_differs(data: MnistData) -> None:
    base = TrainingConfig(steps=20, eval_every=10, init_std=1.0)
    noisy = NormConfig.from_config(base, norm=Norm.NOISY_BATCH)
    assert all(
        np.array_equal(u, v)
        for u, v in zip(
            base.initial_network().weights, noisy.initial_network().weights, strict=True
        )
    )
    bn_run, noisy_run = train(base, data), train(noisy, data)
    assert isinstance(noisy_run.network.norms[0], NoisyBatchNorm)
    assert not np.array_equal(bn_run.network.weights[0], noisy_run.network.weights[0])
    assert np.array_equal(train(noisy, data).network.weights[0], noisy_run.network.weights[0])


def test_training_mode_accuracy(data: MnistData) -> None:
    features = images_to_features(data.test_images, dtype=np.float32)
    labels = np.asarray(data.test_labels, dtype=np.intp)
    plain = train(TrainingConfig(batch_norm=False, steps=20, eval_every=20), data).network
    # without BN both modes compute the same
    assert (
        training_mode_accuracy(plain, features, labels, batch_size=50)
        == evaluate(plain, features, labels, unit=0)[0]
    )
    bn = train(TrainingConfig(steps=20, eval_every=20), data).network
    before = copy.deepcopy(bn.norms[0].running_mean)
    acc = training_mode_accuracy(bn, features, labels, batch_size=2)
    assert 0.0 <= acc <= 1.0
    assert np.array_equal(bn.norms[0].running_mean, before)  # a copy was used
    with pytest.raises(ValueError, match=r"^batch_size: expected at most 3 examples, got 4$"):
        training_mode_accuracy(bn, features[:3], labels[:3], batch_size=4)


def test_layer_norm_train_is_a_checked_no_op() -> None:
    layer = LayerNorm(3)
    assert layer.train(False) is layer
    with pytest.raises(TypeError, match=r"^mode: expected a bool, got int$"):
        layer.train(1)  # type: ignore[arg-type]


def test_config_is_a_training_config() -> None:
    config = NormConfig.from_config(FIGURE1, norm=Norm.LAYER)
    assert isinstance(config, TrainingConfig)
    assert dataclasses.replace(config, batch_size=4).norm is Norm.LAYER
