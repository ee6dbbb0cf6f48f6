r"""Internal covariate shift and smoothness as Santurkar et al. (2018) measure them.

Two measures of a network at one training step, on one batch, each computed on a copy of the
network (the network itself, its running statistics included, is left as it was):

* :func:`gradient_shift`, internal covariate shift in the paper's sense (their Definition
  2.1): for each layer :math:`i`, the gradient of the loss with respect to its weights
  :math:`W_i` before and after the layers below it take their SGD step on the same batch,

  .. math::

      G_i = \nabla_{W_i} L(W_1, \dots, W_k; x, y), \qquad
      G_i' = \nabla_{W_i} L(W_1', \dots, W_{i-1}', W_i, \dots, W_k; x, y),

  with :math:`W_j' = W_j - \eta \nabla_{W_j} L` (and likewise the biases and the BN
  parameters of those layers), reported as :math:`\|G_i - G_i'\|` and
  :math:`\cos(G_i, G_i')`. It is the change of the problem layer :math:`i` faces caused by the
  layers below it, which is what the subnetwork argument of lesson 5 says BN reduces.
* :func:`gradient_landscape`, smoothness along the gradient (their Figure 4): with :math:`g`
  the gradient of all parameters :math:`\theta` and step sizes :math:`\eta_1, \dots, \eta_k`,
  the losses :math:`L(\theta - \eta_s g)`, the changes of the gradient
  :math:`\|\nabla L(\theta) - \nabla L(\theta - \eta_s g)\|`, and the "effective"
  :math:`\beta`-smoothness, the largest change of the gradient per distance moved,
  :math:`\max_s \|\nabla L(\theta) - \nabla L(\theta - \eta_s g)\| / (\eta_s \|g\|)`.

:func:`track` trains a network and takes both measures (and the percentiles of the tracked
sigmoid's input in training mode) every ``eval_every`` steps; :func:`track_many` runs several
in parallel. Both are memoized in the experiment cache like :func:`~bnlessons.training.train`.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from bnlessons import _validate as _v
from bnlessons._cache import cached
from bnlessons._typing import Float64Array, FloatArray, IntArray
from bnlessons.mlp import SigmoidMLP, softmax_cross_entropy
from bnlessons.mnist import MnistData, images_to_features
from bnlessons.training import PERCENTILES, TrainingConfig, TrainingResult, run_many, train

__all__ = [
    "GradientShift",
    "Landscape",
    "TrackedRun",
    "gradient_landscape",
    "gradient_shift",
    "track",
    "track_many",
]


@dataclass(frozen=True, eq=False)
class GradientShift:
    """What :func:`gradient_shift` returns, one value per weight matrix above the first.

    Attributes
    ----------
    layers : tuple of int
        The (0-based) indices of the weight matrices measured, ``1 ... L`` (the first has no
        layer below it).
    distance : NDArray[np.float64]
        :math:`\\|G_i - G_i'\\|` (Frobenius norm).
    cosine : NDArray[np.float64]
        :math:`\\cos(G_i, G_i')`.
    norm : NDArray[np.float64]
        :math:`\\|G_i\\|`, so that ``distance / norm`` is the relative change.
    """

    layers: tuple[int, ...]
    distance: Float64Array
    cosine: Float64Array
    norm: Float64Array


@dataclass(frozen=True, eq=False)
class Landscape:
    """What :func:`gradient_landscape` returns.

    Attributes
    ----------
    step_sizes : NDArray[np.float64]
        :math:`\\eta_s`.
    loss : float
        :math:`L(\\theta)`.
    losses : NDArray[np.float64]
        :math:`L(\\theta - \\eta_s g)`.
    gradient_changes : NDArray[np.float64]
        :math:`\\|\\nabla L(\\theta) - \\nabla L(\\theta - \\eta_s g)\\|`.
    gradient_norm : float
        :math:`\\|g\\|`.
    """

    step_sizes: Float64Array
    loss: float
    losses: Float64Array
    gradient_changes: Float64Array
    gradient_norm: float

    @property
    def loss_range(self) -> float:
        """The range of the loss over the step sizes, max minus min (Figure 4a of the paper)."""
        return float(self.losses.max() - self.losses.min())

    @property
    def max_gradient_change(self) -> float:
        """The largest change of the gradient over the step sizes (Figure 4b)."""
        return float(self.gradient_changes.max())

    @property
    def effective_beta(self) -> float:
        """The largest change of the gradient per distance moved (Figure 4c)."""
        return float(np.max(self.gradient_changes / (self.step_sizes * self.gradient_norm)))


# ---------------------------------------------------------------------------- parameters


def _layer_parameters(net: SigmoidMLP, i: int) -> list[FloatArray]:
    """The parameters of weight layer ``i``: W, its bias, the scale and shift of its norm."""
    params = [net.weights[i]]
    bias = net.biases[i]
    if bias is not None:
        params.append(bias)
    if i < len(net.norms):
        params += [p for p in (net.norms[i].gamma, net.norms[i].beta) if p is not None]
    return params


def _layer_gradients(net: SigmoidMLP, i: int) -> list[FloatArray]:
    """The gradients of :func:`_layer_parameters`, in the same order (copies)."""
    grads = [net.grad_weights[i]]
    grad_bias = net.grad_biases[i]
    if grad_bias is not None:
        grads.append(grad_bias)
    if i < len(net.norms):
        norm = net.norms[i]
        for param, grad in ((norm.gamma, norm.grad_gamma), (norm.beta, norm.grad_beta)):
            if param is not None:
                if grad is None:
                    raise ValueError("network: a normalization layer has no gradient")
                grads.append(grad)
    return [g.copy() for g in grads]


def _gradients(
    net: SigmoidMLP, x: FloatArray, labels: IntArray
) -> tuple[float, list[list[FloatArray]]]:
    """The batch loss and the gradients of every layer's parameters (training mode)."""
    logits = net.forward(x)
    loss, dlogits = softmax_cross_entropy(logits, labels)
    net.backward(dlogits)
    return loss, [_layer_gradients(net, i) for i in range(len(net.weights))]


