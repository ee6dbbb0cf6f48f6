"""The SGD step of :class:`bnlessons.mlp.SigmoidMLP` on a small batch, in few numpy calls.

:meth:`SigmoidMLP.sgd_step <bnlessons.mlp.SigmoidMLP.sgd_step>` hands a batch of at most
:data:`MAX_BATCH` examples to :func:`sgd_step` here. The arithmetic is the one of
``SigmoidMLP.forward``, ``softmax_cross_entropy``, ``SigmoidMLP.backward`` (with
:func:`~bnlessons.batchnorm.batchnorm_forward` and
:func:`~bnlessons.batchnorm.batchnorm_backward`) and ``subtract_gradients``, whose
docstrings carry the equations. What changes is the bookkeeping. At batch 60 an array has a
few thousand entries and a numpy call spends more time being called (about a microsecond)
than computing, so after the matrix products the cost of a step is its number of calls, and
of passes over (batch, width) arrays:

* every intermediate has a buffer, allocated once per batch size (:class:`Workspace`) and
  written through ``out``: no allocation, no page fault, warm caches; the buffers used within
  one layer only (a product before its sums, the gradient passed down) are shared by the
  layers, so that fewer arrays stay in the CPU cache, and each starts on a cache line
  (numpy writes a misaligned output more slowly);
* a sum over the batch (BN's statistics, its gradient sums, a bias gradient) is a product
  with a vector of ones, one BLAS call, and a mean a product with a vector of ``1/m``;
  these small products call ``np.dot``, which goes to BLAS directly (``np.matmul``, a
  generalized ufunc, spends about 0.3 us more per call), while the layers' own products keep
  ``np.matmul``, as the matmul floor of ``benchmarks/bench_training.py`` times them;
  BN's mean and variance come with their share of the running statistics from the same
  call, as the product with two rows ``[1/m, w/m]`` (resp. ``[1/m, w/(m-1)]``, the
  unbiased variance), ``w`` the weight of the new batch in the running average;
* the sigmoid is :math:`\\sigma(u) = (1 + \\tanh(u/2))/2`, and with BN the factor 1/2 is
  folded into BN's affine map: the layer computes :math:`u/2 = (z - \\mu)\\, s/2 + \\beta/2`
  with the per-channel :math:`s = \\gamma/\\sqrt{\\sigma^2 + \\epsilon}`, one pass less, in
  the buffer of ``h``; ``u`` itself is computed only if ``pre_activations`` are read
  (:meth:`Workspace.pre_activations`, from ``z - mean``, which the step keeps);
* BN writes the centered input :math:`z - \\mu` over the layer's product ``z``, and its
  backward turns :math:`du = \\partial L/\\partial u` into :math:`\\partial L/\\partial z` in
  place, as :math:`dz = s\\,(du + p\\,(z - \\mu) + q)` with
  :math:`p = -\\partial L/\\partial\\gamma \\,/\\, (m \\sqrt{\\sigma^2 + \\epsilon})`,
  :math:`q = -\\partial L/\\partial\\beta \\,/\\, m`;
* BN's two gradient sums, :math:`\\sum du` and :math:`\\sum du\\,(z - \\mu)`, are one
  product: ``du`` and ``du (z - mean)`` lie one after the other in one (2m, C) array, and
  a (4, 2m) matrix of ones and zeros sums each, twice; one product with the per-channel
  factors ``[1, 1/sqrt(var + eps), -1/m, -1/(m (var + eps))]`` turns the four rows into
  :math:`\\partial L/\\partial\\beta`, :math:`\\partial L/\\partial\\gamma`, ``q`` and ``p``;
* each parameter is updated as soon as its gradient is known and its last use is over
  (after its layer's backward product), while the arrays are still in the CPU cache;
* the logits are kept transposed, (classes, batch), so that the softmax's maximum over
  the classes of each example is a fast reduction along the first axis, and each example's
  label is picked by a flat index (``take``, ``np.subtract.at``: cheaper than a fancy index);
* constants are 0-d arrays of the network's dtype (a Python float costs a conversion per
  call), and per-channel statistics are computed in that dtype: with at most
  :data:`MAX_BATCH` values per sum the rounding stays at the dtype's epsilon;
* the output of a ufunc or of ``np.dot`` is passed as the last positional argument,
  ``np.multiply(a, b, out)`` for ``np.multiply(a, b, out=out)``: numpy parses a keyword more
  slowly, a few microseconds a step over its hundred calls (the layers' products keep
  ``out=``, as the matmul floor writes them).

The results are those of the separate calls up to rounding; ``tests/test_mlp.py`` checks the
step against finite differences and a float64 reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bnlessons._typing import FloatArray, FloatType, IntArray
from bnlessons.batchnorm import BatchNorm

if TYPE_CHECKING:
    from bnlessons.mlp import SigmoidMLP

__all__ = ["MAX_BATCH", "Workspace", "applies", "sgd_step"]

#: The largest batch taken here (float32 sums of more values would lose accuracy).
MAX_BATCH = 256


@dataclass(frozen=True, slots=True)
class _Hidden:
    """Buffers of one hidden layer of width C, for a batch of m examples."""

    z: FloatArray  # (m, C): h W; with BN, then z - mean (the centered input)
    h: FloatArray  # (m, C): sigmoid(u)
    du: FloatArray  # (m, C), shared: dL/dh, then dL/du, then (with BN) dL/dz, in place
    scratch: FloatArray  # (m, C), shared: a product before its sums, right after du
    du_scratch: FloatArray  # (2m, C): du and scratch, one array
    u: FloatArray  # (m, C): the sigmoid input, written when pre_activations are read
    moments: FloatArray  # (2, C): [mean, w mean]
    mean: FloatArray  # (C,) views: moments[0], moments[1]
    weighted_mean: FloatArray
    variances: FloatArray  # (2, C): [var, w var m/(m-1)]
    var: FloatArray  # (C,) views: variances[0], variances[1]
    weighted_var: FloatArray
    factors: FloatArray  # (4, C): [1, inv_std, -1/m, -inv_std**2/m], inv_std = 1/sqrt(var + eps)
    inv_std: FloatArray  # (C,) views: factors[1], factors[3]
    p_factor: FloatArray
    ones: FloatArray  # (C,): the finiteness check sums var over the channels
    scale: FloatArray  # (C,): s = gamma * inv_std
    half_scale: FloatArray  # (C,): s/2
    half_shift: FloatArray  # (C,): beta/2
    # (4, C): [sum du, sum du (z - mean)] twice, times factors: [dbeta, dgamma, q, p] of
    # dz = s (du + p (z - mean) + q)
    sums: FloatArray
    dbeta: FloatArray  # (C,) views: the rows of sums
    dgamma: FloatArray
    q: FloatArray
    p: FloatArray


@dataclass(frozen=True, slots=True)
class _Averages:
    """The rows that give BN's batch statistics and their share ``w`` of the running ones."""

    mean: FloatArray  # (2, m): [1/m, w/m]; times z: [mean, w mean]
    var: FloatArray  # (2, m): [1/m, w/(m-1)]; times (z - mean)**2: [var, w unbiased var]
    keep: FloatArray  # 0-d: 1 - w


