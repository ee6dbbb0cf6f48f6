r"""What sits before each sigmoid of the Figure 1 network: nothing, BN, LayerNorm or noisy BN.

:class:`~bnlessons.mlp.SigmoidMLP` puts a :class:`~bnlessons.batchnorm.BatchNorm` before every
sigmoid, or nothing. Lesson 8 compares it with two other layers in the same place:

* :class:`~bnlessons.layernorm.LayerNorm`, which normalizes each example over its features
  and so does not depend on the batch;
* :class:`NoisyBatchNorm`, BN followed by a random per-unit scale and shift redrawn at every
  training step, the "noisy BatchNorm" of Santurkar et al. (2018): each unit's input
  distribution is normalized, then made to move on purpose,

  .. math::

      y_{ij} = a_{tj}\,\mathrm{BN}(x)_{ij} + b_{tj}, \qquad
      a_{tj} \sim U(1, a_{\max}), \quad b_{tj} \sim U(-b_{\max}, b_{\max}),

  independently for every unit :math:`j` and step :math:`t`, the same for every example
  :math:`i` of the batch.

:class:`Norm` names the four choices; :class:`NormConfig` is a
:class:`~bnlessons.training.TrainingConfig` with that choice, so :func:`~bnlessons.training.train`
and :func:`~bnlessons.training.train_many` run every variant (their ``batch_norm`` field follows
the choice); :func:`use_norm` swaps the layers of an existing network.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bnlessons import _validate as _v
from bnlessons._typing import FloatArray, FloatType
from bnlessons.batchnorm import BatchNorm
from bnlessons.layernorm import LayerNorm
from bnlessons.mlp import NormLayer, SigmoidMLP
from bnlessons.training import TrainingConfig

__all__ = [
    "NOISE_SCALE",
    "NOISE_SHIFT",
    "NoisyBatchNorm",
    "Norm",
    "NormConfig",
    "norm_layers",
    "training_mode_accuracy",
    "use_norm",
]

#: Default largest scale of the noise of NoisyBatchNorm, ``a ~ U(1, 3)``.
NOISE_SCALE = 3.0
#: Default largest shift of the noise of NoisyBatchNorm, ``b ~ U(-2, 2)``.
NOISE_SHIFT = 2.0


class Norm(enum.Enum):
    """The layer before each sigmoid of the Figure 1 network."""

    #: No normalization, the baseline (``batch_norm=False``).
    NONE = "none"
    #: BatchNorm, with statistics over the batch.
    BATCH = "batch"
    #: LayerNorm, with statistics over each example's features.
    LAYER = "layer"
    #: NoisyBatchNorm, BN with a random per-unit scale and shift at every step.
    NOISY_BATCH = "noisy_batch"


class NoisyBatchNorm(BatchNorm):
    r"""BatchNorm followed by a random per-unit scale and shift, redrawn at every training step.

    In training mode every :meth:`forward` draws, for each unit :math:`j`, a scale
    :math:`a_j \sim U(1, a_{\max})` and a shift :math:`b_j \sim U(-b_{\max}, b_{\max})` and
    returns :math:`a_j\,\mathrm{BN}(x)_{ij} + b_j`: one forward pass per SGD step, so the
    distribution of every unit's output has a mean and a spread that change from step to step.
    In evaluation mode the noise is replaced by its mean, :math:`E[a] = (1 + a_{\max}) / 2`
    and :math:`E[b] = 0`. The backward pass is BN's with the upstream gradient multiplied by
    the scales of the last forward pass,

    .. math::

        \frac{\partial L}{\partial\, \mathrm{BN}(x)_{ij}} = a_j
        \frac{\partial L}{\partial y_{ij}} .

    Parameters
    ----------
    num_features : int
    max_scale : float, default NOISE_SCALE
        :math:`a_{\max} \ge 1`; 1 with ``max_shift=0`` is plain BN.
    max_shift : float, default NOISE_SHIFT
        :math:`b_{\max} \ge 0`.
    rng : numpy.random.Generator
        Source of the noise.
    dtype : float32 or float64, default float64

    Attributes
    ----------
    scale, shift : ndarray of shape (C,) or None
        The noise of the last training-mode forward pass (None before the first).

    Examples
    --------
    >>> layer = NoisyBatchNorm(2, rng=np.random.default_rng(0))
    >>> y = layer(np.array([[1.0, 10.0], [3.0, 30.0]]))
    >>> bool(np.allclose(y, [[-1, -1], [1, 1]] * layer.scale + layer.shift, atol=1e-4))
    True
    """

    def __init__(
        self,
        num_features: int,
        *,
        max_scale: float = NOISE_SCALE,
        max_shift: float = NOISE_SHIFT,
        rng: np.random.Generator,
        dtype: type[np.floating[Any]] | np.dtype[Any] = np.float64,
    ) -> None:
        super().__init__(num_features, dtype=dtype)
        self.max_scale = _v.real(max_scale, "max_scale")
        if not 1.0 <= self.max_scale < float("inf"):
            raise ValueError(_v.expected("max_scale", "a finite number >= 1", max_scale))
        self.max_shift = _v.real(max_shift, "max_shift")
        if not 0.0 <= self.max_shift < float("inf"):
            raise ValueError(_v.expected("max_shift", "a finite number >= 0", max_shift))
        self.rng = _v.instance(rng, np.random.Generator, "rng")
        self.scale: FloatArray | None = None
        self.shift: FloatArray | None = None

    def forward(self, x: ArrayLike) -> FloatArray:
        """Return the noisy normalized ``x`` (training) or BN times the noise's mean (eval)."""
        y = super().forward(x)
        if not self.training:
            mean_scale = y.dtype.type((1.0 + self.max_scale) / 2)
            return y * mean_scale
        n = self.num_features
        self.scale = self.rng.uniform(1.0, self.max_scale, n).astype(y.dtype)
        self.shift = self.rng.uniform(-self.max_shift, self.max_shift, n).astype(y.dtype)
        return y * self.scale + self.shift

    __call__ = forward

    def backward(self, dy: ArrayLike) -> FloatArray:
        """Return ``dL/dx`` for the last training-mode :meth:`forward`; set the BN gradients."""
        if self.scale is None or not self.training:
            raise ValueError("dy: expected a training-mode forward() before backward(), got none")
        grad = _v.float_array(dy, "dy")
        return super().backward(grad * self.scale)

    def __repr__(self) -> str:
        return (
            f"NoisyBatchNorm({self.num_features}, max_scale={self.max_scale}, "
            f"max_shift={self.max_shift})"
        )


