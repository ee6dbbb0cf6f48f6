"""The kernels of :mod:`bnlessons.batchnorm`: cache-blocked passes over a batch.

Each formula takes a few numpy steps (subtract, multiply, add). Done on whole arrays,
every step is one trip through main memory, and on a large batch those trips, not the
arithmetic, are the cost. So the passes walk the batch in blocks of rows that fit in the
CPU cache and do all the steps of a formula on one block before moving on. Sums over the
batch are taken per block (in the input's dtype) and the blocks' sums added in float64,
which also keeps float32 sums accurate. The arithmetic is the one in the docstrings of
:mod:`bnlessons.batchnorm`, rearranged to read the batch as few times as it can:

* the statistics take one trip: each block is centred on a value near the mean while it is
  in the cache (the first block's mean for every block of an ``(N, C)`` batch, each map's own
  mean for ``(N, C, *spatial)``), and the blocks' sums and squared deviations are combined
  exactly in float64 (:func:`moments`, the two-pass variance computed piecewise);
* the backward pass keeps ``x`` (no centred copy is written to memory) and recentres each
  block in the cache when it needs ``x - mean``;
* the last pass of each direction is an affine map per channel, ``y = x s + t`` and
  ``dx = (dy + x b + c) s``, with the per-channel vectors computed once in float64.

A small (N, C) batch, one block, takes the plain whole-array formulas (``Blocks.whole``).
Outputs and work arrays are laid out for numpy's loops: work arrays start on a 64-byte cache
line (:func:`empty_aligned`), and a per-channel factor is an operand of the block's shape
(repeated down rows) rather than a row that numpy broadcasts one row at a time.
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
_EINSUM_SIZE = 1 << 15  # from this many values on, the small batch's sums of products use
# einsum, which never writes the products (below, its overhead costs more than a product into
# a scratch array and a BLAS sum)
_TILE_BYTES = 1 << 16  # at most, a per-channel vector repeated down rows (small_forward)


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

    @property
    def count(self) -> int:
        """Values per channel, ``N * prod(spatial)``."""
        return math.prod(self.shape) // self.shape[1]

    def view(self, a: FloatArray) -> FloatArray:
        return a if a.ndim == 2 else a.reshape(self.rows, -1)

    def work(self, dtype: np.dtype[Any], rows: slice, tag: int = 0) -> FloatArray:
        """A scratch array for the block ``rows`` (one per ``tag``, allocated once)."""
        first = self.ranges[0][1]
        shape = (first.stop - first.start, math.prod(self.shape) // self.rows)
        return scratch(shape, dtype, tag)[: rows.stop - rows.start]

    def coefficient(self, v: NDArray[Any], dtype: np.dtype[Any], tag: int = 0) -> FloatArray:
        """Per-channel ``v`` (C,) laid out to multiply the blocks of the 2-D view.

        For ``(N, C)`` in several blocks it is repeated down the rows of a block (a scratch
        array, one per ``tag``), so that both operands of a step have the same shape. For
        ``(N*C, S)`` it is a column, one value per row.
        """
        v = v.astype(dtype, copy=False)
        if not self.by_column:
            return np.broadcast_to(v, self.shape[:2]).reshape(-1, 1)
        if len(self.ranges) == 1:
            return v
        tile = self.work(dtype, self.ranges[0][1], tag=1 + tag)
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

    def pieces(self, partials: FloatArray) -> FloatArray:
        """The partial sums with one row per piece of the batch: ``(pieces, C)``."""
        return partials if self.by_column else partials.reshape(self.shape[:2])

    def counts(self) -> Float64Array:
        """The number of values per channel in each piece, shaped to divide :meth:`pieces`."""
        if self.by_column:
            return np.array([[r.stop - r.start] for _, r in self.ranges], np.float64)
        return np.array(math.prod(self.shape[2:]), np.float64)

    def total(self, partials: FloatArray) -> NDArray[np.float64]:
        """Per-channel totals of the partial sums, added in float64."""
        total: NDArray[np.float64]
        if self.by_column and len(partials) == 1:  # one block: nothing to add
            total = partials[0].astype(np.float64)
        else:
            total = np.add.reduce(self.pieces(partials), axis=0, dtype=np.float64)
        return total

    def sum(self, a: FloatArray, out: FloatArray) -> None:
        """Per-channel sums of a block ``a``, into ``out``: a product with ones (one BLAS call)."""
        if self.by_column:
            np.matmul(ones(len(a), a.dtype), a, out=out)
        else:
            np.matmul(a, ones(a.shape[1], a.dtype), out=out)

    def dot(self, a: FloatArray, b: FloatArray, out: FloatArray) -> None:
        """Per-channel sums of ``a * b`` of a block, into ``out``; ``a``, a scratch block, is
        overwritten: for ``(N, C)`` the products are written over it (in the cache) and
        summed by a product with ones, which takes less time than ``einsum``."""
        if self.by_column:
            np.multiply(a, b, out=a)
            np.matmul(ones(len(a), a.dtype), a, out=out)
        else:
            np.vecdot(a, b, out=out)  # along the last axis


@functools.lru_cache(maxsize=16)
def ones(n: int, dtype: np.dtype[Any]) -> FloatArray:
    """A read-only vector of ``n`` ones: ``ones @ a`` sums the rows of ``a`` in one BLAS call."""
    vector = np.ones(n, dtype)
    vector.flags.writeable = False
    return vector


@functools.lru_cache(maxsize=16)
def means(n: int, dtype: np.dtype[Any]) -> FloatArray:
    """A read-only vector of ``n`` values ``1/n``: ``means @ a`` is the column mean of ``a``."""
    return fill(n, 1 / n, dtype)


@functools.lru_cache(maxsize=16)
def fill(n: int, value: float, dtype: np.dtype[Any]) -> FloatArray:
    """A read-only vector of ``n`` values ``value`` (a vector operand costs less than a float)."""
    vector = np.full(n, value, dtype)
    vector.flags.writeable = False
    return vector


def empty_aligned(shape: tuple[int, ...], dtype: np.dtype[Any]) -> FloatArray:
    """``np.empty`` starting on a 64-byte boundary (a cache line).

    numpy's loops write 64 bytes at a time (AVX-512), and ``np.empty`` only promises 16-byte
    alignment (a large array starts 16 bytes into a page): an output off the 64-byte lines
    makes every write straddle two of them, and a pass over a (256, 1024) float32 batch into
    it takes 82 us instead of 60. For the work arrays (allocated once) and the outputs of the
    blocked passes; finding the address costs about a microsecond, which a small batch's
    output does not repay.
    """
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    raw = np.empty(nbytes + 64, np.uint8)
    start = -raw.ctypes.data % 64
    return raw[start : start + nbytes].view(dtype).reshape(shape)


@functools.lru_cache(maxsize=16)
def scratch(shape: tuple[int, ...], dtype: np.dtype[Any], tag: int = 0) -> FloatArray:
    """A work array for a block, allocated once (a fresh one page-faults on every pass).

    ``tag`` tells apart two work arrays of the same shape used at the same time.
    """
    return empty_aligned(shape, dtype)


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


def moments(x: FloatArray) -> tuple[Float64Array, Float64Array]:
    """Per-channel mean and biased variance of ``x``, in one trip through memory.

    Each piece of the batch (a block of rows of an ``(N, C)`` batch, a row of the
    ``(N*C, S)`` view) is shifted by a value ``k`` near its mean while it is in the cache,
    ``d = x - k``, and gives ``sum(d)`` and ``sum(d**2)``. The pieces are combined in float64
    by the exact identity (``n_p`` values, mean ``m_p = k + sum(d)/n_p`` in piece ``p``)

    ``m * var = sum_p [sum(d**2) - sum(d)**2 / n_p + n_p (m_p - mean)**2]``,

    the two-pass variance computed piecewise (Chan, Golub & LeVeque's parallel form). The
    subtraction in a piece loses nothing as long as ``k`` is within a few standard deviations
    of the mean: ``k`` is the row's own mean for ``(N*C, S)``; for ``(N, C)`` it is the mean of
    the first block, the same for every block (one tiled vector, the faster subtraction), and
    when that first block lies more than a standard deviation from the batch mean (a sorted
    batch, say) the trip is made again with the batch mean as ``k``.
    """
    blocks = Blocks.of(x.shape, x.itemsize)
    if not blocks.by_column:
        return _combine(blocks, *_shifted_sums(x, blocks, None))
    first = blocks.ranges[0][1]
    shift = np.matmul(means(first.stop, x.dtype), x[first])
    mean, var = _combine(blocks, *_shifted_sums(x, blocks, shift))
    if np.any((shift - mean) ** 2 > var):  # k far from the mean: shift by the mean instead
        mean, var = _combine(blocks, *_shifted_sums(x, blocks, mean.astype(x.dtype)))
    return mean, var


def _shifted_sums(
    x: FloatArray, blocks: Blocks, shift: FloatArray | None
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The shifts ``k`` and the partial sums of ``d = x - k`` and ``d**2``, for :func:`moments`.

    ``shift`` (C,) is the one shift of every block of an ``(N, C)`` batch; None for the
    ``(N*C, S)`` view, where each row is shifted by its own mean.
    """
    x2 = blocks.view(x)
    sums, squares = blocks.partials(x.dtype), blocks.partials(x.dtype)
    if shift is not None:
        shifts = shift[None, :]
        tile = blocks.coefficient(shift, x.dtype)
    else:
        shifts = blocks.partials(x.dtype)
    with np.errstate(invalid="ignore"):  # inf - inf: the mean tells (_check_mean)
        for j, rows in blocks.ranges:
            xb = x2[rows]
            if shift is None:  # one shift per row (n*C + c): its mean
                k = np.matmul(xb, means(xb.shape[1], x.dtype), out=shifts[rows])[:, None]
            else:
                k = blocks.block(tile, rows)
            d = np.subtract(xb, k, out=blocks.work(x.dtype, rows))
            blocks.sum(d, out=blocks.partial(sums, j, rows))
            blocks.dot(d, d, out=blocks.partial(squares, j, rows))
    return shifts, sums, squares


def _combine(
    blocks: Blocks, shifts: FloatArray, sums: FloatArray, squares: FloatArray
) -> tuple[Float64Array, Float64Array]:
    """Mean and variance from the pieces' shifts and sums (the identity in :func:`moments`).

    For ``(N, C)`` every block has the same shift ``k``, and the identity is the shifted
    two-pass variance ``m * var = sum(d**2) - sum(d)**2 / m`` over the whole batch.
    """
    if blocks.by_column:  # one shift: only the (C,) totals are needed
        offset = blocks.total(sums) / blocks.count  # mean - k
        mean = shifts[0].astype(np.float64) + offset
        _check_mean(mean, shifts.dtype)
        var = blocks.total(squares) / blocks.count - offset * offset
        return mean, np.maximum(var, 0.0, out=var)  # (>= 0 up to rounding)
    count = blocks.counts()  # values per piece and channel
    shift = blocks.pieces(shifts)  # one per row of the (N*C, S) view
    total, square = (blocks.pieces(a).astype(np.float64) for a in (sums, squares))
    piece_mean = shift + total / count
    mean = np.add.reduce(count * piece_mean, axis=0) / blocks.count
    _check_mean(mean, shifts.dtype)
    spread = square - total * total / count + count * (piece_mean - mean) ** 2
    var = np.add.reduce(spread, axis=0) / blocks.count
    return mean, var


def gradient_sums(
    dy: FloatArray, x: FloatArray, mean: Float64Array
) -> tuple[Float64Array, Float64Array]:
    """Per-channel ``sum(dy)`` and ``sum(dy * (x - mean))``, one pass in blocks."""
    blocks = Blocks.of(dy.shape, dy.itemsize)
    dy2, x2 = blocks.view(dy), blocks.view(x)
    sums, dots = blocks.partials(dy.dtype), blocks.partials(dy.dtype)
    shift = blocks.coefficient(mean, x.dtype)
    for j, rows in blocks.ranges:
        dyb = dy2[rows]
        blocks.sum(dyb, out=blocks.partial(sums, j, rows))
        d = np.subtract(x2[rows], blocks.block(shift, rows), out=blocks.work(dy.dtype, rows))
        blocks.dot(d, dyb, out=blocks.partial(dots, j, rows))
    return blocks.total(sums), blocks.total(dots)


def affine(x: FloatArray, scale: NDArray[Any], shift: NDArray[Any] | None) -> FloatArray:
    """Return ``x * scale + shift`` per channel (no shift if None), one pass in blocks."""
    blocks = Blocks.of(x.shape, x.itemsize)
    if blocks.whole:  # (copy=False: no copy of a vector already in x's dtype)
        y = x * scale.astype(x.dtype, copy=False)
        if shift is not None:
            y += shift.astype(x.dtype, copy=False)
        return y
    y = empty_aligned(x.shape, x.dtype)
    x2, y2 = blocks.view(x), blocks.view(y)
    factor = blocks.coefficient(scale, x.dtype)
    offset = None if shift is None else blocks.coefficient(shift, x.dtype, tag=1)
    for _, rows in blocks.ranges:
        yb = y2[rows]
        np.multiply(x2[rows], blocks.block(factor, rows), out=yb)
        if offset is not None:
            yb += blocks.block(offset, rows)
    return y


def input_gradient(
    dy: FloatArray, x: FloatArray, slope: Float64Array, offset: Float64Array, scale: Float64Array
) -> FloatArray:
    """``dx = (dy + x * slope + offset) * scale`` per channel, one pass in blocks.

    The last pass of the BN backward: the per-channel vectors (C,) come from the first pass.
    """
    blocks = Blocks.of(x.shape, x.itemsize)
    dtype = x.dtype
    along_x = blocks.coefficient(slope, dtype)
    constant = blocks.coefficient(offset, dtype, tag=1)
    factor = blocks.coefficient(scale, dtype, tag=2)
    dy2, x2 = blocks.view(dy), blocks.view(x)
    dx = empty_aligned(x.shape, dtype)
    dx2 = blocks.view(dx)
    for _, rows in blocks.ranges:
        dxb = dx2[rows]
        np.multiply(x2[rows], blocks.block(along_x, rows), out=dxb)
        dxb += dy2[rows]
        dxb += blocks.block(constant, rows)
        dxb *= blocks.block(factor, rows)
    return dx


# ---------------------------------------------------------------------------
# a small (N, C) batch, one block: the whole forward and backward in few numpy calls
#
# At (60, 100) an array has 6,000 entries and a numpy call costs more than its arithmetic,
# so these take the formulas of the passes above with as few calls as they allow: sums and
# means as products with a vector of ones or of 1/N (one BLAS call each; np.dot calls BLAS
# with less overhead than np.matmul), the per-channel vectors in x's dtype (no conversions
# between the steps; at most 256 values per sum).
#
# A per-channel vector is first repeated down the rows of a "tile" of k rows (about 64 KiB),
# and the batch seen as N/k stacked copies of the tile's shape: numpy then runs one inner loop
# over k*C values per call instead of one over C values per row of a broadcast row vector, and
# each loop call has a fixed cost (a (256, 1024) float32 operand: 44 us per pass with a row
# vector, 26 us with a 16-row tile).


@functools.lru_cache(maxsize=64)
def tile_rows(n: int, channels: int, itemsize: int) -> int:
    """The rows k of a tile: the most that divide ``n`` and fit in ``_TILE_BYTES`` (at least 1)."""
    fit = max(1, _TILE_BYTES // (channels * itemsize))
    return max(k for k in range(1, min(n, fit) + 1) if n % k == 0)


def by_tile(a: FloatArray, k: int) -> FloatArray:
    """The (N, C) array ``a`` as ``(N/k, k, C)``: a (k, C) tile then broadcasts over axis 0."""
    return a if len(a) == k else a.reshape(-1, k, a.shape[1])


def small_work(x: FloatArray, buffer: FloatArray | None) -> FloatArray:
    """The work array of :func:`small_forward` for the batch ``x``: ``buffer`` if it fits.

    ``(N + k, C)``: ``x - mean`` in the first N rows, then a tile of k rows
    (:func:`tile_rows`) for the factor ``gamma * inv_std``.
    """
    n, channels = x.shape
    shape = (n + tile_rows(n, channels, x.itemsize), channels)
    if buffer is not None and buffer.shape == shape and buffer.dtype == x.dtype:
        return buffer
    return empty_aligned(shape, x.dtype)


def small_forward(
    x: FloatArray,
    work: FloatArray,
    gamma: FloatArray | None,
    beta: FloatArray | None,
    eps: float,
) -> tuple[FloatArray, FloatArray]:
    """``y`` of a one-block (N, C) batch and its statistics; ``work`` (:func:`small_work`).

    The two-pass statistics (the mean, then the squares of ``x - mean``), then
    ``y = (x - mean) * gamma * inv_std + beta``, all in x's dtype. Returns ``y`` and the
    statistics as the rows of one (3, C) array: mean, biased variance, inv_std. The first N
    rows of ``work`` become the centred input ``x - mean`` and the rest the tile of
    ``gamma * inv_std``, both kept for the backward pass (here keeping costs less than
    recomputing).
    """
    dtype = x.dtype
    n = len(x)
    centered, tile = work[:n], work[n:]
    k = len(tile)
    stats = np.empty((3, x.shape[1]), dtype)
    mean, var, inv_std = stats[0], stats[1], stats[2]
    np.dot(means(n, dtype), x, out=mean)
    _check_mean(mean, dtype)
    tile[...] = mean
    np.subtract(by_tile(x, k), tile, out=by_tile(centered, k))
    if x.size < _EINSUM_SIZE:  # the squares, then their mean; see _EINSUM_SIZE
        np.dot(means(n, dtype), np.square(centered, out=scratch(x.shape, dtype)), out=var)
    else:
        np.einsum("ij,ij->j", centered, centered, out=var)
        var /= n
    np.add(var, fill(len(var), eps, dtype), out=inv_std)  # 1 / sqrt(var + eps)
    np.sqrt(inv_std, out=inv_std)
    np.reciprocal(inv_std, out=inv_std)
    # (a product of two vectors and a copy cost less than a product broadcast into the tile)
    tile[...] = inv_std if gamma is None else gamma * inv_std
    y = by_tile(centered, k) * tile
    if beta is not None:
        shift = scratch(tile.shape, dtype)  # (the squares' array when k = N: free again)
        shift[...] = beta
        y += shift
    return y.reshape(x.shape), stats


def small_backward(
    dy: FloatArray, work: FloatArray, inv_std: NDArray[Any]
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(dx, dgamma, dbeta)`` of a one-block (N, C) batch, in x's dtype.

    ``work`` is what :func:`small_forward` wrote. The same formulas as
    :func:`gradient_sums` then :func:`input_gradient`, in x's dtype.
    """
    n = len(dy)
    centered, scale = work[:n], work[n:]  # x - mean; gamma * inv_std in every row
    k = len(scale)
    dtype = centered.dtype
    inv = inv_std.astype(dtype, copy=False)
    unit = ones(n, dtype)
    dbeta = np.dot(unit, dy)  # sum(dy)
    if dy.size < _EINSUM_SIZE:  # sum(dy * centered), see _EINSUM_SIZE
        dgamma = np.dot(unit, np.multiply(dy, centered, out=scratch(dy.shape, dtype)))
    else:
        dgamma = np.einsum("ij,ij->j", dy, centered)
    dgamma *= inv  # sum(dy * x_hat)
    # dx = scale * (dy - centered * inv * dgamma / n - dbeta / n)
    per_value = fill(len(inv), 1 / n, dtype)  # 1/n in every channel
    tile = scratch(scale.shape, dtype)  # (the products' array when k = N: free again)
    tile[...] = dgamma * inv * per_value
    dx = by_tile(centered, k) * tile
    tile[...] = dbeta * per_value
    dx += tile
    np.subtract(by_tile(dy, k), dx, out=dx)
    dx *= scale
    return dx.reshape(dy.shape), dgamma, dbeta