@dataclass(frozen=True, slots=True)
class Workspace:
    """Every buffer of a step, for one batch size and one network shape."""

    hidden: list[_Hidden]
    logits: FloatArray  # (classes, m): transposed
    grad: FloatArray  # (classes, m): rate * dL/dlogits, transposed
    grad_flat: FloatArray  # (classes * m,) view of grad: entry (k, i) at k m + i
    ones: FloatArray  # (m,): column sums are ones @ a
    ones_apart: FloatArray  # (4, 2m): [[1 (m times), 0 (m times)], [0 ..., 1 ...]] twice
    ones_classes: FloatArray  # (classes,)
    examples: IntArray  # 0 .. m - 1
    batch: IntArray  # 0-d: m
    flat_labels: IntArray  # (m,): labels m + examples, each label's index in grad_flat
    colmax: FloatArray  # (m,)
    total: FloatArray  # (m,)
    terms: FloatArray  # (m,): the per-example losses
    picked: FloatArray  # (m,): the label's entry of each example
    one: FloatArray  # 0-d constants
    half: FloatArray
    minus_inv_batch: FloatArray  # -1/m
    # per weight w of the running statistics, and per value of a float such as eps
    averages: dict[float, _Averages]
    constants: dict[float, FloatArray]

    @staticmethod
    def create(sizes: tuple[int, ...], batch: int, dtype: FloatType) -> Workspace:
        # layer l's du is written from layer l+1's: two buffers in turn, each followed by a
        # scratch array of the same shape, so that the column sums of both are one product
        widest = max(sizes[1:-1], default=0)
        shared = [_zeros((2 * batch * widest,), dtype) for _ in range(2)]

        def hidden(index: int, n: int) -> _Hidden:
            moments, variances, factors, sums = pair(n), pair(n), four(n), four(n)
            factors[0], factors[2] = 1, -1 / batch
            du_scratch = shared[index % 2][: 2 * batch * n].reshape(2 * batch, n)
            return _Hidden(
                z=matrix(n), h=matrix(n), du=du_scratch[:batch], scratch=du_scratch[batch:],
                du_scratch=du_scratch, u=matrix(n),
                moments=moments, mean=moments[0], weighted_mean=moments[1],
                variances=variances, var=variances[0], weighted_var=variances[1],
                factors=factors, inv_std=factors[1], p_factor=factors[3], ones=np.ones(n, dtype),
                scale=vector(n), half_scale=vector(n), half_shift=vector(n), sums=sums,
                dbeta=sums[0], dgamma=sums[1], q=sums[2], p=sums[3],
            )  # fmt: skip

        def matrix(n: int) -> FloatArray:
            return _zeros((batch, n), dtype)

        def vector(n: int) -> FloatArray:
            return _zeros((n,), dtype)

        def pair(n: int) -> FloatArray:
            return _zeros((2, n), dtype)

        def four(n: int) -> FloatArray:
            return _zeros((4, n), dtype)

        classes = sizes[-1]
        grad = _zeros((classes, batch), dtype)
        return Workspace(
            hidden=[hidden(i, n) for i, n in enumerate(sizes[1:-1])],
            logits=_zeros((classes, batch), dtype),
            grad=grad,
            grad_flat=grad.reshape(-1),
            ones=np.ones(batch, dtype),
            ones_apart=np.array([[1] * batch + [0] * batch, [0] * batch + [1] * batch] * 2, dtype),
            ones_classes=np.ones(classes, dtype),
            examples=np.arange(batch),
            batch=np.array(batch, np.intp),
            flat_labels=np.zeros(batch, np.intp),
            colmax=vector(batch),
            total=vector(batch),
            terms=vector(batch),
            picked=vector(batch),
            one=np.array(1, dtype),
            half=np.array(0.5, dtype),
            minus_inv_batch=np.array(-1 / batch, dtype),
            averages={},
            constants={},
        )

    def averages_of(self, weight: float) -> _Averages:
        """The :class:`_Averages` of a running-statistics weight ``w``, in the dtype."""
        found = self.averages.get(weight)
        if found is None:  # momentum None: w = 1/t changes every step, so keep a few only
            if len(self.averages) >= 8:
                self.averages.clear()
            m = len(self.ones)
            dtype = self.ones.dtype
            found = _Averages(
                mean=np.array([[1 / m] * m, [weight / m] * m], dtype),
                var=np.array([[1 / m] * m, [weight / (m - 1)] * m], dtype),
                keep=np.array(1.0 - weight, dtype),
            )
            self.averages[weight] = found
        return found

    def constant(self, value: float) -> FloatArray:
        """``value`` as a 0-d array of the dtype (made once per value)."""
        found = self.constants.get(value)
        if found is None:
            if len(self.constants) >= 8:
                self.constants.clear()
            found = self.constants[value] = np.array(value, self.ones.dtype)
        return found

    def pre_activations(self) -> list[FloatArray]:
        """The sigmoid inputs of the last step with BN, ``u = 2 ((z - mean) s/2 + beta/2)``
        (the step's own rounding), from what it kept: the centered ``z`` and s/2, beta/2."""
        for layer in self.hidden:
            u = np.multiply(layer.z, layer.half_scale, out=layer.u)
            u += layer.half_shift
            u *= 2
        return [layer.u for layer in self.hidden]