def norm_layers(
    norm: Norm,
    widths: Sequence[int],
    *,
    dtype: FloatType,
    rng: np.random.Generator | None = None,
    max_scale: float = NOISE_SCALE,
    max_shift: float = NOISE_SHIFT,
) -> list[NormLayer]:
    """Return one layer of kind ``norm`` per width (none for :attr:`Norm.NONE`).

    Parameters
    ----------
    norm : Norm
    widths : sequence of int
        The hidden widths of the network.
    dtype : float32 or float64
    rng : numpy.random.Generator, optional
        The noise of :attr:`Norm.NOISY_BATCH` (required for it); the layers share it.
    max_scale, max_shift : float
        The noise of :attr:`Norm.NOISY_BATCH` (see :class:`NoisyBatchNorm`).

    Examples
    --------
    >>> [type(layer).__name__ for layer in norm_layers(Norm.LAYER, (3, 4), dtype=np.float32)]
    ['LayerNorm', 'LayerNorm']
    """
    _v.instance(norm, Norm, "norm")
    if norm is Norm.NONE:
        return []
    if norm is Norm.BATCH:
        return [BatchNorm(n, dtype=dtype) for n in widths]
    if norm is Norm.LAYER:
        return [LayerNorm(n, dtype=dtype) for n in widths]
    if rng is None:
        raise ValueError("rng: expected a numpy.random.Generator for Norm.NOISY_BATCH, got None")
    return [
        NoisyBatchNorm(n, max_scale=max_scale, max_shift=max_shift, rng=rng, dtype=dtype)
        for n in widths
    ]


def use_norm(network: SigmoidMLP, layers: Sequence[NormLayer]) -> SigmoidMLP:
    """Put ``layers`` before the sigmoids of ``network`` (built with ``batch_norm=True``).

    The network's hidden layers have no biases (BN's shift takes their place, and so does
    the shift of the layers that replace it). Returns the network, changed in place.

    Examples
    --------
    >>> net = SigmoidMLP((4, 3, 2), batch_norm=True, init_std=1.0,
    ...                  rng=np.random.default_rng(0))
    >>> type(use_norm(net, norm_layers(Norm.LAYER, (3,), dtype=np.float64)).norms[0]).__name__
    'LayerNorm'
    """
    _v.instance(network, SigmoidMLP, "network")
    hidden = network.sizes[1:-1]
    if len(network.norms) != len(hidden):
        raise ValueError(_v.expected("network", "a network built with batch_norm=True", network))
    if len(layers) != len(hidden):
        raise ValueError(_v.expected("layers", f"{len(hidden)} layers", len(layers)))
    network.norms = list(layers)
    network.training = network.training  # the new layers take the network's mode
    return network


