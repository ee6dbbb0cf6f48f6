"""The SGD step of :class:`bnlessons.mlp.SigmoidMLP` on a small batch, in few numpy calls.

:meth:`SigmoidMLP.sgd_step <bnlessons.mlp.SigmoidMLP.sgd_step>` hands a batch of at most
:data:`MAX_BATCH` examples to :func:`sgd_step` here. The arithmetic is the one of
``SigmoidMLP.forward``, ``softmax_cross_entropy``, ``SigmoidMLP.backward`` (with
:func:`~bnlessons.batchnorm.batchnorm_forward` and
:func:`~bnlessons.batchnorm.batchnorm_backward`) and ``subtract_gradients``, whose
docstrings carry the equations. What changes is the bookkeeping. At batch 60 an array has a
few thousand entries and a numpy call spends more time being called (about a microsecond)
than computing, so after the matrix products the cost of a step is its number of calls:

* every intermediate has a buffer, allocated once per batch size (:class:`Workspace`) and
  written with ``out=``: no allocation, no page fault, warm caches;
* a sum over the batch (BN's statistics, its gradient sums, a bias gradient) is a product
  with a vector of ones, one BLAS call, and a mean a product with a vector of ``1/m``;
* BN writes the centered input :math:`z - \\mu` over the layer's product ``z``, and its
  backward turns :math:`du = \\partial L/\\partial u` into :math:`\\partial L/\\partial z` in
  place, as :math:`dz = s\\,du + p\\,(z - \\mu) + q` with the per-channel
  :math:`s = \\gamma/\\sqrt{\\sigma^2 + \\epsilon}`,
  :math:`p = -s\\,\\partial L/\\partial\\gamma \\,/\\, (m \\sqrt{\\sigma^2 + \\epsilon})`,
  :math:`q = -s\\,\\partial L/\\partial\\beta \\,/\\, m`;
* BN's two gradient sums, :math:`\\sum du` and :math:`\\sum du\\,(z - \\mu)`, are the rows
  of one (2, C) array, and the per-channel vectors they meet are stacked the same way, so
  that one call scales both;
* the logits are kept transposed, (classes, batch), so that the softmax's maximum over
  the classes of each example is a fast reduction along the first axis;
* constants are 0-d arrays of the network's dtype (a Python float costs a conversion per
  call), and per-channel statistics are computed in that dtype: with at most
  :data:`MAX_BATCH` values per sum the rounding stays at the dtype's epsilon.

The results are those of the separate calls up to rounding; ``tests/test_mlp.py`` checks the
step against finite differences and a float64 reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bnlessons._typing import FloatArray, FloatType, IntArray

if TYPE_CHECKING:
    from bnlessons.batchnorm import BatchNorm
    from bnlessons.mlp import SigmoidMLP

__all__ = ["MAX_BATCH", "Workspace", "applies", "sgd_step"]

#: The largest batch taken here (float32 sums of more values would lose accuracy).
MAX_BATCH = 256


@dataclass(frozen=True, slots=True)
class _Hidden:
    """Buffers of one hidden layer of width C, for a batch of m examples."""

    z: FloatArray  # (m, C): h W; with BN, then z - mean (the centered input)
    u: FloatArray  # (m, C): the sigmoid input, BN's output (z itself without BN)
    h: FloatArray  # (m, C): sigmoid(u)
    tmp: FloatArray  # (m, C): a product before its column sums
    du: FloatArray  # (m, C): dL/dh, then dL/du, then (with BN) dL/dz, in place
    stats: FloatArray  # (2, C): [mean, var]
    mean: FloatArray  # (C,) view: stats[0]
    var: FloatArray  # (C,) view: stats[1]
    weighted: FloatArray  # (2, C): the statistics times their weights in the running ones
    inv: FloatArray  # (2, C): [1, 1/sqrt(var + eps)]
    inv_std: FloatArray  # (C,) view: inv[1]
    scale: FloatArray  # (m, C): gamma * inv_std, repeated down the rows (see _bn_forward)
    coefficients: FloatArray  # (2, C): -scale/m * [1, inv_std]
    sums: FloatArray  # (2, C): [sum du, sum du (z - mean)], then [dbeta, dgamma]
    qp: FloatArray  # (2, C): [q, p] of dz = scale du + p (z - mean) + q


@dataclass(frozen=True, slots=True)
class Workspace:
    """Every buffer of a step, for one batch size and one network shape."""

    hidden: list[_Hidden]
    logits: FloatArray  # (classes, m): transposed
    grad: FloatArray  # (classes, m): rate * dL/dlogits, transposed
    ones: FloatArray  # (m,): column sums are ones @ a
    means: FloatArray  # (m,) of 1/m: column means are means @ a
    ones_classes: FloatArray  # (classes,)
    examples: IntArray  # 0 .. m - 1, to pick each example's label
    colmax: FloatArray  # (m,)
    total: FloatArray  # (m,)
    terms: FloatArray  # (m,): the per-example losses
    one: FloatArray  # 0-d constants
    half: FloatArray
    minus_inv_batch: FloatArray  # -1/m
    # per weight w of the running statistics: 1 - w (0-d) and [[w], [w m/(m-1)]] (2, 1)
    track_weights: dict[float, tuple[FloatArray, FloatArray]]

    @staticmethod
    def create(sizes: tuple[int, ...], batch: int, dtype: FloatType) -> Workspace:
        def hidden(n: int) -> _Hidden:
            inv, stats = np.ones((2, n), dtype), pair(n)
            return _Hidden(
                z=matrix(n), u=matrix(n), h=matrix(n), tmp=matrix(n), du=matrix(n),
                stats=stats, mean=stats[0], var=stats[1], weighted=pair(n), inv=inv,
                inv_std=inv[1], scale=matrix(n), coefficients=pair(n), sums=pair(n), qp=pair(n),
            )  # fmt: skip

        def matrix(n: int) -> FloatArray:
            return np.zeros((batch, n), dtype)

        def vector(n: int) -> FloatArray:
            return np.zeros(n, dtype)

        def pair(n: int) -> FloatArray:
            return np.zeros((2, n), dtype)

        classes = sizes[-1]
        return Workspace(
            hidden=[hidden(n) for n in sizes[1:-1]],
            logits=np.zeros((classes, batch), dtype),
            grad=np.zeros((classes, batch), dtype),
            ones=np.ones(batch, dtype),
            means=np.full(batch, 1 / batch, dtype),
            ones_classes=np.ones(classes, dtype),
            examples=np.arange(batch),
            colmax=vector(batch),
            total=vector(batch),
            terms=vector(batch),
            one=np.array(1, dtype),
            half=np.array(0.5, dtype),
            minus_inv_batch=np.array(-1 / batch, dtype),
            track_weights={},
        )

    def weights_of(self, weight: float) -> tuple[FloatArray, FloatArray]:
        """``1 - w`` and the weights ``[[w], [w m/(m-1)]]`` of [mean, var], in the dtype."""
        found = self.track_weights.get(weight)
        if found is None:  # momentum None: w = 1/t changes every step, so keep a few only
            if len(self.track_weights) >= 8:
                self.track_weights.clear()
            m = len(self.ones)
            dtype = self.ones.dtype
            found = (
                np.array(1.0 - weight, dtype),
                np.array([[weight], [weight * m / (m - 1)]], dtype),
            )
            self.track_weights[weight] = found
        return found


def applies(net: SigmoidMLP, batch: int) -> bool:
    """Whether :func:`sgd_step` takes this step: a small batch, BN layers in their defaults.

    The layers before the sigmoids must be plain :class:`~bnlessons.batchnorm.BatchNorm`
    layers (not a subclass such as noisy BN, nor layer norm), in training mode, with ``gamma``
    and ``beta`` (as :class:`~bnlessons.mlp.SigmoidMLP` makes them); anything else takes the
    general path.
    """
    return step_norms(net, batch) is not None


def step_norms(net: SigmoidMLP, batch: int) -> list[BatchNorm] | None:
    """``net.norms`` if :func:`sgd_step` takes a step on ``batch`` examples (see
    :func:`applies`), else None."""
    return _plain_batch_norms(net) if 2 <= batch <= MAX_BATCH else None


def _plain_batch_norms(net: SigmoidMLP) -> list[BatchNorm] | None:
    """``net.norms`` if each is a plain BatchNorm in training mode with gamma and beta."""
    from bnlessons.batchnorm import BatchNorm

    norms: list[BatchNorm] = []
    for norm in net.norms:
        if type(norm) is not BatchNorm:  # a subclass may change the computation
            return None
        if not norm.training or norm.gamma is None or norm.beta is None:
            return None
        norms.append(norm)
    return norms


def sgd_step(
    net: SigmoidMLP,
    norms: list[BatchNorm],
    x: FloatArray,
    labels: IntArray,
    learning_rate: float,
    work: Workspace,
) -> float:
    """One SGD step of ``net`` on ``(x, labels)``; return the batch loss before it.

    Leaves what the separate calls leave: ``grad_weights``, ``grad_biases`` and the BN
    layers' ``grad_gamma``, ``grad_beta`` hold ``learning_rate`` times the gradients (in
    buffers reused by the next step), the parameters are updated, the running statistics
    folded, ``pre_activations`` are the sigmoid inputs. A BN layer keeps no cache: the
    buffers it would hold were used by the backward pass. ``norms`` is what
    :func:`step_norms` returned for this step.
    """
    weights, biases = net.weights, net.biases
    hidden = work.hidden
    # forward
    h = x
    for i, layer in enumerate(hidden):
        z = np.matmul(h, weights[i], out=layer.z)
        if norms:
            u = _bn_forward(norms[i], layer, work)
        else:
            bias = biases[i]
            assert bias is not None
            z += bias
            u = z
        h = _sigmoid(u, layer.h, work.half)
    logits = np.matmul(weights[-1].T, h.T, out=work.logits)  # transposed: (classes, m)
    out_bias = biases[-1]
    assert out_bias is not None
    logits += out_bias[:, None]
    loss = _softmax_cross_entropy(logits, labels, learning_rate, work)

    # backward: d is rate * dL/dz of layer i
    inputs = [x] + [layer.h for layer in hidden]
    grad_weights, grad_biases = net.grad_weights, net.grad_biases
    d = work.grad.T
    for i in range(len(weights) - 1, -1, -1):
        np.matmul(inputs[i].T, d, out=grad_weights[i])
        grad_bias = grad_biases[i]
        if grad_bias is not None:
            np.matmul(work.ones, d, out=grad_bias)
        if i == 0:
            break
        layer = hidden[i - 1]
        du = np.matmul(d, weights[i].T, out=layer.du)  # dL/dh
        slope = np.subtract(work.one, layer.h, out=layer.tmp)  # sigmoid'(u) = h (1 - h)
        slope *= layer.h
        du *= slope  # dL/du
        if norms:
            _bn_backward(norms[i - 1], layer, work)  # du becomes dL/dz
        d = du

    # update
    for w, gw in zip(weights, grad_weights, strict=True):
        w -= gw
    for b, gb in zip(biases, grad_biases, strict=True):
        if b is not None and gb is not None:
            b -= gb
    for norm, layer in zip(norms, hidden, strict=False):
        assert norm.gamma is not None and norm.beta is not None
        norm.beta -= layer.sums[0]
        norm.gamma -= layer.sums[1]
    net.pre_activations = [layer.u if norms else layer.z for layer in hidden]
    return loss


def _sigmoid(u: FloatArray, out: FloatArray, half: FloatArray) -> FloatArray:
    """``(1 + tanh(u/2)) / 2``, as ``bnlessons.mlp``'s sigmoid."""
    np.multiply(u, half, out=out)
    np.tanh(out, out=out)
    out *= half
    out += half
    return out


