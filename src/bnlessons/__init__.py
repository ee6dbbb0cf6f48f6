"""bnlessons: the typed numpy core behind the lessons on matrix arithmetic and batch norm.

The names a reader reaches for first are importable from the package itself::

    import bnlessons as bn

    layer = bn.BatchNorm(100)
    grads = bn.chain_gradients([W1, W2, W3], x)
    data = bn.load_mnist()

Everything else lives in the module named for its idea (see the API reference). The names are
loaded on first use, so ``import bnlessons`` itself imports nothing heavy: not numpy (the
command line sets its BLAS thread count before numpy loads), nor sympy or matplotlib, which
come with :mod:`bnlessons.symbolic` and :mod:`bnlessons.figures`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bnlessons.batchnorm import BatchNorm, batchnorm_backward, batchnorm_forward
    from bnlessons.checks import numerical_gradient, relative_error
    from bnlessons.gradients import chain_gradients
    from bnlessons.mlp import SigmoidMLP
    from bnlessons.mnist import load_mnist
    from bnlessons.training import FIGURE1, TrainingConfig, TrainingResult, train

#: Where each name of the package lives.
_HOMES = {
    "BatchNorm": "batchnorm",
    "batchnorm_forward": "batchnorm",
    "batchnorm_backward": "batchnorm",
    "numerical_gradient": "checks",
    "relative_error": "checks",
    "chain_gradients": "gradients",
    "SigmoidMLP": "mlp",
    "load_mnist": "mnist",
    "FIGURE1": "training",
    "TrainingConfig": "training",
    "TrainingResult": "training",
    "train": "training",
}

__all__ = [
    "FIGURE1",
    "BatchNorm",
    "SigmoidMLP",
    "TrainingConfig",
    "TrainingResult",
    "batchnorm_backward",
    "batchnorm_forward",
    "chain_gradients",
    "load_mnist",
    "numerical_gradient",
    "relative_error",
    "train",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """Import ``bnlessons.<home>`` on first access of one of its names (PEP 562)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'bnlessons' has no attribute {name!r}")
    return getattr(importlib.import_module(f"bnlessons.{home}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
