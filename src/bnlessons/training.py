"""The Figure 1 experiment of Ioffe & Szegedy (2015): train the network, record its curves.

:func:`train` trains a :class:`bnlessons.mlp.SigmoidMLP` by SGD as a :class:`TrainingConfig`
says, and records what Figure 1 plots: the test accuracy every ``eval_every`` steps, and the
15th, 50th and 85th percentiles over the test set of the input ``u_L[:, unit]`` of one sigmoid
of the last hidden layer. A run is a function of its config (and data) alone, so
:func:`train_many` can run several in parallel with the same results.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from bnlessons import _validate as _v
from bnlessons._cache import cached
from bnlessons._typing import FloatArray, FloatType, IntArray
from bnlessons.mlp import SigmoidMLP, softmax_cross_entropy
from bnlessons.mnist import MnistData, images_to_features
from bnlessons.provenance import blas_info

__all__ = [
    "FIGURE1",
    "PERCENTILES",
    "Probe",
    "TrainingConfig",
    "TrainingResult",
    "evaluate",
    "train",
    "train_many",
    "with_step0_in_training_mode",
]

#: The type of the probe that train calls before each SGD step, as
#: ``probe(steps_taken, network, x_batch, labels_batch)``.
Probe = Callable[[int, SigmoidMLP, FloatArray, IntArray], None]

R = TypeVar("R")

#: The percentiles of Figure 1 (b, c).
PERCENTILES = (15.0, 50.0, 85.0)


@dataclass(frozen=True, kw_only=True)
class TrainingConfig:
    """Hyperparameters of one Figure 1 training run.

    Lessons 5 and 8 start from the preset :data:`FIGURE1`; variants are
    ``dataclasses.replace(FIGURE1, ...)``. The config also knows when :func:`train` evaluates
    (:attr:`evaluation_steps`) and which network it starts from (:meth:`initial_network`).

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
    >>> config = TrainingConfig(batch_norm=False, steps=1000)
    >>> config.learning_rate, config.evaluation_steps[:3], config.evaluation_steps[-1]
    (0.5, (0, 500, 1000), 1000)
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
    dtype: FloatType = np.float32

    def __post_init__(self) -> None:
        _v.boolean(self.batch_norm, "batch_norm")
        _v.integer(self.batch_size, "batch_size", minimum=2)  # BN needs two values
        _v.positive_int(self.steps, "steps")
        _v.positive_int(self.eval_every, "eval_every")
        _v.nonnegative_int(self.seed, "seed")
        _v.positive_float(self.init_std, "init_std")
        _v.positive_float(self.learning_rate, "learning_rate")
        _v.sequence(self.hidden_sizes, "hidden_sizes", "a tuple of positive ints")
        if not self.hidden_sizes:
            raise ValueError(_v.expected("hidden_sizes", "at least one width", self.hidden_sizes))
        for i, n in enumerate(self.hidden_sizes):
            _v.positive_int(n, f"hidden_sizes[{i}]")
        unit = _v.nonnegative_int(self.tracked_unit, "tracked_unit")
        if unit >= self.hidden_sizes[-1]:
            raise ValueError(
                _v.expected("tracked_unit", f"a unit in [0, {self.hidden_sizes[-1]})", unit)
            )
        _v.float_dtype(self.dtype)

    @property
    def evaluation_steps(self) -> tuple[int, ...]:
        """The steps after which :func:`train` evaluates: 0, every ``eval_every``, and ``steps``.

        Examples
        --------
        >>> TrainingConfig(steps=25, eval_every=10).evaluation_steps
        (0, 10, 20, 25)
        """
        return (*range(0, self.steps, self.eval_every), self.steps)

    def initial_network(
        self, *, inputs: int = 784, classes: int = 10, rng: np.random.Generator | None = None
    ) -> SigmoidMLP:
        """Return the network of this run at step 0, as :func:`train` builds it.

        The weights are the first draws of ``numpy.random.default_rng(seed)`` (or of ``rng``,
        which :func:`train` then goes on drawing the batch order from), so the network of any
        recorded run can be rebuilt from its config.

        Parameters
        ----------
        inputs, classes : int
            Widths of the input and output layers (784 pixels and 10 digits for MNIST).
        rng : numpy.random.Generator, optional
            Source of the weights; default a fresh generator seeded with ``seed``.

        Examples
        --------
        >>> net = TrainingConfig(hidden_sizes=(5,), seed=3).initial_network(inputs=4, classes=2)
        >>> net.sizes, net.training
        ((4, 5, 2), True)
        """
        return SigmoidMLP(
            (inputs, *self.hidden_sizes, classes),
            batch_norm=self.batch_norm,
            init_std=self.init_std,
            rng=np.random.default_rng(self.seed) if rng is None else rng,
            dtype=self.dtype,
        )