def _bn_forward(norm: BatchNorm, layer: _Hidden, work: Workspace) -> FloatArray:
    """BN of ``layer.z`` (training mode) into ``layer.u``; ``layer.z`` becomes ``z - mean``."""
    assert norm.gamma is not None and norm.beta is not None
    z = layer.z
    mean = np.matmul(work.means, z, out=layer.mean)
    z -= mean
    var = np.matmul(work.means, np.multiply(z, z, out=layer.tmp), out=layer.var)
    if not math.isfinite(np.add.reduce(var)):
        raise ValueError(
            f"x: expected finite values, got NaN or inf (or a sum overflowing {z.dtype})"
            f" in channel(s) {np.flatnonzero(~np.isfinite(var))[:10].tolist()}"
        )
    inv_std = np.add(var, norm.eps, out=layer.inv_std)  # 1 / sqrt(var + eps)
    np.sqrt(inv_std, out=inv_std)
    np.reciprocal(inv_std, out=inv_std)
    # scale = gamma * inv_std in every row: the forward and the backward pass multiply an
    # (m, C) array by it, and an array of the same shape is multiplied faster than a row
    scale = np.multiply(norm.gamma, inv_std, out=layer.scale[0])
    layer.scale[1:] = scale
    u = np.multiply(z, layer.scale, out=layer.u)
    u += norm.beta
    # for the backward pass: -scale/m * [1, inv_std]
    coefficients = np.multiply(layer.inv, scale, out=layer.coefficients)
    coefficients *= work.minus_inv_batch
    _track(norm, layer, work)
    norm._cache = None  # its buffers are this workspace's, overwritten by the backward pass
    return u


