"""The kernels of :mod:`bnlessons.batchnorm`: cache-blocked passes over a batch.

Each formula takes a few numpy steps (subtract, multiply, add). Done on whole arrays,
every step is one trip through main memory, and on a large batch those trips, not the
arithmetic, are the cost. So the passes walk the batch in blocks of rows that fit in the
CPU cache and do all the steps of a formula on one block before moving on. Sums over the
batch are taken per block (in the input's dtype) and the blocks' sums added in float64,
which also keeps float32 sums accurate. The arithmetic is the one in the docstrings of
:mod:`bnlessons.batchnorm`. A small (N, C) batch, one block, takes the plain whole-array
formulas (``Blocks.whole``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bnlessons._typing import Float64Array, FloatArray

_BLOCK_BYTES = 1 << 18  # 256 KiB: the few blocks a pass touches stay in the CPU caches
_BLOCK_ROWS = 256  # at most, so that float32 column sums add few rounding errors
_WHOLE_BYTES = 1 << 22  # an (N, C) batch of at most _BLOCK_ROWS rows and 4 MiB is one block


@dataclass(frozen=True)
class Blocks:
    """A batch seen as a 2-D array whose rows are visited in cache-sized blocks.

    * ``(N, C)``: the array itself. The channels are the columns; each block of rows gives
      one partial sum per channel, so the partial sums have shape ``(blocks, C)``.
    * ``(N, C, *spatial)``: the ``(N*C, S)`` view, whose row ``n*C + c`` is the map of
      channel ``c`` in sample ``n``. Each row gives one partial sum: ``(N, C)`` of them.
    """

    shape: tuple[int, ...]
    by_column: bool  # True: the channels are the columns of the 2-D view
    rows: int
    ranges: tuple[tuple[int, slice], ...]  # (block number, its rows) for every block

    @staticmethod
    @functools.lru_cache(maxsize=64)
    def of(shape: tuple[int, ...], itemsize: int) -> Blocks:
        n, channels, length = shape[0], shape[1], math.prod(shape[2:])
        elements = _BLOCK_BYTES // itemsize
        if length == 1 and n <= _BLOCK_ROWS and n * channels * itemsize <= _WHOLE_BYTES:
            rows, step = n, n  # one block: fewer, larger numpy calls beat cache-sized ones
        elif length == 1:
            rows, step = n, min(_BLOCK_ROWS, max(1, elements // channels))
        else:
            rows, step = n * channels, max(1, elements // length)
        starts = range(0, rows, step)
        ranges = tuple((j, slice(i, min(i + step, rows))) for j, i in enumerate(starts))
        return Blocks(shape, length == 1, rows, ranges)

    @property
    def whole(self) -> bool:
        """True for an ``(N, C)`` batch that is a single block."""
        return self.by_column and len(self.ranges) == 1

    def view(self, a: FloatArray) -> FloatArray:
        return a if a.ndim == 2 else a.reshape(self.rows, -1)

    def coefficient(self, v: NDArray[Any], dtype: np.dtype[Any]) -> FloatArray:
        """Per-channel ``v`` (C,) laid out to multiply the blocks of the 2-D view.

        For ``(N, C)`` in several blocks it is repeated down the rows of a block, so that both
        operands of a step have the same shape. For ``(N*C, S)`` it is a column, one value per
        row.
        """
        v = v.astype(dtype, copy=False)
        if not self.by_column:
            return np.broadcast_to(v, self.shape[:2]).reshape(-1, 1)
        if len(self.ranges) == 1:
            return v
        tile = np.empty_like(v, shape=(self.ranges[0][1].stop, v.size))
        tile[...] = v
        return tile

    def block(self, coefficient: FloatArray, rows: slice) -> FloatArray:
        """The part of a :meth:`coefficient` that multiplies the block ``rows``."""
        if not self.by_column:
            return coefficient[rows]
        return coefficient if coefficient.ndim == 1 else coefficient[: rows.stop - rows.start]

    def partials(self, dtype: np.dtype[Any]) -> FloatArray:
        """An empty array for the partial sums."""
        if self.by_column:
            return np.empty((len(self.ranges), self.shape[1]), dtype)
        return np.empty(self.rows, dtype)

    def partial(self, partials: FloatArray, j: int, rows: slice) -> FloatArray:
        """The part of ``partials`` that block ``j`` writes."""
        return partials[j] if self.by_column else partials[rows]

    def total(self, partials: FloatArray) -> NDArray[np.float64]:
        """Per-channel totals of the partial sums, added in float64."""
        total: NDArray[np.float64]
        if self.by_column and len(partials) == 1:  # one block: nothing to add
            total = partials[0].astype(np.float64)
        else:
            per_piece = partials if self.by_column else partials.reshape(self.shape[:2])
            total = np.add.reduce(per_piece, axis=0, dtype=np.float64)
        return total

    def sum(self, a: FloatArray, out: FloatArray) -> None:
        """Per-channel sums of a block ``a``, into ``out``: a product with ones (one BLAS call)."""
        if self.by_column:
            np.matmul(ones(len(a), a.dtype), a, out=out)
        else:
            np.matmul(a, ones(a.shape[1], a.dtype), out=out)

    def dot(self, a: FloatArray, b: FloatArray, out: FloatArray) -> None:
        """Per-channel sums of ``a * b`` of a block, into ``out``."""
        if self.by_column:  # the products into a scratch block, then their column sums
            products = np.multiply(a, b, out=scratch(a.shape, a.dtype))
            np.matmul(ones(len(a), a.dtype), products, out=out)
        else:
            np.vecdot(a, b, out=out)  # along the last axis


@functools.lru_cache(maxsize=16)
def ones(n: int, dtype: np.dtype[Any]) -> FloatArray:
    """A read-only vector of ``n`` ones: ``ones @ a`` sums the rows of ``a`` in one BLAS call."""
    vector = np.ones(n, dtype)
    vector.flags.writeable = False
    return vector


@functools.lru_cache(maxsize=4)
def scratch(shape: tuple[int, ...], dtype: np.dtype[Any]) -> FloatArray:
    """A work array for a block, allocated once (a fresh one page-faults on every pass)."""
    return np.empty(shape, dtype)


# ---------------------------------------------------------------------------
# the kernels of batch normalization, each a pass or two over the batch


def _check_mean(mean: Float64Array, dtype: np.dtype[Any]) -> None:
    """NaN or inf anywhere in a channel makes its mean so: detect it there, at no cost."""
    if not math.isfinite(np.add.reduce(mean)):
        bad = np.flatnonzero(~np.isfinite(mean))[:10].tolist()
        raise ValueError(
            f"x: expected finite values, got NaN or inf (or a sum overflowing {dtype})"
            f" in channel(s) {bad}"
        )


def center(x: FloatArray, centered: FloatArray) -> tuple[Float64Array, Float64Array]:
    """Write ``centered = x - mean``; return the mean and the biased variance (two passes)."""
    blocks = Blocks.of(x.shape, x.itemsize)
    count = x.size // x.shape[1]
    if blocks.whole:  # a small (N, C) batch: the formulas on whole arrays
        sums = blocks.partials(x.dtype)[0]
        blocks.sum(x, out=sums)  # <= 256 rows
        mean = sums / np.float64(count)
        _check_mean(mean, x.dtype)
        np.subtract(x, mean.astype(x.dtype), out=centered)
        blocks.dot(centered, centered, out=sums)
        return mean, sums / np.float64(count)
    x2, d2 = blocks.view(x), blocks.view(centered)
    sums, squares = blocks.partials(x.dtype), blocks.partials(x.dtype)
    for j, rows in blocks.ranges:  # pass 1: the mean
        blocks.sum(x2[rows], out=blocks.partial(sums, j, rows))
    mean = blocks.total(sums) / count
    _check_mean(mean, x.dtype)
    shift = blocks.coefficient(mean, x.dtype)
    for j, rows in blocks.ranges:  # pass 2: the deviations and their squares
        d = d2[rows]
        np.subtract(x2[rows], blocks.block(shift, rows), out=d)
        blocks.dot(d, d, out=blocks.partial(squares, j, rows))
    var = blocks.total(squares) / count
    return mean, var


def gradient_sums(dy: FloatArray, centered: FloatArray) -> tuple[Float64Array, Float64Array]:
    """Per-channel ``sum(dy)`` and ``sum(dy * centered)``, one pass in blocks."""
    blocks = Blocks.of(dy.shape, dy.itemsize)
    if blocks.whole:
        sums, dots = np.empty((2, dy.shape[1]), dy.dtype)
        blocks.sum(dy, out=sums)
        blocks.dot(dy, centered, out=dots)
        return sums.astype(np.float64), dots.astype(np.float64)
    dy2, d2 = blocks.view(dy), blocks.view(centered)
    sums, dots = blocks.partials(dy.dtype), blocks.partials(dy.dtype)
    for j, rows in blocks.ranges:
        blocks.sum(dy2[rows], out=blocks.partial(sums, j, rows))
        blocks.dot(dy2[rows], d2[rows], out=blocks.partial(dots, j, rows))
    return blocks.total(sums), blocks.total(dots)


def affine(x: FloatArray, scale: NDArray[Any], shift: NDArray[Any] | None) -> FloatArray:
    """Return ``x * scale + shift`` per channel (no shift if None), one pass in blocks."""
    blocks = Blocks.of(x.shape, x.itemsize)
    if blocks.whole:  # (copy=False: no copy of a vector already in x's dtype)
        y = x * scale.astype(x.dtype, copy=False)
        if shift is not None:
            y += shift.astype(x.dtype, copy=False)
        return y
    y = np.empty_like(x)
    x2, y2 = blocks.view(x), blocks.view(y)
    factor = blocks.coefficient(scale, x.dtype)
    offset = None if shift is None else blocks.coefficient(shift, x.dtype)
    for _, rows in blocks.ranges:
        yb = y2[rows]
        np.multiply(x2[rows], blocks.block(factor, rows), out=yb)
        if offset is not None:
            yb += blocks.block(offset, rows)
    return y


def input_gradient(
    dy: FloatArray,
    centered: FloatArray,
    along_centered: Float64Array,
    along_one: Float64Array,
    scale: Float64Array,
) -> FloatArray:
    """``dx = scale * (dy - centered * along_centered - along_one)`` per channel, in blocks.

    The last pass of the BN backward: the per-channel vectors (C,) come from the first pass.
    """
    blocks = Blocks.of(centered.shape, centered.itemsize)
    dtype = centered.dtype
    slope = blocks.coefficient(along_centered, dtype)
    offset = blocks.coefficient(along_one, dtype)
    factor = blocks.coefficient(scale, dtype)
    if blocks.whole:  # a small (N, C) batch: the formula on whole arrays
        dx = centered * slope
        dx += offset
        np.subtract(dy, dx, out=dx)
        dx *= factor
        return dx
    dy2, d2 = blocks.view(dy), blocks.view(centered)
    dx = np.empty_like(centered)
    dx2 = blocks.view(dx)
    for _, rows in blocks.ranges:
        dxb = dx2[rows]
        np.multiply(d2[rows], blocks.block(slope, rows), out=dxb)
        dxb += blocks.block(offset, rows)
        np.subtract(dy2[rows], dxb, out=dxb)
        dxb *= blocks.block(factor, rows)
    return dx


# ---------------------------------------------------------------------------
# a small (N, C) batch, one block: the whole forward and backward in few numpy calls
#
# At (60, 100) an array has 6,000 entries and a numpy call costs more than its arithmetic,
# so these take the formulas of the passes above with as few calls as they allow: sums and
# means as products with a vector of ones or of 1/N (one BLAS call each), the per-channel
# vectors in x's dtype (no conversions between the steps; at most 256 values per sum).


@functools.lru_cache(maxsize=16)
def _means(n: int, dtype: np.dtype[Any]) -> FloatArray:
    """A read-only vector of ``n`` values ``1/n``: ``means @ a`` is the column mean of ``a``."""
    vector = np.full(n, 1 / n, dtype)
    vector.flags.writeable = False
    return vector


def small_forward(
    x: FloatArray,
    centered: FloatArray,
    gamma: FloatArray | None,
    beta: FloatArray | None,
    eps: float,
) -> tuple[FloatArray, Float64Array, Float64Array, Float64Array]:
    """``y`` of a one-block (N, C) batch; ``centered = x - mean``; mean, var, inv_std in float64.

    The same formulas as :func:`center` then :func:`affine`, in x's dtype.
    """
    means = _means(len(x), x.dtype)
    mean = np.matmul(means, x)
    _check_mean(mean, x.dtype)
    np.subtract(x, mean, out=centered)
    var = np.matmul(means, np.multiply(centered, centered, out=scratch(x.shape, x.dtype)))
    inv_std = np.add(var, eps)  # 1 / sqrt(var + eps)
    np.sqrt(inv_std, out=inv_std)
    np.reciprocal(inv_std, out=inv_std)
    scale = inv_std if gamma is None else np.multiply(gamma, inv_std, dtype=x.dtype)
    y = centered * scale
    if beta is not None:
        y += beta
    return y, mean.astype(np.float64), var.astype(np.float64), inv_std.astype(np.float64)


def small_backward(
    dy: FloatArray, centered: FloatArray, inv_std: Float64Array, gamma: FloatArray | None
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(dx, dgamma, dbeta)`` of a one-block (N, C) batch, in the dtype of ``centered``.

    The same formulas as :func:`gradient_sums` then :func:`input_gradient`, in x's dtype.
    """
    dtype = centered.dtype
    n = len(centered)
    inv = inv_std.astype(dtype)
    unit = ones(n, dtype)
    dbeta = np.matmul(unit, dy)  # sum(dy)
    dgamma = np.matmul(unit, np.multiply(dy, centered, out=scratch(dy.shape, dtype)))
    dgamma *= inv  # sum(dy * x_hat)
    scale = inv if gamma is None else np.multiply(gamma, inv, dtype=dtype)
    # dx = scale * (dy - centered * inv * dgamma / n - dbeta / n)
    dx = centered * (dgamma * inv / n)
    dx += dbeta / n
    np.subtract(dy, dx, out=dx)
    dx *= scale
    return dx, dgamma, dbeta
