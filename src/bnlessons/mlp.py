"""The network of Figure 1 of Ioffe & Szegedy (2015): sigmoid layers, optionally with BN.

A fully connected network with sigmoid hidden units, 784-100-100-100-10 in the paper:

.. math::

    h_0 = x, \\qquad
    z_l = h_{l-1} W_l \\;(+\\, b_l), \\qquad
    u_l = \\mathrm{BN}_l(z_l) \text{ or } u_l = z_l, \\qquad
    h_l = \\sigma(u_l), \\qquad
    \text{logits} = h_L W_{L+1} + b_{L+1},

trained on the softmax cross-entropy of the logits by plain SGD on mini-batches
(:meth:`SigmoidMLP.sgd_step`; the experiment that repeats it is :mod:`bnlessons.training`). A
hidden layer followed by BN has no bias: BN subtracts the batch mean, which would cancel it, and
its own shift ``beta`` takes the bias's role. The BN layers are
:class:`bnlessons.batchnorm.BatchNorm`.

Rows are examples: ``x`` has shape (batch, 784) and ``W_l`` has shape (fan_in, fan_out).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from bnlessons import _step
from bnlessons import _validate as _v
from bnlessons._typing import FloatArray, FloatType, IntArray
from bnlessons.batchnorm import BatchNorm

__all__ = ["NormLayer", "SigmoidMLP", "softmax_cross_entropy"]


class NormLayer(Protocol):
    """What :class:`SigmoidMLP` asks of the layer before each sigmoid.

    :class:`~bnlessons.batchnorm.BatchNorm` (the default), and the variants of
    :mod:`bnlessons.norms` (layer norm, noisy BN) that :func:`bnlessons.norms.use_norm`
    puts in its place: a forward and a backward pass, a training/evaluation switch, and the
    parameters with their gradients, which :meth:`SigmoidMLP.subtract_gradients` updates in
    place.
    """

    @property
    def gamma(self) -> FloatArray | None:
        """The scale, updated in place by the SGD step (None without one)."""

    @property
    def beta(self) -> FloatArray | None:
        """The shift, updated in place by the SGD step (None without one)."""

    @property
    def grad_gamma(self) -> FloatArray | None:
        """Gradient of the scale from the last backward pass."""

    @property
    def grad_beta(self) -> FloatArray | None:
        """Gradient of the shift from the last backward pass."""

    def forward(self, x: FloatArray) -> FloatArray:
        """Return the normalized batch, shape and dtype of ``x``."""

    def backward(self, dy: FloatArray) -> FloatArray:
        """Return the gradient with respect to the last forward's input."""

    def train(self, mode: bool = True) -> object:
        """Switch to training mode (evaluation mode with ``mode=False``)."""


def softmax_cross_entropy(
    logits: FloatArray, labels: IntArray, *, out: FloatArray | None = None
) -> tuple[float, FloatArray]:
    """Return the mean softmax cross-entropy and its gradient with respect to the logits.

    .. math::

        p_{ij} = \\frac{e^{a_{ij}}}{\\sum_k e^{a_{ik}}}, \\qquad
        L = -\\frac1N \\sum_i \\log p_{i y_i}, \\qquad
        \\frac{\\partial L}{\\partial a_{ij}} = \\frac{p_{ij} - [j = y_i]}{N}.

    The row maximum is subtracted before exponentiating, so no logit overflows.

    Parameters
    ----------
    logits : NDArray, shape (N, classes)
    labels : NDArray of int, shape (N,)
    out : NDArray, optional
        Buffer of the logits' shape and dtype to receive the gradient (reused in training).

    Examples
    --------
    >>> loss, grad = softmax_cross_entropy(np.zeros((2, 4)), np.array([0, 3]))
    >>> round(loss, 6) == round(float(np.log(4)), 6)
    True
    >>> grad
    array([[-0.375,  0.125,  0.125,  0.125],
           [ 0.125,  0.125,  0.125, -0.375]])
    """
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(
            f"logits, labels: expected shapes (N, classes) and (N,), "
            f"got {logits.shape} and {labels.shape}"
        )
    n = logits.shape[0]
    rows = np.arange(n)
    grad = np.subtract(logits, logits.max(axis=1, keepdims=True), out=out)
    picked = grad[rows, labels]
    np.exp(grad, out=grad)
    total = grad.sum(axis=1, keepdims=True)
    loss = float(np.mean(np.log(total[:, 0]) - picked))
    grad /= total
    grad[rows, labels] -= 1
    grad /= n
    return loss, grad