def _check_batch(network: SigmoidMLP, x: FloatArray, labels: IntArray) -> None:
    _v.instance(network, SigmoidMLP, "network")
    if x.ndim != 2 or labels.shape != (x.shape[0],):
        raise ValueError(
            f"x, labels: expected shapes (N, features) and (N,), got {x.shape} and {labels.shape}"
        )


def _flat_norm(arrays: Sequence[FloatArray]) -> float:
    return float(np.sqrt(sum(np.sum(np.square(a, dtype=np.float64)) for a in arrays)))


# ---------------------------------------------------------------------------- the measures


def gradient_shift(
    network: SigmoidMLP, x: FloatArray, labels: IntArray, *, learning_rate: float
) -> GradientShift:
    r"""Return each layer's gradient change caused by the SGD step of the layers below it.

    For every weight matrix :math:`W_i` above the first, :math:`G_i` is its gradient on the
    batch ``(x, labels)`` and :math:`G_i'` the same gradient after every layer below :math:`i`
    (weights, biases and normalization parameters) has taken its SGD step
    :math:`p \leftarrow p - \eta\, \partial L / \partial p` on the same batch, the layers from
    :math:`i` on unchanged. The network is evaluated in training mode (BN with the batch's
    statistics); a copy is used, so ``network`` is left as it was. A layer drawing random
    noise (:class:`~bnlessons.norms.NoisyBatchNorm`) draws new noise in each pass, which this
    measure would count as shift.

    Parameters
    ----------
    network : SigmoidMLP
    x : NDArray, shape (N, features)
        The batch, in the network's dtype.
    labels : NDArray of int, shape (N,)
    learning_rate : float
        :math:`\eta \ge 0`; 0 leaves every layer as it is, so :math:`G_i' = G_i`.

    Returns
    -------
    GradientShift

    Examples
    --------
    >>> net = SigmoidMLP((3, 4, 4, 2), batch_norm=False, init_std=1.0,
    ...                  rng=np.random.default_rng(0))
    >>> x, y = np.eye(3), np.array([0, 1, 1])
    >>> shift = gradient_shift(net, x, y, learning_rate=0.0)
    >>> shift.layers, shift.distance.tolist(), shift.cosine.round(12).tolist()
    ((1, 2), [0.0, 0.0], [1.0, 1.0])
    """
    _check_batch(network, x, labels)
    eta = _v.real(learning_rate, "learning_rate")
    if not 0.0 <= eta < float("inf"):
        raise ValueError(_v.expected("learning_rate", "a finite number >= 0", learning_rate))
    net = copy.deepcopy(network)
    net.training = True
    layers = tuple(range(1, len(net.weights)))
    originals = [[p.copy() for p in _layer_parameters(net, i)] for i in range(len(net.weights))]
    _, grads = _gradients(net, x, labels)
    distance, cosine, norm = [], [], []
    for i in layers:
        for j in range(len(net.weights)):  # layers below i take their step, the others not
            for param, start, grad in zip(
                _layer_parameters(net, j), originals[j], grads[j], strict=True
            ):
                param[...] = start - param.dtype.type(eta) * grad if j < i else start
        _, moved = _gradients(net, x, labels)
        g = grads[i][0].astype(np.float64)
        g_new = moved[i][0].astype(np.float64)
        g_norm, new_norm = float(np.linalg.norm(g)), float(np.linalg.norm(g_new))
        distance.append(float(np.linalg.norm(g - g_new)))
        norm.append(g_norm)
        denominator = g_norm * new_norm
        cosine.append(float(np.sum(g * g_new) / denominator) if denominator > 0 else 1.0)
    return GradientShift(
        layers=layers,
        distance=np.array(distance),
        cosine=np.array(cosine),
        norm=np.array(norm),
    )


