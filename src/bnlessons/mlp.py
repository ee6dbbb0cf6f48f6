"""The network of Figure 1 of Ioffe & Szegedy (2015) and its training by SGD.

A fully connected network with sigmoid hidden units, 784-100-100-100-10 in the paper:

.. math::

    h_0 = x, \\qquad
    z_l = h_{l-1} W_l \\;(+\\, b_l), \\qquad
    u_l = \\mathrm{BN}_l(z_l) \\text{ or } u_l = z_l, \\qquad
    h_l = \\sigma(u_l), \\qquad
    \\text{logits} = h_L W_{L+1} + b_{L+1},

trained on the softmax cross-entropy of the logits by plain SGD on mini-batches. A hidden layer
followed by BN has no bias: BN subtracts the batch mean, which would cancel it, and its own
shift ``beta`` takes the bias's role. The BN layers are :class:`bnlessons.batchnorm.BatchNorm`.

Rows are examples: ``x`` has shape (batch, 784) and ``W_l`` has shape (fan_in, fan_out).

:func:`train` runs the paper's experiment and records what Figure 1 plots: the test accuracy
every ``eval_every`` steps, and the 15th, 50th and 85th percentiles over the test set of the
input ``u_L[:, unit]`` of one sigmoid of the last hidden layer.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from bnlessons.batchnorm import BatchNorm
from bnlessons.mnist import MnistData, images_to_features
from bnlessons.provenance import blas_info

__all__ = [
    "PERCENTILES",
    "SigmoidMLP",
    "TrainingConfig",
    "TrainingResult",
    "evaluate",
    "softmax_cross_entropy",
    "train",
    "train_many",
]

Float = np.float32 | np.float64
FloatArray = NDArray[np.floating]

#: The percentiles of Figure 1 (b, c).
PERCENTILES = (15.0, 50.0, 85.0)


def softmax_cross_entropy(
    logits: FloatArray, labels: NDArray[np.integer], *, out: FloatArray | None = None
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
            f"logits must be (N, classes) and labels (N,), got {logits.shape} and {labels.shape}"
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
    norms : list of BatchNorm
        One per hidden layer, empty without BN.
    grad_weights, grad_biases : lists of NDArray or None
        Gradients written by :meth:`backward`.
    pre_activations : list of NDArray
        The sigmoid inputs ``u_l`` of the last :meth:`forward`, shape (batch, width).

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
        dtype: type[Float] = np.float64,
    ) -> None:
        if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
            raise ValueError(f"sizes must be at least two positive widths, got {tuple(sizes)}")
        if not init_std > 0:
            raise ValueError(f"init_std must be > 0, got {init_std}")
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be np.float32 or np.float64, got {dtype!r}")
        self.sizes = tuple(int(s) for s in sizes)
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
        self.norms: list[BatchNorm] = (
            [BatchNorm(n, dtype=dtype) for n in self.sizes[1:-1]] if batch_norm else []
        )
        self.grad_weights: list[FloatArray] = [np.zeros_like(w) for w in self.weights]
        self.grad_biases: list[FloatArray | None] = [
            None if b is None else np.zeros_like(b) for b in self.biases
        ]
        self.pre_activations: list[FloatArray] = []
        self._input: FloatArray | None = None
        self._buffers: dict[int, _Buffers] = {}

    def train(self) -> None:
        """Put every BN layer in training mode (batch statistics)."""
        for norm in self.norms:
            norm.train()

    def eval(self) -> None:
        """Put every BN layer in evaluation mode (running statistics, Algorithm 2)."""
        for norm in self.norms:
            norm.eval()

    def forward(self, x: FloatArray) -> FloatArray:
        """Return the logits of a batch ``x`` of shape (batch, sizes[0]).

        The returned array and :attr:`pre_activations` are reused buffers: they are overwritten
        by the next forward pass of a batch of the same size.
        """
        if x.ndim != 2 or x.shape[1] != self.sizes[0] or x.dtype != self.dtype:
            raise ValueError(
                f"x must be {np.dtype(self.dtype)} of shape (batch, {self.sizes[0]}), "
                f"got {x.dtype} of shape {x.shape}"
            )
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
                f"dlogits must have shape {buf.logits.shape} (the last forward's logits), "
                f"got {dlogits.shape}"
            )
        hidden = [x, *buf.h]
        d = dlogits
        for i in range(len(self.weights) - 1, -1, -1):
            np.matmul(hidden[i].T, d, out=self.grad_weights[i])
            grad_bias = self.grad_biases[i]
            if grad_bias is not None:
                # Column sums as ones^T d: one BLAS call, several times faster than np.sum(axis=0).
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
        carries the rate), then ``p -= grad_p``.

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
        logits = self.forward(x)
        grad = self._buffers[x.shape[0]].grad_logits
        loss, _ = softmax_cross_entropy(logits, labels, out=grad)
        grad *= self.dtype(learning_rate)
        self.backward(grad)
        self.subtract_gradients()
        return loss

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


@dataclass(frozen=True, kw_only=True)
class TrainingConfig:
    """Hyperparameters of one Figure 1 training run.

    Attributes
    ----------
    batch_norm : bool
        BN before every sigmoid (the paper's "with BN" network) or not (the baseline).
    hidden_sizes : tuple of int
        Hidden widths; the paper's (100, 100, 100).
    init_std : float
        Standard deviation of the Gaussian initial weights (the paper: "small random Gaussian
        values", scale not stated).
    learning_rate : float
        SGD step size (not stated in the paper).
    batch_size : int
        Mini-batch size, 60 in the paper.
    steps : int
        Number of SGD steps, 50,000 in the paper.
    eval_every : int
        Evaluate on the test set every this many steps (and at steps 0 and ``steps``).
    tracked_unit : int
        Which sigmoid of the last hidden layer Figure 1 (b, c) follows.
    seed : int
        Seeds the initial weights and the mini-batch order: equal seeds give equal runs.
    dtype : np.float32 or np.float64
        Precision of the parameters and the arithmetic.

    Examples
    --------
    >>> TrainingConfig(batch_norm=False, steps=1000).learning_rate
    0.5
    """

    batch_norm: bool = True
    hidden_sizes: tuple[int, ...] = (100, 100, 100)
    init_std: float = 0.1
    learning_rate: float = 0.5
    batch_size: int = 60
    steps: int = 50_000
    eval_every: int = 500
    tracked_unit: int = 0
    seed: int = 0
    dtype: type[Float] = np.float32

    def __post_init__(self) -> None:
        if not isinstance(self.batch_norm, bool):
            raise TypeError(f"batch_norm must be a bool, got {type(self.batch_norm).__name__}")
        for name in ("batch_size", "steps", "eval_every", "seed", "tracked_unit"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        for name in ("init_std", "learning_rate"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not (0 < value < float("inf")):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if self.batch_size < 2:
            raise ValueError(
                f"batch_size must be >= 2 (BN needs two values), got {self.batch_size}"
            )
        if self.steps < 1 or self.eval_every < 1:
            raise ValueError(
                f"steps and eval_every must be >= 1, got {self.steps} and {self.eval_every}"
            )
        if not self.hidden_sizes or any(
            isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in self.hidden_sizes
        ):
            raise ValueError(f"hidden_sizes must be positive ints, got {self.hidden_sizes!r}")
        if not 0 <= self.tracked_unit < self.hidden_sizes[-1]:
            raise ValueError(
                f"tracked_unit must be in [0, {self.hidden_sizes[-1]}), got {self.tracked_unit}"
            )
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be np.float32 or np.float64, got {self.dtype!r}")


@dataclass(frozen=True, eq=False)
class TrainingResult:
    """What one run records; the curves of Figure 1.

    Attributes
    ----------
    config : TrainingConfig
    steps : NDArray[np.int64]
        Steps at which the test set was evaluated, from 0 to ``config.steps``.
    test_accuracy : NDArray[np.float64]
        Fraction of the test set classified correctly (BN in evaluation mode).
    test_loss : NDArray[np.float64]
        Mean softmax cross-entropy on the test set.
    sigmoid_input_percentiles : NDArray[np.float64]
        Shape (len(steps), 3): the 15th, 50th and 85th percentiles over the test set of the
        tracked sigmoid's input.
    network : SigmoidMLP
        The trained network.
    seconds : float
        Wall time of the run.
    """

    config: TrainingConfig
    steps: NDArray[np.int64]
    test_accuracy: NDArray[np.float64]
    test_loss: NDArray[np.float64]
    sigmoid_input_percentiles: NDArray[np.float64]
    network: SigmoidMLP = field(repr=False)
    seconds: float

    @property
    def final_accuracy(self) -> float:
        """Test accuracy after the last step."""
        return float(self.test_accuracy[-1])


def evaluate(
    network: SigmoidMLP, features: FloatArray, labels: NDArray[np.integer], *, unit: int
) -> tuple[float, float, NDArray[np.float64]]:
    """Return test accuracy, test loss and the percentiles of one last-layer sigmoid input.

    The network is evaluated in evaluation mode (BN uses its running statistics) and left in
    training mode.

    Examples
    --------
    >>> net = SigmoidMLP((3, 4, 2), batch_norm=False, init_std=1.0,
    ...                  rng=np.random.default_rng(0))
    >>> acc, loss, q = evaluate(net, np.eye(3), np.array([0, 1, 1]), unit=0)
    >>> q.shape, bool(q[0] <= q[1] <= q[2])
    ((3,), True)
    """
    network.eval()
    try:
        logits = network.forward(features)
        accuracy = float(np.mean(np.argmax(logits, axis=1) == labels))
        tracked = network.pre_activations[-1][:, unit]
        percentiles = np.percentile(tracked.astype(np.float64), PERCENTILES)
        loss, _ = softmax_cross_entropy(logits.astype(np.float64), labels)
    finally:
        network.train()
    return accuracy, loss, percentiles


def train(
    config: TrainingConfig,
    data: MnistData,
    *,
    progress: Callable[[int, float], None] | None = None,
) -> TrainingResult:
    """Train the Figure 1 network on ``data`` by SGD and record the curves of Figure 1.

    Each epoch visits the training set in a fresh random order (from ``config.seed``) in
    mini-batches of ``config.batch_size``; a last incomplete batch is dropped. One step is

    .. math:: \\theta \\leftarrow \\theta - \\eta \\, \\nabla_\\theta L_{\\text{batch}}.

    Parameters
    ----------
    config : TrainingConfig
    data : MnistData
    progress : callable, optional
        Called as ``progress(step, test_accuracy)`` after every evaluation.

    Examples
    --------
    >>> from bnlessons.mnist import load_mnist
    >>> result = train(TrainingConfig(steps=200, eval_every=100), load_mnist())
    >>> result.steps.tolist(), result.sigmoid_input_percentiles.shape
    ([0, 100, 200], (3, 3))
    """
    x_train = images_to_features(data.train_images, dtype=config.dtype)
    x_test = images_to_features(data.test_images, dtype=config.dtype)
    y_train = np.asarray(data.train_labels, dtype=np.intp)
    y_test = np.asarray(data.test_labels, dtype=np.intp)
    n, batch = x_train.shape[0], config.batch_size
    if n < batch:
        raise ValueError(f"data has {n} training examples, fewer than batch_size={batch}")
    classes = int(max(y_train.max(), y_test.max())) + 1
    rng = np.random.default_rng(config.seed)
    sizes = (x_train.shape[1], *config.hidden_sizes, max(classes, 10))
    net = SigmoidMLP(
        sizes,
        batch_norm=config.batch_norm,
        init_std=config.init_std,
        rng=rng,
        dtype=config.dtype,
    )
    xb = np.empty((batch, x_train.shape[1]), config.dtype)
    yb = np.empty(batch, np.intp)
    per_epoch = n // batch
    order = rng.permutation(n)

    started = time.perf_counter()
    records: list[tuple[int, float, float, NDArray[np.float64]]] = []

    def record(step: int) -> None:
        accuracy, loss, q = evaluate(net, x_test, y_test, unit=config.tracked_unit)
        records.append((step, accuracy, loss, q))
        if progress is not None:
            progress(step, accuracy)

    record(0)
    for step in range(1, config.steps + 1):
        k = (step - 1) % per_epoch
        if k == 0 and step > 1:
            order = rng.permutation(n)
        idx = order[k * batch : (k + 1) * batch]
        np.take(x_train, idx, axis=0, out=xb)
        np.take(y_train, idx, out=yb)
        net.sgd_step(xb, yb, learning_rate=config.learning_rate)
        if step % config.eval_every == 0 or step == config.steps:
            record(step)
    seconds = time.perf_counter() - started
    return TrainingResult(
        config=config,
        steps=np.array([r[0] for r in records], dtype=np.int64),
        test_accuracy=np.array([r[1] for r in records], dtype=np.float64),
        test_loss=np.array([r[2] for r in records], dtype=np.float64),
        sigmoid_input_percentiles=np.array([r[3] for r in records], dtype=np.float64),
        network=net,
        seconds=seconds,
    )


def train_many(
    configs: Sequence[TrainingConfig], data: MnistData, *, processes: int | None = None
) -> list[TrainingResult]:
    """Return ``[train(c, data) for c in configs]``, computed by parallel worker processes.

    A run is a function of its config alone, so the results equal those of the serial loop
    bit for bit (run the workers with the same BLAS thread count, e.g.
    ``OPENBLAS_NUM_THREADS=1``, which they inherit). The longest runs (most steps, BN first)
    are started first, so that the workers finish at about the same time. Workers are started
    with ``spawn``, which is safe in a Jupyter kernel.

    Parameters
    ----------
    configs : sequence of TrainingConfig
    data : MnistData
    processes : int or None
        Number of worker processes; None means one per core not taken by the BLAS threads,
        ``min(len(configs), os.cpu_count() // blas_threads)`` (each worker runs that many BLAS
        threads, and more threads than cores would make them wait on each other), and 1
        trains in this process.

    Returns
    -------
    list of TrainingResult
        In the order of ``configs``.

    Examples
    --------
    >>> from bnlessons.mnist import load_mnist
    >>> data = load_mnist()
    >>> configs = [TrainingConfig(batch_norm=b, steps=20, eval_every=10) for b in (False, True)]
    >>> runs = train_many(configs, data, processes=1)
    >>> [r.config.batch_norm for r in runs], runs[1].steps.tolist()
    ([False, True], [0, 10, 20])
    """
    configs = list(configs)
    for i, config in enumerate(configs):
        if not isinstance(config, TrainingConfig):
            raise TypeError(
                f"configs[{i}]: expected a TrainingConfig, got {type(config).__name__}"
            )
    if processes is None:
        cores_per_worker = max(1, blas_info().threads)
        processes = max(1, min(len(configs), (os.cpu_count() or 1) // cores_per_worker))
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ValueError(f"processes: expected an int >= 1 or None, got {processes!r}")
    if processes == 1 or len(configs) <= 1:
        return [train(config, data) for config in configs]
    order = sorted(
        range(len(configs)),
        key=lambda i: -configs[i].steps * (3 if configs[i].batch_norm else 2),
    )
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        futures: dict[int, Future[TrainingResult]] = {
            i: pool.submit(train, configs[i], data) for i in order
        }
        return [futures[i].result() for i in range(len(configs))]