#: The Figure 1 run of lessons 5 and 8 (with BN; ``dataclasses.replace(FIGURE1, batch_norm=False)``
#: is the baseline): the paper's 784-100-100-100-10 network, 50,000 SGD steps on batches of 60,
#: initial weights N(0, 1) and learning rate 0.1 (the paper states neither). Lesson 5 varies
#: ``init_std`` (its main figure is at 0.1), ``seed`` and ``steps``. It is the default of
#: ``python -m bnlessons figure1``.
FIGURE1 = TrainingConfig(
    batch_norm=True,
    hidden_sizes=(100, 100, 100),
    init_std=1.0,
    learning_rate=0.1,
    batch_size=60,
    steps=50_000,
    eval_every=500,
    tracked_unit=0,
    seed=0,
    dtype=np.float32,
)


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
    network: SigmoidMLP, features: FloatArray, labels: IntArray, *, unit: int
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
    network.training = False
    try:
        logits = network.forward(features)
        accuracy = float(np.mean(np.argmax(logits, axis=1) == labels))
        tracked = network.pre_activations[-1][:, unit]
        percentiles = np.percentile(tracked.astype(np.float64), PERCENTILES)
        loss, _ = softmax_cross_entropy(logits.astype(np.float64), labels)
    finally:
        network.training = True
    return accuracy, loss, percentiles