def gradient_landscape(
    network: SigmoidMLP, x: FloatArray, labels: IntArray, *, step_sizes: Sequence[float]
) -> Landscape:
    r"""Return the loss and the change of the gradient along the gradient, for several steps.

    With :math:`\theta` all the parameters of the network (weights, biases, normalization
    scales and shifts) and :math:`g = \nabla L(\theta)` on the batch ``(x, labels)``, for each
    step size :math:`\eta_s`: :math:`L(\theta - \eta_s g)` and
    :math:`\|\nabla L(\theta) - \nabla L(\theta - \eta_s g)\|` (the norm over all parameters).
    The network is evaluated in training mode, on a copy.

    Parameters
    ----------
    network : SigmoidMLP
    x : NDArray, shape (N, features)
    labels : NDArray of int, shape (N,)
    step_sizes : sequence of float
        Positive step sizes :math:`\eta_s`.

    Returns
    -------
    Landscape

    Examples
    --------
    >>> net = SigmoidMLP((3, 4, 2), batch_norm=False, init_std=1.0,
    ...                  rng=np.random.default_rng(0))
    >>> land = gradient_landscape(net, np.eye(3), np.array([0, 1, 1]), step_sizes=[0.1, 0.2])
    >>> bool(land.losses[0] < land.loss), land.gradient_changes.shape
    (True, (2,))
    """
    _check_batch(network, x, labels)
    _v.sequence(step_sizes, "step_sizes", "a sequence of positive numbers")
    if not step_sizes:
        raise ValueError(_v.expected("step_sizes", "at least one step size", step_sizes))
    etas = np.array([_v.positive_float(s, f"step_sizes[{k}]") for k, s in enumerate(step_sizes)])
    net = copy.deepcopy(network)
    net.training = True
    params = [p for i in range(len(net.weights)) for p in _layer_parameters(net, i)]
    originals = [p.copy() for p in params]
    loss, grads = _gradients(net, x, labels)
    g = [a for layer in grads for a in layer]
    g64 = [a.astype(np.float64) for a in g]
    losses, changes = [], []
    for eta in etas:
        for param, start, grad in zip(params, originals, g, strict=True):
            param[...] = start - param.dtype.type(eta) * grad
        moved_loss, moved = _gradients(net, x, labels)
        losses.append(moved_loss)
        changes.append(
            _flat_norm(
                [
                    b - a
                    for a, b in zip(
                        g64, (m.astype(np.float64) for layer in moved for m in layer), strict=True
                    )
                ]
            )
        )
    return Landscape(
        step_sizes=etas,
        loss=loss,
        losses=np.array(losses),
        gradient_changes=np.array(changes),
        gradient_norm=_flat_norm(g64),
    )


# ---------------------------------------------------------------------------- through training


@dataclass(frozen=True, eq=False)
class TrackedRun:
    """A training run with the measures of this module taken along the way (:func:`track`).

    Attributes
    ----------
    result : TrainingResult
        The run, as :func:`~bnlessons.training.train` records it.
    probe_steps : NDArray[np.int64]
        The steps measured: ``0, eval_every, ...`` before the last step; at step ``t`` the
        network has taken ``t`` steps and the batch is that of step ``t + 1``.
    shift_distance, shift_cosine, shift_norm : NDArray[np.float64]
        Shape (probes, layers): :func:`gradient_shift` at each probe step, for the weight
        matrices ``1 ... L``.
    loss_range, max_gradient_change, effective_beta : NDArray[np.float64]
        Shape (probes,): :func:`gradient_landscape` at each probe step.
    training_percentiles : NDArray[np.float64]
        Shape (len(result.steps), 3): the percentiles of the tracked sigmoid's input over the
        test digits in *training* mode, what the sigmoid sees while training: BN normalizes
        with the statistics of the test digits as one batch, and a noisy layer applies the
        noise of the next step.
    """

    result: TrainingResult
    probe_steps: NDArray[np.int64]
    shift_distance: Float64Array
    shift_cosine: Float64Array
    shift_norm: Float64Array
    loss_range: Float64Array
    max_gradient_change: Float64Array
    effective_beta: Float64Array
    training_percentiles: Float64Array

    def in_training_mode(self) -> TrainingResult:
        """Return :attr:`result` with :attr:`training_percentiles` as its percentiles.

        For :func:`bnlessons.curves.percentile_drift`, which then measures the drift of what
        the sigmoid sees in training.
        """
        return dataclasses.replace(
            self.result, sigmoid_input_percentiles=self.training_percentiles
        )