def _zeros(shape: tuple[int, ...], dtype: FloatType) -> FloatArray:
    """Zeros of ``shape`` from a 64-byte boundary, the start of a cache line.

    numpy's loops write an output that starts elsewhere more slowly: at batch 60, float32,
    a product of two (60, 100) arrays into a third takes about 1.6 us instead of 0.9.
    """
    size, itemsize = math.prod(shape), np.dtype(dtype).itemsize
    raw = np.zeros(size + 64 // itemsize, dtype)
    skip = (-raw.ctypes.data % 64) // itemsize
    return raw[skip : skip + size].reshape(shape)


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
    folded, ``pre_activations`` are the sigmoid inputs (with BN, computed when first read:
    see :class:`~bnlessons.mlp.SigmoidMLP`). A BN layer keeps no cache: the buffers it would
    hold were used by the backward pass. ``norms`` is what :func:`step_norms` returned for
    this step.
    """
    weights, biases = net.weights, net.biases
    grad_weights, grad_biases = net.grad_weights, net.grad_biases
    hidden = work.hidden
    half = work.half
    # forward: each layer leaves u/2 in layer.h, then h = (1 + tanh(u/2)) / 2
    h = x
    for i, layer in enumerate(hidden):
        z = np.matmul(h, weights[i], out=layer.z)
        if norms:
            h = _bn_forward(norms[i], layer, work)
        else:
            bias = biases[i]
            assert bias is not None
            z += bias
            h = np.multiply(z, half, layer.h)
        np.tanh(h, h)
        h *= half
        h += half
    logits = np.matmul(weights[-1].T, h.T, out=work.logits)  # transposed: (classes, m)
    out_bias = biases[-1]
    assert out_bias is not None
    logits += out_bias[:, None]
    loss = _softmax_cross_entropy(logits, labels, learning_rate, work)

    # backward, d = rate * dL/dz of layer i, and the update of each parameter
    d = work.grad.T
    for i in range(len(weights) - 1, -1, -1):
        below = hidden[i - 1] if i else None
        grad_weight = np.matmul((below.h if below else x).T, d, out=grad_weights[i])
        bias, grad_bias = biases[i], grad_biases[i]
        if bias is not None and grad_bias is not None:
            np.dot(work.ones, d, grad_bias)
            bias -= grad_bias
        if below is None:
            weights[i] -= grad_weight
            break
        du = np.matmul(d, weights[i].T, out=below.du)  # dL/dh
        weights[i] -= grad_weight
        slope = np.subtract(work.one, below.h, below.scratch)  # sigmoid'(u) = h (1 - h)
        slope *= below.h
        du *= slope  # dL/du
        if norms:
            _bn_backward(norms[i - 1], below, work)  # du becomes dL/dz
        d = du

    if norms:  # computed from the step's buffers if they are read (before the next step)
        net._pending_pre_activations = work.pre_activations
    else:
        net.pre_activations = [layer.z for layer in hidden]
    return loss


def _bn_forward(norm: BatchNorm, layer: _Hidden, work: Workspace) -> FloatArray:
    """BN of ``layer.z`` (training mode), halved, into ``layer.h`` (returned); ``layer.z``
    becomes ``z - mean``; the running statistics are updated."""
    gamma, beta = norm.gamma, norm.beta
    assert gamma is not None and beta is not None
    count, running_mean, running_var = (
        norm.num_batches_tracked, norm.running_mean, norm.running_var,
    )  # fmt: skip
    momentum = norm.momentum
    weight = (1.0 / (count + 1) if count is not None else 0.0) if momentum is None else momentum
    averages = work.averages_of(weight)
    z, tile = layer.z, layer.scratch  # a per-channel vector is first repeated down the rows
    # of tile: an operand of z's shape costs less than a broadcast row (see _blocks)
    np.dot(averages.mean, z, layer.moments)  # [mean, w mean]
    tile[...] = layer.mean
    z -= tile
    var = layer.var
    np.dot(averages.var, np.square(z, layer.scratch), layer.variances)
    if not math.isfinite(var.dot(layer.ones)):
        raise ValueError(
            f"x: expected finite values, got NaN or inf (or a sum overflowing {z.dtype})"
            f" in channel(s) {np.flatnonzero(~np.isfinite(var))[:10].tolist()}"
        )
    inv_std = np.add(var, work.constant(norm.eps), layer.inv_std)  # 1 / sqrt(var + eps)
    np.divide(work.minus_inv_batch, inv_std, layer.p_factor)  # -1 / (m (var + eps))
    np.sqrt(inv_std, inv_std)
    np.reciprocal(inv_std, inv_std)
    scale = np.multiply(gamma, inv_std, layer.scale)
    half = work.half
    tile[...] = np.multiply(scale, half, layer.half_scale)
    u = np.multiply(z, tile, layer.h)
    tile[...] = np.multiply(beta, half, layer.half_shift)
    u += tile  # u/2 = (z - mean) s/2 + beta/2
    if count is not None and running_mean is not None and running_var is not None:
        norm.num_batches_tracked = count + 1
        keep = averages.keep
        running_mean *= keep
        running_mean += layer.weighted_mean
        running_var *= keep
        running_var += layer.weighted_var
    norm._cache = None  # its buffers are this workspace's, overwritten by the backward pass
    return u


def _bn_backward(norm: BatchNorm, layer: _Hidden, work: Workspace) -> None:
    """Turn ``layer.du`` = dL/du into dL/dz in place; set and subtract the layer's parameter
    gradients. ``layer.z`` (z - mean) is left as it is, for the pre-activations."""
    gamma, beta = norm.gamma, norm.beta
    assert gamma is not None and beta is not None
    du, centered, sums = layer.du, layer.z, layer.sums
    np.multiply(du, centered, layer.scratch)
    np.dot(work.ones_apart, layer.du_scratch, sums)  # [sum du, sum du (z - mean)] twice
    sums *= layer.factors  # [dbeta, dgamma, -dbeta/m, -dgamma inv_std/m]
    # dz = s * (du - x_hat * dgamma / m - dbeta / m), x_hat = centered * inv_std
    tile = layer.scratch  # per-channel vectors repeated down its rows, as in _bn_forward
    tile[...] = layer.p
    tile *= centered
    du += tile
    tile[...] = layer.q
    du += tile
    tile[...] = layer.scale
    du *= tile
    norm.grad_beta, norm.grad_gamma = layer.dbeta, layer.dgamma
    beta -= layer.dbeta
    gamma -= layer.dgamma


def _softmax_cross_entropy(
    logits: FloatArray, labels: IntArray, rate: float, work: Workspace
) -> float:
    """Mean cross-entropy of the batch; ``work.grad`` = ``rate`` times its gradient.

    Both ``logits`` and the gradient are transposed, (classes, m).
    """
    m = int(logits.shape[1])
    grad, flat, picked = work.grad, work.grad_flat, work.picked
    index = np.multiply(labels, work.batch, work.flat_labels)
    index += work.examples
    np.maximum.reduce(logits, axis=0, out=work.colmax)
    np.subtract(logits, work.colmax, grad)
    flat.take(index, out=picked)
    np.exp(grad, grad)
    total = np.dot(work.ones_classes, grad, work.total)
    terms = np.log(total, work.terms)
    terms -= picked
    loss = float(terms.dot(work.ones)) / m
    step = work.constant(rate / m)
    np.divide(step, total, total)  # p = e / total, times rate / m
    grad *= total
    np.subtract.at(flat, index, step)  # the label's term
    return loss
