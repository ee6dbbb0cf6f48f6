"""The array and scalar types of the library, named once.

Every module annotates with these names, so a reader learns them in one place:

* ``FloatArray``: an array of any floating dtype (float32 or float64 in practice);
* ``Float64Array``: an array computed in float64 (statistics, references, samplers);
* ``IntArray``: an array of integers (labels, counts);
* ``FloatType``: the scalar type a caller passes as ``dtype``, ``np.float32`` or ``np.float64``.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

__all__ = ["Float64Array", "FloatArray", "FloatType", "IntArray"]

FloatArray: TypeAlias = NDArray[np.floating[Any]]
Float64Array: TypeAlias = NDArray[np.float64]
IntArray: TypeAlias = NDArray[np.integer[Any]]
FloatType: TypeAlias = type[np.float32] | type[np.float64]