@dataclass(frozen=True, kw_only=True)
class NormConfig(TrainingConfig):
    """A :class:`~bnlessons.training.TrainingConfig` whose sigmoids follow any :class:`Norm`.

    ``batch_norm`` must agree with ``norm`` (True unless :attr:`Norm.NONE`);
    :meth:`from_config` sets it. The noise of :attr:`Norm.NOISY_BATCH` is drawn from a
    generator of its own, seeded with ``(seed, 1)``, so the initial weights and the batch
    order are those of the BN run with the same seed.

    Attributes
    ----------
    norm : Norm
    noise_scale, noise_shift : float
        :math:`a_{\\max}` and :math:`b_{\\max}` of :class:`NoisyBatchNorm` (used by
        :attr:`Norm.NOISY_BATCH` only).

    Examples
    --------
    >>> from bnlessons.training import FIGURE1
    >>> config = NormConfig.from_config(FIGURE1, norm=Norm.LAYER, batch_size=4)
    >>> config.batch_norm, config.batch_size, type(config.initial_network().norms[0]).__name__
    (True, 4, 'LayerNorm')
    """

    norm: Norm = Norm.BATCH
    noise_scale: float = NOISE_SCALE
    noise_shift: float = NOISE_SHIFT

    def __post_init__(self) -> None:
        super().__post_init__()
        _v.instance(self.norm, Norm, "norm")
        if self.batch_norm != (self.norm is not Norm.NONE):
            raise ValueError(
                _v.expected(
                    "batch_norm", f"{self.norm is not Norm.NONE} for {self.norm}", self.batch_norm
                )
            )
        # the layer checks its noise; fail here, at configuration time, not in a worker
        NoisyBatchNorm(
            1, max_scale=self.noise_scale, max_shift=self.noise_shift, rng=np.random.default_rng(0)
        )

    @classmethod
    def from_config(cls, config: TrainingConfig, *, norm: Norm, **changes: Any) -> NormConfig:
        """Return ``config`` with ``norm`` (``batch_norm`` set to agree) and other ``changes``."""
        _v.instance(config, TrainingConfig, "config")
        _v.instance(norm, Norm, "norm")
        fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
        fields.update(changes, norm=norm, batch_norm=norm is not Norm.NONE)
        return cls(**fields)

    def initial_network(
        self, *, inputs: int = 784, classes: int = 10, rng: np.random.Generator | None = None
    ) -> SigmoidMLP:
        """Return the network of this run at step 0 (see ``TrainingConfig.initial_network``)."""
        network = super().initial_network(inputs=inputs, classes=classes, rng=rng)
        if self.norm in (Norm.NONE, Norm.BATCH):
            return network
        layers = norm_layers(
            self.norm,
            self.hidden_sizes,
            dtype=self.dtype,
            rng=np.random.default_rng((self.seed, 1)),
            max_scale=self.noise_scale,
            max_shift=self.noise_shift,
        )
        return use_norm(network, layers)


def training_mode_accuracy(
    network: SigmoidMLP, features: FloatArray, labels: NDArray[np.intp], *, batch_size: int
) -> float:
    """Return the accuracy of ``network`` in training mode, on consecutive batches.

    What the network computes while it trains: BN normalizes each batch of ``batch_size``
    examples with that batch's statistics (a last incomplete batch is dropped). A copy of the
    network is used, so its running statistics (and any noise) are left as they were.

    Examples
    --------
    >>> net = SigmoidMLP((2, 3, 2), batch_norm=True, init_std=1.0,
    ...                  rng=np.random.default_rng(0))
    >>> x, y = np.array([[0.0, 1.0], [1.0, 0.0]] * 2), np.array([0, 1] * 2)
    >>> 0.0 <= training_mode_accuracy(net, x, y, batch_size=2) <= 1.0
    True
    """
    _v.instance(network, SigmoidMLP, "network")
    batch = _v.integer(batch_size, "batch_size", minimum=1)
    n = (len(labels) // batch) * batch
    if n == 0:
        raise ValueError(_v.expected("batch_size", f"at most {len(labels)} examples", batch))
    net = copy.deepcopy(network)
    net.training = True
    correct = 0
    for start in range(0, n, batch):
        logits = net.forward(features[start : start + batch])
        correct += int(np.sum(np.argmax(logits, axis=1) == labels[start : start + batch]))
    return correct / n
