"""The SGD step of :class:`bnlessons.mlp.SigmoidMLP` on a small batch, in few numpy calls.

:meth:`SigmoidMLP.sgd_step <bnlessons.mlp.SigmoidMLP.sgd_step>` hands a batch of at most
:data:`MAX_BATCH` examples to :func:`sgd_step` here. The arithmetic is the one of
``SigmoidMLP.forward``, ``softmax_cross_entropy``, ``SigmoidMLP.backward`` (with
:func:`~bnlessons.batchnorm.batchnorm_forward` and
:func:`~bnlessons.batchnorm.batchnorm_backward`) and ``subtract_gradients``, whose
docstrings carry the equations. What changes is the bookkeeping. At batch 60 an array has a few
thousand entries and a numpy call spends more time being called (about a microsecond) than
computing, so after the matrix products the step's cost is its number of calls. Here:

* every intermediate has a buffer, allocated once per batch size (:class:`Workspace`) and
  written with ``out=``: no allocation, no page fault, warm caches;
* a sum over the batch (BN's statistics, its gradient sums, a bias gradient) is a product
  with a vector of ones: one BLAS call;
* BN writes the centered input over the layer's product ``z``, and its backward turns
  ``dL/du`` into ``dL/dz`` in place, in the form
  :math:`dz = s\\,du + p\\,(z - \\mu) + q` with per-channel :math:`s = \\gamma/\\sqrt{\\sigma^2 +
  \\epsilon}`, :math:`p = -s\\,\\sum(du\\,\\hat x)/(m \\sqrt{\\sigma^2 + \\epsilon})`,
  :math:`q = -s \\sum du / m`;
* per-channel statistics are computed in the network's dtype: with at most
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


@dataclass(frozen=True)
class _Hidden:
    """Buffers of one hidden layer: (batch, width) arrays, then (width,) vectors."""

    z: FloatArray  # h W; with BN, then z - mean (the centered input)
    u: FloatArray  # the sigmoid input (BN's output); z itself without BN
    h: FloatArray  # sigmoid(u)
    dh: FloatArray  # dL/dh, then dL/du, then (with BN) dL/dz
    tmp: FloatArray  # a product before its column sums
    mean: FloatArray
    var: FloatArray
    inv_std: FloatArray
    scale: FloatArray
    shift: FloatArray  # the scale times -1/m, in the backward pass
    p: FloatArray
    q: FloatArray
    dgamma: FloatArray
    dbeta: FloatArray


@dataclass(frozen=True)
class Workspace:
    """Every buffer of a step for one batch size and one network shape."""

    hidden: list[_Hidden]
    logits: FloatArray
    grad: FloatArray  # rate * dL/dlogits
    ones: FloatArray  # (batch,): column sums are ones @ a
    ones_out: FloatArray  # (classes,): row sums are a @ ones
    rows: IntArray  # 0 .. batch - 1, to pick each row's label
    rowmax: FloatArray  # (batch,), and its (batch, 1) view below
    rowmax_column: FloatArray
    total: FloatArray  # (batch,), and its (batch, 1) view below
    total_column: FloatArray
    terms: FloatArray  # the per-example losses

    @staticmethod
    def create(sizes: tuple[int, ...], batch: int, dtype: FloatType) -> Workspace:
        def matrix(width: int) -> FloatArray:
            return np.zeros((batch, width), dtype)

        def vector(width: int) -> FloatArray:
            return np.zeros(width, dtype)

        hidden = [
            _Hidden(
                z=matrix(n), u=matrix(n), h=matrix(n), dh=matrix(n), tmp=matrix(n),
                mean=vector(n), var=vector(n), inv_std=vector(n), scale=vector(n),
                shift=vector(n), p=vector(n), q=vector(n), dgamma=vector(n), dbeta=vector(n),
            )
            for n in sizes[1:-1]
        ]  # fmt: skip
        classes = sizes[-1]
        rowmax, total = vector(batch), vector(batch)
        return Workspace(
            hidden=hidden,
            logits=matrix(classes),
            grad=matrix(classes),
            ones=np.ones(batch, dtype),
            ones_out=np.ones(classes, dtype),
            rows=np.arange(batch),
            rowmax=rowmax,
            rowmax_column=rowmax[:, None],
            total=total,
            total_column=total[:, None],
            terms=vector(batch),
        )


def applies(net: SigmoidMLP, batch: int) -> bool:
    """Whether :func:`sgd_step` takes this step: a small batch, BN layers in their defaults.

    BN layers must be in training mode with ``gamma`` and ``beta`` (as
    :class:`~bnlessons.mlp.SigmoidMLP` makes them); anything else takes the general path.
    """
    if not 2 <= batch <= MAX_BATCH:
        return False
    return all(
        norm.training and norm.gamma is not None and norm.beta is not None for norm in net.norms
    )


def sgd_step(
    net: SigmoidMLP,
    x: FloatArray,
    labels: IntArray,
    learning_rate: float,
    work: Workspace,
) -> float:
    """One SGD step of ``net`` on ``(x, labels)``; return the batch loss before it.

    Leaves what the separate calls leave: ``grad_weights``, ``grad_biases`` and the BN
    layers' ``grad_gamma``, ``grad_beta`` hold ``learning_rate`` times the gradients, the
    parameters are updated, the running statistics folded, ``pre_activations`` are the
    sigmoid inputs. (A BN layer keeps no cache: its buffers were used by the backward pass.)
    """
    weights, biases, norms = net.weights, net.biases, net.norms
    hidden, ones = work.hidden, work.ones
    # forward
    h = x
    for i, layer in enumerate(hidden):
        z = np.matmul(h, weights[i], out=layer.z)
        if norms:
            u = _bn_forward(norms[i], layer, ones)
        else:
            bias = biases[i]
            assert bias is not None
            z += bias
            u = z
        h = _sigmoid(u, out=layer.h)
    logits = np.matmul(h, weights[-1], out=work.logits)
    out_bias = biases[-1]
    assert out_bias is not None
    logits += out_bias
    loss = _softmax_cross_entropy(logits, labels, learning_rate, work)

    # backward: d is rate * dL/dz of layer i
    inputs = [x] + [layer.h for layer in hidden]
    d = work.grad
    for i in range(len(weights) - 1, -1, -1):
        np.matmul(inputs[i].T, d, out=net.grad_weights[i])
        grad_bias = net.grad_biases[i]
        if grad_bias is not None:
            np.matmul(ones, d, out=grad_bias)
        if i == 0:
            break
        layer = hidden[i - 1]
        dh = np.matmul(d, weights[i].T, out=layer.dh)
        slope = np.subtract(1, layer.h, out=layer.tmp)  # sigmoid'(u) = h (1 - h)
        slope *= layer.h
        dh *= slope
        if norms:
            _bn_backward(norms[i - 1], layer, ones)
        d = dh

    net.subtract_gradients()
    net.pre_activations = [layer.u if norms else layer.z for layer in hidden]
    return loss


def _sigmoid(u: FloatArray, *, out: FloatArray) -> FloatArray:
    """``(1 + tanh(u/2)) / 2``, as ``bnlessons.mlp``'s sigmoid."""
    np.multiply(u, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def _bn_forward(norm: BatchNorm, layer: _Hidden, ones: FloatArray) -> FloatArray:
    """BN of ``layer.z`` (training mode) into ``layer.u``; ``layer.z`` becomes ``z - mean``."""
    assert norm.gamma is not None and norm.beta is not None
    z = layer.z
    m = z.shape[0]
    mean = np.matmul(ones, z, out=layer.mean)
    mean *= 1 / m
    z -= mean
    np.multiply(z, z, out=layer.tmp)
    var = np.matmul(ones, layer.tmp, out=layer.var)
    var *= 1 / m
    if not math.isfinite(np.add.reduce(var)):
        raise ValueError(
            f"x: expected finite values, got NaN or inf (or a sum overflowing {z.dtype})"
            f" in channel(s) {np.flatnonzero(~np.isfinite(var))[:10].tolist()}"
        )
    inv_std = np.add(var, norm.eps, out=layer.inv_std)  # 1 / sqrt(var + eps)
    np.sqrt(inv_std, out=inv_std)
    np.divide(1, inv_std, out=inv_std)
    scale = np.multiply(norm.gamma, inv_std, out=layer.scale)
    u = np.multiply(z, scale, out=layer.u)
    u += norm.beta
    if norm.track_running_stats:
        norm._track(mean, var * (m / (m - 1)))  # unbiased variance
    norm._cache = None  # its buffers are this workspace's, overwritten by the backward pass
    return u


def _bn_backward(norm: BatchNorm, layer: _Hidden, ones: FloatArray) -> None:
    """Turn ``layer.dh`` = dL/du into dL/dz in place; set the layer's parameter gradients."""
    du, centered = layer.dh, layer.z
    m = du.shape[0]
    dbeta = np.matmul(ones, du, out=layer.dbeta)  # sum(du)
    np.multiply(du, centered, out=layer.tmp)
    dgamma = np.matmul(ones, layer.tmp, out=layer.dgamma)
    dgamma *= layer.inv_std  # sum(du * x_hat)
    # dz = scale * (du - x_hat * dgamma / m - dbeta / m), x_hat = centered * inv_std
    shift = np.multiply(layer.scale, -1 / m, out=layer.shift)
    p = np.multiply(dgamma, layer.inv_std, out=layer.p)
    p *= shift
    q = np.multiply(dbeta, shift, out=layer.q)
    du *= layer.scale
    centered *= p
    du += centered
    du += q
    norm.grad_gamma = dgamma
    norm.grad_beta = dbeta


def _softmax_cross_entropy(
    logits: FloatArray, labels: IntArray, rate: float, work: Workspace
) -> float:
    """Mean cross-entropy of the batch; ``work.grad`` = ``rate`` times its gradient."""
    n = logits.shape[0]
    grad = work.grad
    np.maximum.reduce(logits, axis=1, out=work.rowmax)
    np.subtract(logits, work.rowmax_column, out=grad)
    picked = grad[work.rows, labels]
    np.exp(grad, out=grad)
    total = np.matmul(grad, work.ones_out, out=work.total)
    terms = np.log(total, out=work.terms)
    terms -= picked
    loss = float(np.add.reduce(terms)) / int(n)
    np.divide(rate / n, total, out=total)  # p = e / total, times rate / n
    grad *= work.total_column
    grad[work.rows, labels] -= rate / n
    return loss