def _track(norm: BatchNorm, layer: _Hidden, work: Workspace) -> None:
    """Fold the batch mean and unbiased variance into the running statistics, as BN does."""
    running_mean, running_var = norm.running_mean, norm.running_var
    if running_mean is None or running_var is None or norm.num_batches_tracked is None:
        return
    norm.num_batches_tracked += 1
    weight = 1.0 / norm.num_batches_tracked if norm.momentum is None else norm.momentum
    keep, weights = work.weights_of(weight)
    weighted = np.multiply(layer.stats, weights, out=layer.weighted)  # [w mean, w' var]
    running_mean *= keep
    running_mean += weighted[0]
    running_var *= keep
    running_var += weighted[1]


def _bn_backward(norm: BatchNorm, layer: _Hidden, work: Workspace) -> None:
    """Turn ``layer.du`` = dL/du into dL/dz in place; set the layer's parameter gradients."""
    du, centered, sums = layer.du, layer.z, layer.sums
    np.matmul(work.ones, du, out=sums[0])  # sum du
    np.matmul(work.ones, np.multiply(du, centered, out=layer.tmp), out=sums[1])
    sums *= layer.inv  # [dbeta, dgamma]
    q, p = np.multiply(sums, layer.coefficients, out=layer.qp)
    # dz = scale * (du - x_hat * dgamma / m - dbeta / m), x_hat = centered * inv_std
    du *= layer.scale
    centered *= p
    du += centered
    du += q
    norm.grad_beta, norm.grad_gamma = sums


def _softmax_cross_entropy(
    logits: FloatArray, labels: IntArray, rate: float, work: Workspace
) -> float:
    """Mean cross-entropy of the batch; ``work.grad`` = ``rate`` times its gradient.

    Both ``logits`` and the gradient are transposed, (classes, m).
    """
    m = logits.shape[1]
    grad = work.grad
    np.maximum.reduce(logits, axis=0, out=work.colmax)
    np.subtract(logits, work.colmax, out=grad)
    picked = grad[labels, work.examples]
    np.exp(grad, out=grad)
    total = np.matmul(work.ones_classes, grad, out=work.total)
    terms = np.log(total, out=work.terms)
    terms -= picked
    loss = float(np.add.reduce(terms)) / int(m)
    np.divide(rate / m, total, out=total)  # p = e / total, times rate / m
    grad *= total
    grad[labels, work.examples] -= rate / m
    return loss