def _training_percentiles(network: SigmoidMLP, features: FloatArray, unit: int) -> Float64Array:
    net = copy.deepcopy(network)
    net.training = True
    net.forward(features)
    tracked = net.pre_activations[-1][:, unit].astype(np.float64)
    bands: Float64Array = np.percentile(tracked, PERCENTILES)
    return bands


def track(config: TrainingConfig, data: MnistData, *, step_sizes: Sequence[float]) -> TrackedRun:
    """Train as :func:`~bnlessons.training.train` does, measuring every ``eval_every`` steps.

    At steps ``0, eval_every, 2 eval_every, ...`` (before the last), on the batch about to be
    used: :func:`gradient_shift` with the run's learning rate and :func:`gradient_landscape`
    with ``step_sizes``; at every evaluation step, the training-mode percentiles of the tracked
    sigmoid input. The measures work on copies, so the run is the one
    :func:`~bnlessons.training.train` gives.

    Examples
    --------
    >>> from bnlessons.mnist import load_mnist
    >>> run = track(TrainingConfig(steps=20, eval_every=10), load_mnist(), step_sizes=[0.1])
    >>> run.probe_steps.tolist(), run.shift_cosine.shape, run.training_percentiles.shape
    ([0, 10], (2, 3), (3, 3))
    """
    _v.instance(config, TrainingConfig, "config")
    _v.instance(data, MnistData, "data")
    _v.sequence(step_sizes, "step_sizes", "a sequence of positive numbers")
    return _track_cached(config, data, tuple(float(s) for s in step_sizes))


@cached
def _track_cached(
    config: TrainingConfig, data: MnistData, step_sizes: tuple[float, ...]
) -> TrackedRun:
    features = images_to_features(data.test_images, dtype=config.dtype)
    unit = config.tracked_unit
    probes: list[int] = []
    shifts: list[GradientShift] = []
    lands: list[Landscape] = []
    bands: list[Float64Array] = []

    def probe(step: int, net: SigmoidMLP, xb: FloatArray, yb: IntArray) -> None:
        if step % config.eval_every:
            return
        probes.append(step)
        shifts.append(gradient_shift(net, xb, yb, learning_rate=config.learning_rate))
        lands.append(gradient_landscape(net, xb, yb, step_sizes=step_sizes))
        bands.append(_training_percentiles(net, features, unit))

    result = train(config, data, probe=probe)
    bands.append(_training_percentiles(result.network, features, unit))
    return TrackedRun(
        result=result,
        probe_steps=np.array(probes, dtype=np.int64),
        shift_distance=np.array([s.distance for s in shifts]),
        shift_cosine=np.array([s.cosine for s in shifts]),
        shift_norm=np.array([s.norm for s in shifts]),
        loss_range=np.array([land.loss_range for land in lands]),
        max_gradient_change=np.array([land.max_gradient_change for land in lands]),
        effective_beta=np.array([land.effective_beta for land in lands]),
        training_percentiles=np.array(bands),
    )


def track_many(
    configs: Sequence[TrainingConfig],
    data: MnistData,
    *,
    step_sizes: Sequence[float],
    processes: int | None = None,
) -> list[TrackedRun]:
    """Return ``[track(c, data, step_sizes=step_sizes) for c in configs]``, in parallel.

    As :func:`~bnlessons.training.train_many`: one worker per core not taken by the BLAS
    threads (``processes=1`` runs here), the longest runs first, the same results as the loop.

    Examples
    --------
    >>> from bnlessons.mnist import load_mnist
    >>> configs = [TrainingConfig(batch_norm=b, steps=10, eval_every=5) for b in (False, True)]
    >>> runs = track_many(configs, load_mnist(), step_sizes=[0.1], processes=1)
    >>> [r.result.config.batch_norm for r in runs]
    [False, True]
    """
    return run_many(track, configs, data, processes=processes, step_sizes=list(step_sizes))