def train(
    config: TrainingConfig,
    data: MnistData,
    *,
    progress: Callable[[int, float], None] | None = None,
    probe: Probe | None = None,
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
    probe : callable, optional
        Called as ``probe(step, network, x_batch, labels_batch)`` before every SGD step, with
        the number of steps taken so far and the batch of the step about to be taken (for
        measures such as :func:`bnlessons.ics.gradient_shift`). It must not change the
        network or the batch (measure a copy), so the run is the same as without it.

    Examples
    --------
    >>> from bnlessons.mnist import load_mnist
    >>> result = train(TrainingConfig(steps=200, eval_every=100), load_mnist())
    >>> result.steps.tolist(), result.sigmoid_input_percentiles.shape
    ([0, 100, 200], (3, 3))

    Without ``progress`` and ``probe``, the run is memoized in the experiment cache when
    ``BNLESSONS_CACHE_DIR`` is set (the site build sets it): see ``bnlessons._cache``.
    """
    if progress is None and probe is None:
        return _train_cached(config, data)
    return _train(config, data, progress, probe)


@cached
def _train_cached(config: TrainingConfig, data: MnistData) -> TrainingResult:
    """:func:`train` without a progress callback: a function of its arguments alone."""
    return _train(config, data, None)


def _train(
    config: TrainingConfig,
    data: MnistData,
    progress: Callable[[int, float], None] | None,
    probe: Probe | None = None,
) -> TrainingResult:
    x_train = images_to_features(data.train_images, dtype=config.dtype)
    x_test = images_to_features(data.test_images, dtype=config.dtype)
    y_train = np.asarray(data.train_labels, dtype=np.intp)
    y_test = np.asarray(data.test_labels, dtype=np.intp)
    n, batch = x_train.shape[0], config.batch_size
    if n < batch:
        raise ValueError(f"data: expected at least batch_size={batch} training examples, got {n}")
    classes = max(int(max(y_train.max(), y_test.max())) + 1, 10)
    rng = np.random.default_rng(config.seed)  # the weights first, then the batch order
    net = config.initial_network(inputs=x_train.shape[1], classes=classes, rng=rng)
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

    evaluations = set(config.evaluation_steps)
    record(0)
    for step in range(1, config.steps + 1):
        k = (step - 1) % per_epoch
        if k == 0 and step > 1:
            order = rng.permutation(n)
        idx = order[k * batch : (k + 1) * batch]
        np.take(x_train, idx, axis=0, out=xb)
        np.take(y_train, idx, out=yb)
        if probe is not None:
            probe(step - 1, net, xb, yb)
        net.sgd_step(xb, yb, learning_rate=config.learning_rate)
        if step in evaluations:
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
    return run_many(train, configs, data, processes=processes)


def run_many(
    run: Callable[..., R],
    configs: Sequence[TrainingConfig],
    data: MnistData,
    *,
    processes: int | None = None,
    **options: Any,
) -> list[R]:
    """Return ``[run(c, data, **options) for c in configs]``, computed by worker processes.

    The machinery of :func:`train_many` (and of :func:`bnlessons.ics.track_many`): ``run`` must
    be a module-level function whose result depends on its arguments alone; the costliest
    configs start first; ``processes`` as in :func:`train_many`.
    """
    configs = list(configs)
    for i, config in enumerate(configs):
        _v.instance(config, TrainingConfig, f"configs[{i}]")
    if processes is None:
        cores_per_worker = max(1, blas_info().threads)
        processes = max(1, min(len(configs), (os.cpu_count() or 1) // cores_per_worker))
    processes = _v.positive_int(processes, "processes")
    if processes == 1 or len(configs) <= 1:
        return [run(config, data, **options) for config in configs]
    order = sorted(
        range(len(configs)),
        key=lambda i: -configs[i].steps * (3 if configs[i].batch_norm else 2),
    )
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        futures: dict[int, Future[R]] = {
            i: pool.submit(run, configs[i], data, **options) for i in order
        }
        return [futures[i].result() for i in range(len(configs))]


def with_step0_in_training_mode(result: TrainingResult, data: MnistData) -> TrainingResult:
    """Return ``result`` with its step-0 percentiles taken in training mode, as Figure 1 shows.

    :func:`train` evaluates with BN in evaluation mode. At step 0 a BN network has seen no
    batch, so its running averages still hold their initial values (mean 0, variance 1) and
    it passes the raw, unnormalized input to the sigmoid, which is not what the sigmoid sees in
    training. This rebuilds the initial network (:meth:`TrainingConfig.initial_network`), runs
    the test set through it in training mode (BN normalizes with the statistics of the test set
    as one batch) and puts the percentiles of the tracked input in place of the recorded
    step-0 ones. Without BN both modes compute the same, and the result is equal to ``result``.

    Parameters
    ----------
    result : TrainingResult
        A run of :func:`train` on ``data``.
    data : MnistData
        The data of that run (its test set is used).

    Returns
    -------
    TrainingResult
        A copy of ``result`` whose ``sigmoid_input_percentiles[0]`` is replaced.

    Examples
    --------
    >>> from bnlessons.mnist import load_mnist
    >>> data = load_mnist()
    >>> run = train(TrainingConfig(steps=10, eval_every=10, init_std=1.0), data)
    >>> seen = with_step0_in_training_mode(run, data).sigmoid_input_percentiles
    >>> bool(abs(seen[0, 1]) < 0.2), bool((seen[1:] == run.sigmoid_input_percentiles[1:]).all())
    (True, True)
    """
    _v.instance(result, TrainingResult, "result")
    _v.instance(data, MnistData, "data")
    config = result.config
    features = images_to_features(data.test_images, dtype=config.dtype)
    classes = result.network.sizes[-1]
    network = config.initial_network(inputs=features.shape[1], classes=classes)
    network.forward(features)  # training mode: BN uses the statistics of this batch
    tracked = network.pre_activations[-1][:, config.tracked_unit].astype(np.float64)
    bands = result.sigmoid_input_percentiles.copy()
    bands[0] = np.percentile(tracked, PERCENTILES)
    return dataclasses.replace(result, sigmoid_input_percentiles=bands)