class SigmoidMLP:
    """A fully connected sigmoid network, optionally with BN before each sigmoid.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths from input to output, e.g. ``(784, 100, 100, 100, 10)``.
    batch_norm : bool
        Insert a BatchNorm before every sigmoid (and drop those layers' biases).
    init_std : float
        Standard deviation of the Gaussian initial weights; biases start at zero.
    rng : numpy.random.Generator
        Source of the initial weights.
    dtype : np.float32 or np.float64

    Attributes
    ----------
    weights : list of NDArray
        ``W_l`` of shape (fan_in, fan_out).
    biases : list of NDArray or None
        ``b_l``, None for the layers followed by BN.
    norms : list of NormLayer
        One per hidden layer, empty without BN (BatchNorm layers, or the variants that
        :func:`bnlessons.norms.use_norm` puts in their place).
    grad_weights, grad_biases : lists of NDArray or None
        Gradients written by :meth:`backward`.
    pre_activations : list of NDArray
        The sigmoid inputs ``u_l`` of the last :meth:`forward` or :meth:`sgd_step`, shape
        (batch, width).

    Examples
    --------
    >>> net = SigmoidMLP((4, 3, 2), batch_norm=True, init_std=1.0,
    ...                  rng=np.random.default_rng(0), dtype=np.float64)
    >>> net.forward(np.ones((5, 4))).shape
    (5, 2)
    """

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        batch_norm: bool,
        init_std: float,
        rng: np.random.Generator,
        dtype: FloatType = np.float64,
    ) -> None:
        if len(sizes) < 2:
            raise ValueError(_v.expected("sizes", "at least two widths", tuple(sizes)))
        self.sizes = tuple(_v.positive_int(n, f"sizes[{i}]") for i, n in enumerate(sizes))
        init_std = _v.positive_float(init_std, "init_std")
        _v.float_dtype(dtype)
        self.dtype = dtype
        pairs = list(zip(self.sizes[:-1], self.sizes[1:], strict=True))
        self.weights: list[FloatArray] = [
            (init_std * rng.standard_normal((m, n))).astype(dtype) for m, n in pairs
        ]
        last = len(pairs) - 1
        self.biases: list[FloatArray | None] = [
            None if batch_norm and i < last else np.zeros(n, dtype)
            for i, (_, n) in enumerate(pairs)
        ]
        self.norms: list[NormLayer] = (
            [BatchNorm(n, dtype=dtype) for n in self.sizes[1:-1]] if batch_norm else []
        )
        self.grad_weights: list[FloatArray] = [np.zeros_like(w) for w in self.weights]
        self.grad_biases: list[FloatArray | None] = [
            None if b is None else np.zeros_like(b) for b in self.biases
        ]
        self._pre_activations: list[FloatArray] = []
        # the SGD step of bnlessons._step leaves how to compute them (see pre_activations)
        self._pending_pre_activations: Callable[[], list[FloatArray]] | None = None
        self._input: FloatArray | None = None
        self._buffers: dict[int, _Buffers] = {}
        self._workspaces: dict[int, _step.Workspace] = {}
        self._training = True

    @property
    def pre_activations(self) -> list[FloatArray]:
        """The sigmoid inputs ``u_l`` of the last :meth:`forward` or :meth:`sgd_step`.

        Shape (batch, width), in buffers that the next pass on a batch of the same size
        overwrites: read them again after each pass. The SGD step on a small batch with BN
        (private ``bnlessons._step``) does not write them: they are computed here when first
        read, from what the step kept.
        """
        if self._pending_pre_activations is not None:
            self._pre_activations = self._pending_pre_activations()
            self._pending_pre_activations = None
        return self._pre_activations

    @pre_activations.setter
    def pre_activations(self, values: list[FloatArray]) -> None:
        self._pre_activations = values
        self._pending_pre_activations = None

    def __getstate__(self) -> dict[str, Any]:
        """What a copy keeps (``pickle``, ``copy.deepcopy``, the experiment cache): the
        parameters, their gradients and the layers' running statistics, not the state of the
        last pass (its input, work buffers and pre-activations), which the next
        :meth:`forward` makes anew; a copy's :meth:`backward` needs a forward pass first."""
        state = self.__dict__.copy()
        state.update(
            _pre_activations=[], _pending_pre_activations=None, _input=None, _buffers={},
            _workspaces={},
        )  # fmt: skip
        return state

    @property
    def training(self) -> bool:
        """Whether BN uses batch statistics (True) or its running statistics (False).

        Setting it sets every BN layer's mode; a network without BN behaves the same in both.
        """
        return self._training

    @training.setter
    def training(self, mode: bool) -> None:
        self._training = _v.boolean(mode, "training")
        for norm in self.norms:
            norm.train(mode)

    def forward(self, x: FloatArray) -> FloatArray:
        """Return the logits of a batch ``x`` of shape (batch, sizes[0]).

        The returned array and ``pre_activations`` are reused buffers: they are overwritten
        by the next forward pass of a batch of the same size.
        """
        self._check_input(x)
        buf = self._buffers_for(x.shape[0])
        self._input = x
        self.pre_activations = []
        h = x
        for i in range(len(self.sizes) - 2):
            z = np.matmul(h, self.weights[i], out=buf.z[i])
            bias = self.biases[i]
            if self.norms:
                u = self.norms[i].forward(z)
            else:
                assert bias is not None
                z += bias
                u = z
            self.pre_activations.append(u)
            h = _sigmoid(u, out=buf.h[i])
        logits = np.matmul(h, self.weights[-1], out=buf.logits)
        out_bias = self.biases[-1]
        assert out_bias is not None
        logits += out_bias
        return logits

    def backward(self, dlogits: FloatArray) -> None:
        """Backpropagate ``dlogits`` through the last forward pass; fill the gradient lists.

        With ``d_l = dL/dz_l`` (rows are examples):

        .. math::

            \\frac{\\partial L}{\\partial W_l} = h_{l-1}^T d_l, \\quad
            \\frac{\\partial L}{\\partial b_l} = \\textstyle\\sum_i (d_l)_{i\\cdot}, \\quad
            \\frac{\\partial L}{\\partial u_{l}} = (d_{l+1} W_{l+1}^T) \\odot h_l (1 - h_l),

        and ``d_l`` is that last quantity passed back through BN (``BatchNorm.backward``, which
        also sets ``grad_gamma`` and ``grad_beta``) or equal to it without BN. Every gradient
        is linear in ``dlogits``, so passing ``lr * dL/dlogits`` yields ``lr`` times every
        gradient, and :meth:`subtract_gradients` is then an SGD step.
        """
        x = self._input
        if x is None:
            raise ValueError("dlogits: expected a forward() call before backward(), got none")
        buf = self._buffers[x.shape[0]]
        if dlogits.shape != buf.logits.shape:
            raise ValueError(
                f"dlogits: expected shape {buf.logits.shape} (the last forward's logits), "
                f"got {dlogits.shape}"
            )
        hidden = [x, *buf.h]
        d = dlogits
        for i in range(len(self.weights) - 1, -1, -1):
            np.matmul(hidden[i].T, d, out=self.grad_weights[i])
            grad_bias = self.grad_biases[i]
            if grad_bias is not None:
                # Column sums as ones^T d: one BLAS call (benchmarks/bench_training.py).
                np.matmul(buf.ones, d, out=grad_bias)
            if i == 0:
                break
            dh = np.matmul(d, self.weights[i].T, out=buf.dh[i - 1])
            # sigmoid'(u) = h (1 - h)
            slope = np.subtract(1, hidden[i], out=buf.slope[i - 1])
            slope *= hidden[i]
            dh *= slope
            d = self.norms[i - 1].backward(dh) if self.norms else dh

    def subtract_gradients(self) -> None:
        """``p -= grad_p`` for every parameter (an SGD step when the gradients carry the rate)."""
        for w, gw in zip(self.weights, self.grad_weights, strict=True):
            w -= gw
        for b, gb in zip(self.biases, self.grad_biases, strict=True):
            if b is not None and gb is not None:
                b -= gb
        for norm in self.norms:
            for param, grad in ((norm.gamma, norm.grad_gamma), (norm.beta, norm.grad_beta)):
                if param is not None and grad is not None:
                    param -= grad

    def sgd_step(self, x: FloatArray, labels: NDArray[np.intp], *, learning_rate: float) -> float:
        """Take one SGD step on the batch ``(x, labels)``; return the batch loss before it.

        Forward, softmax cross-entropy, backward of ``learning_rate * loss`` (so every gradient
        carries the rate), then ``p -= grad_p``. A batch of at most 256 examples, the case of
        training, takes the same arithmetic reorganised into fewer numpy calls (the private
        module ``bnlessons._step``); it leaves the same gradients, parameters, running
        statistics and ``pre_activations``, and :meth:`backward` then needs a new
        :meth:`forward`.

        Examples
        --------
        >>> net = SigmoidMLP((2, 3, 2), batch_norm=False, init_std=1.0,
        ...                  rng=np.random.default_rng(0))
        >>> x, y = np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([0, 1])
        >>> first = net.sgd_step(x, y, learning_rate=1.0)
        >>> later = [net.sgd_step(x, y, learning_rate=1.0) for _ in range(50)]
        >>> bool(later[-1] < first)
        True
        """
        self._check_input(x)
        norms = _step.step_norms(self, x.shape[0])
        if norms is not None:  # a small batch: the same step in fewer numpy calls
            if labels.shape != (x.shape[0],):
                raise ValueError(f"labels: expected shape ({x.shape[0]},), got {labels.shape}")
            self._input = None  # no forward pass to go back through: its buffers were reused
            work = self._workspace(x.shape[0])
            return _step.sgd_step(self, norms, x, labels, learning_rate, work)
        logits = self.forward(x)
        grad = self._buffers[x.shape[0]].grad_logits
        loss, _ = softmax_cross_entropy(logits, labels, out=grad)
        grad *= self.dtype(learning_rate)
        self.backward(grad)
        self.subtract_gradients()
        return loss

    def _check_input(self, x: FloatArray) -> None:
        if x.ndim != 2 or x.shape[1] != self.sizes[0] or x.dtype != self.dtype:
            raise ValueError(
                f"x: expected {np.dtype(self.dtype)} of shape (batch, {self.sizes[0]}), "
                f"got {x.dtype} of shape {x.shape}"
            )

    def _workspace(self, batch: int) -> _step.Workspace:
        if batch not in self._workspaces:
            self._workspaces[batch] = _step.Workspace.create(self.sizes, batch, self.dtype)
        return self._workspaces[batch]

    def _buffers_for(self, batch: int) -> _Buffers:
        if batch not in self._buffers:
            widths = self.sizes[1:-1]
            self._buffers[batch] = _Buffers(
                z=[np.empty((batch, n), self.dtype) for n in widths],
                h=[np.empty((batch, n), self.dtype) for n in widths],
                dh=[np.empty((batch, n), self.dtype) for n in widths],
                slope=[np.empty((batch, n), self.dtype) for n in widths],
                logits=np.empty((batch, self.sizes[-1]), self.dtype),
                grad_logits=np.empty((batch, self.sizes[-1]), self.dtype),
                ones=np.ones(batch, self.dtype),
            )
        return self._buffers[batch]


@dataclass(frozen=True)
class _Buffers:
    """Work arrays for one batch size, allocated once (fresh large arrays page-fault)."""

    z: list[FloatArray]
    h: list[FloatArray]
    dh: list[FloatArray]
    slope: list[FloatArray]
    logits: FloatArray
    grad_logits: FloatArray
    ones: FloatArray


def _sigmoid(u: FloatArray, *, out: FloatArray) -> FloatArray:
    """``1 / (1 + exp(-u))`` computed as ``(1 + tanh(u/2)) / 2``, which never overflows."""
    np.multiply(u, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out
