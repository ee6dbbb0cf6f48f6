r"""Norms of Gaussian random matrices and of activations in a Gaussian linear chain.

The notes' Exercises 2 and 3. For an ``m x n`` matrix ``M`` with i.i.d. :math:`N(0, \sigma^2)`
entries, :math:`\|M\|_F^2 / \sigma^2` is chi-square with :math:`k = mn` degrees of freedom, so

.. math::

    E\|M\|_F = \sigma \, \mu_\chi(k), \qquad
    \mu_\chi(k) = \sqrt{2}\, \frac{\Gamma((k+1)/2)}{\Gamma(k/2)}
    < \sqrt{k} = \sqrt{E\|M\|_F^2}.

The notes' answer :math:`\sqrt{mn}` is the root mean square (:func:`rms_frobenius_norm`), an upper
bound of the mean by Jensen's inequality; :func:`expected_frobenius_norm` is the exact mean.

For a chain :math:`y_i = W_i y_{i-1}`, :math:`y_0 = x`, rotation invariance of the Gaussian gives,
conditionally on :math:`y_{i-1}`, :math:`W_i y_{i-1} \sim N(0, \sigma_i^2 \|y_{i-1}\|^2 I_{m_i})`,
hence :math:`\|y_i\| = \sigma_i \|y_{i-1}\| \chi_{m_i}` with a fresh, independent chi variable
per layer and

.. math::

    E\|y_i\| = \|x\| \prod_{j \le i} \sigma_j \mu_\chi(m_j).

For the notes' network this is 9.9750, 99.501 and 79.39, against their bounds
:math:`\sqrt{1000}`, :math:`100\sqrt{1000}` and :math:`1000\sqrt{1000}`
(:func:`chain_norm_bounds`).

Shapes of a chain are given as a sequence of weight shapes ``[(m_1, n_1), ..., (m_L, n_L)]`` in
the order the weights are applied, with ``n_{i+1} = m_i`` (:data:`SEED_SHAPES` is the notes'
network). Every sampler takes ``rng``: a ``numpy.random.Generator``, an integer seed, or None.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from bnlessons import _validate as _v
from bnlessons._typing import Float64Array
from bnlessons.batchnorm import batchnorm_forward

__all__ = [
    "SEED_SHAPES",
    "chain_expected_output_norms",
    "chain_norm_bounds",
    "chain_rms_output_norms",
    "chi_mean",
    "expected_frobenius_norm",
    "fan_in_sigmas",
    "gaussian_chain_weights",
    "random_unit_vector",
    "rms_frobenius_norm",
    "sample_chain_output_norms",
    "sample_chain_output_norms_full",
    "sample_chain_rms_output_norms",
    "sample_frobenius_norms",
    "sample_spectral_norms",
    "spectral_norm_bound",
    "square_chain_shapes",
]

RngLike = np.random.Generator | int | None
SigmaLike = float | Sequence[float]

#: The notes' network ``y = W3 W2 W1 x``, with W1 100x10, W2 100x100 and W3 1x100.
SEED_SHAPES: tuple[tuple[int, int], ...] = ((100, 10), (100, 100), (1, 100))

# Maximum number of float64 entries a full-matrix sampler draws at once (about 64 MB).
_MAX_BATCH_ENTRIES = 8_000_000


# --------------------------------------------------------------------------- argument checks
def _check_shapes(shapes: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    _v.sequence(shapes, "shapes", "a sequence of (m, n) pairs")
    if len(shapes) == 0:
        raise ValueError(_v.expected("shapes", "at least one (m, n) pair", shapes))
    out: list[tuple[int, int]] = []
    for i, s in enumerate(shapes):
        if not isinstance(s, Sequence) or len(s) != 2:
            raise ValueError(_v.expected(f"shapes[{i}]", "an (m, n) pair", s))
        m = _v.positive_int(s[0], f"shapes[{i}][0] (m of W{i + 1})")
        n = _v.positive_int(s[1], f"shapes[{i}][1] (n of W{i + 1})")
        if out and n != out[-1][0]:
            raise ValueError(
                f"shapes[{i}] (W{i + 1}): expected n == {out[-1][0]} (the rows of W{i}, so "
                f"that the chain composes), got {(m, n)}"
            )
        out.append((m, n))
    return out


def _check_sigmas(sigma: SigmaLike, n_layers: int) -> Float64Array:
    if isinstance(sigma, (int, float, np.integer, np.floating)) and not isinstance(sigma, bool):
        return np.full(n_layers, _v.positive_float(sigma, "sigma"))
    if isinstance(sigma, (str, bytes)) or not isinstance(sigma, (Sequence, np.ndarray)):
        raise TypeError(
            f"sigma: expected a positive float or one per layer, got {type(sigma).__name__}"
        )
    if len(sigma) != n_layers:
        raise ValueError(
            f"sigma: expected a float or one entry per layer ({n_layers}), "
            f"got {len(sigma)} entries"
        )
    return np.array([_v.positive_float(s, f"sigma[{i}]") for i, s in enumerate(sigma)])


def _rng(rng: RngLike) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(
        f"rng: expected a numpy Generator, an int seed or None, got {type(rng).__name__}"
    )


def _check_x_norm(x: ArrayLike | None, n_in: int) -> float:
    if x is None:
        return 1.0
    arr = _v.real_array(x, "x")
    if arr.shape not in ((n_in,), (n_in, 1)):
        raise ValueError(
            f"x: expected shape ({n_in},) or ({n_in}, 1) to match W1, got {arr.shape}"
        )
    return float(np.linalg.norm(arr))


# --------------------------------------------------------------------------- exact moments
# log Gamma(a + 1/2) - log Gamma(a) - log(a)/2 = sum_j c_j / a^j  (Stirling series, a -> inf)
_LOG_RATIO_SERIES = (
    (1, -1.0 / 8.0),
    (3, 1.0 / 192.0),
    (5, -1.0 / 640.0),
    (7, 17.0 / 14336.0),
    (9, -31.0 / 18432.0),
)
_SERIES_FROM_K = 64


def chi_mean(k: int) -> float:
    r"""Mean of the chi distribution with ``k`` degrees of freedom.

    .. math::

        \mu_\chi(k) = E\sqrt{Z_1^2 + \dots + Z_k^2}
        = \sqrt{2}\,\frac{\Gamma\!\left(\frac{k+1}{2}\right)}{\Gamma\!\left(\frac{k}{2}\right)}
        = \sqrt{k}\left(1 - \frac{1}{4k} + \frac{1}{32k^2} + O(k^{-3})\right).

    Special values: :math:`\mu_\chi(1) = \sqrt{2/\pi}`, :math:`\mu_\chi(2) = \sqrt{\pi/2}`, and
    :math:`\mu_\chi(k) \approx \sqrt{k - 1/2}` for large ``k``. Computed in logs: for
    ``k < 64`` as ``lgamma((k+1)/2) - lgamma(k/2)``; beyond, that difference of two numbers of
    size :math:`k \log k` would lose digits (relative error about ``1e-8`` at ``k = 1e8``), so the
    difference itself is evaluated from its Stirling series
    :math:`\tfrac12 \log a - \tfrac{1}{8a} + \tfrac{1}{192a^3} - \tfrac{1}{640a^5} + \dots`,
    :math:`a = k/2`, accurate to rounding for all ``k >= 64``.

    Parameters
    ----------
    k : int
        Degrees of freedom, ``>= 1``.

    Returns
    -------
    float

    Raises
    ------
    TypeError
        If ``k`` is not an int.
    ValueError
        If ``k < 1``.

    Examples
    --------
    >>> round(chi_mean(1), 12) == round((2 / 3.141592653589793) ** 0.5, 12)
    True
    >>> round(chi_mean(100), 4)
    9.975
    """
    k = _v.positive_int(k, "k")
    if k < _SERIES_FROM_K:
        return math.sqrt(2.0) * math.exp(math.lgamma((k + 1) / 2) - math.lgamma(k / 2))
    a = k / 2.0
    log_ratio = sum(c / a**p for p, c in _LOG_RATIO_SERIES)
    return math.sqrt(2.0 * a) * math.exp(log_ratio)


def expected_frobenius_norm(m: int, n: int, sigma: float = 1.0) -> float:
    r"""Exact :math:`E\|M\|_F` for an ``m x n`` matrix with i.i.d. :math:`N(0, \sigma^2)` entries.

    .. math::

        E\|M\|_F = \sigma\,\mu_\chi(mn)
        = \sigma \sqrt{2}\,\frac{\Gamma((mn+1)/2)}{\Gamma(mn/2)}
        < \sigma\sqrt{mn},

    since :math:`\|M\|_F/\sigma` is chi-distributed with :math:`mn` degrees of freedom (see
    :func:`chi_mean`, stable up to :math:`mn = 10^8` and beyond).

    Parameters
    ----------
    m, n : int
        Matrix shape, each ``>= 1``.
    sigma : float, optional
        Standard deviation of the entries, ``> 0``.

    Returns
    -------
    float

    Raises
    ------
    TypeError
        If ``m`` or ``n`` is not an int, or ``sigma`` not a real number.
    ValueError
        If ``m < 1``, ``n < 1`` or ``sigma <= 0``.

    Examples
    --------
    The notes' W1 (100 x 10): the exact mean is just below :math:`\sqrt{1000} = 31.6228`.

    >>> round(expected_frobenius_norm(100, 10), 4)
    31.6149
    """
    m = _v.positive_int(m, "m")
    n = _v.positive_int(n, "n")
    s = _v.positive_float(sigma, "sigma")
    return s * chi_mean(m * n)


def rms_frobenius_norm(m: int, n: int, sigma: float = 1.0) -> float:
    r"""The notes' answer :math:`\sigma\sqrt{mn} = \sqrt{E\|M\|_F^2}`, an upper bound of the mean.

    .. math::

        E\|M\|_F^2 = \sum_{i,j} E[M_{ij}^2] = mn\sigma^2, \qquad
        E\|M\|_F \le \sqrt{E\|M\|_F^2} = \sigma\sqrt{mn} \quad\text{(Jensen)}.

    The parameters and the errors are those of :func:`expected_frobenius_norm`.

    Examples
    --------
    >>> rms_frobenius_norm(100, 100)
    100.0
    >>> round(rms_frobenius_norm(100, 10), 4)
    31.6228
    """
    m = _v.positive_int(m, "m")
    n = _v.positive_int(n, "n")
    s = _v.positive_float(sigma, "sigma")
    return s * math.sqrt(m * n)


def spectral_norm_bound(m: int, n: int, sigma: float = 1.0) -> float:
    r"""Gordon's bound :math:`E\|M\|_2 \le \sigma(\sqrt{m} + \sqrt{n})` on the spectral norm.

    For i.i.d. :math:`N(0, \sigma^2)` entries the largest singular value satisfies
    :math:`E\,s_{\max}(M) \le \sigma(\sqrt{m} + \sqrt{n})` (Gordon's inequality; Davidson and
    Szarek 2001), far below the Frobenius value :math:`\sigma\sqrt{mn}` for large matrices.

    The parameters and the errors are those of :func:`expected_frobenius_norm`.

    Examples
    --------
    >>> spectral_norm_bound(100, 100)
    20.0
    >>> spectral_norm_bound(1, 100)
    11.0
    """
    m = _v.positive_int(m, "m")
    n = _v.positive_int(n, "n")
    s = _v.positive_float(sigma, "sigma")
    return s * (math.sqrt(m) + math.sqrt(n))


def chain_expected_output_norms(
    shapes: Sequence[Sequence[int]] = SEED_SHAPES,
    sigma: SigmaLike = 1.0,
    x_norm: float = 1.0,
) -> Float64Array:
    r"""Exact :math:`E\|y_i\|` for every layer of a Gaussian linear chain and a fixed input.

    With :math:`y_0 = x` and :math:`y_i = W_i y_{i-1}`, :math:`W_i` of shape
    :math:`m_i \times n_i` with i.i.d. :math:`N(0, \sigma_i^2)` entries, rotation invariance gives
    :math:`\|y_i\| = \sigma_i \|y_{i-1}\| \chi_{m_i}` with independent chi factors, so

    .. math::

        E\|y_i\| = \|x\| \prod_{j=1}^{i} \sigma_j \, \mu_\chi(m_j) .

    Only the output sizes :math:`m_j` enter; the input dimensions do not.

    Parameters
    ----------
    shapes : sequence of (int, int)
        Weight shapes ``[(m_1, n_1), ..., (m_L, n_L)]`` in application order; default the notes'
        network :data:`SEED_SHAPES`.
    sigma : float or sequence of float, optional
        Entry standard deviation, one for all layers or one per layer (see :func:`fan_in_sigmas`).
    x_norm : float, optional
        :math:`\|x\|`, ``> 0``; default 1.

    Returns
    -------
    ndarray
        ``[E||y_1||, ..., E||y_L||]``, shape ``(L,)``.

    Raises
    ------
    ValueError
        If the shapes do not compose, a dimension is < 1, or a sigma or ``x_norm`` is <= 0.
    TypeError
        If an argument has the wrong type.

    Examples
    --------
    >>> [float(v) for v in np.round(chain_expected_output_norms(), 3)]
    [9.975, 99.501, 79.391]
    """
    sh = _check_shapes(shapes)
    sig = _check_sigmas(sigma, len(sh))
    xn = _v.positive_float(x_norm, "x_norm")
    factors = np.array([s * chi_mean(m) for (m, _), s in zip(sh, sig, strict=True)])
    return xn * np.cumprod(factors)


def chain_norm_bounds(
    shapes: Sequence[Sequence[int]] = SEED_SHAPES,
    sigma: SigmaLike = 1.0,
    x_norm: float = 1.0,
    kind: Literal["frobenius", "spectral"] = "frobenius",
) -> Float64Array:
    r"""The notes' chain of upper bounds on :math:`E\|y_i\|` (or its spectral-norm version).

    Because :math:`W_i` is independent of :math:`y_{i-1}`,
    :math:`E\|W_i y_{i-1}\| \le E\|W_i\|_2 \, E\|y_{i-1}\|`. The notes then bound
    :math:`E\|W_i\|_2 \le E\|W_i\|_F \le \sigma_i\sqrt{m_i n_i}` (``kind="frobenius"``):

    .. math::

        E\|y_i\| \le \|x\| \prod_{j \le i} \sigma_j \sqrt{m_j n_j},

    which for the notes' network is :math:`\sqrt{1000}, 100\sqrt{1000}, 1000\sqrt{1000}`. With
    ``kind="spectral"`` the factor is Gordon's :math:`\sigma_j(\sqrt{m_j} + \sqrt{n_j})`
    (:func:`spectral_norm_bound`), a much tighter but still valid bound.

    Parameters
    ----------
    shapes : sequence of (int, int)
        Weight shapes in application order; default :data:`SEED_SHAPES`.
    sigma : float or sequence of float, optional
        Entry standard deviation(s).
    x_norm : float, optional
        :math:`\|x\|`, ``> 0``.
    kind : {"frobenius", "spectral"}, optional
        Which per-layer bound to multiply.

    Returns
    -------
    ndarray
        The bounds, shape ``(L,)``.

    Raises
    ------
    ValueError
        If the shapes do not compose, a dimension is < 1, a sigma or ``x_norm`` is <= 0, or
        ``kind`` is unknown.
    TypeError
        If an argument has the wrong type.

    Examples
    --------
    >>> b = chain_norm_bounds()
    >>> [float(v) for v in np.round(b / np.sqrt(1000), 9)]
    [1.0, 100.0, 1000.0]
    >>> [float(v) for v in np.round(chain_norm_bounds(kind="spectral"), 4)]
    [13.1623, 263.2456, 2895.7011]
    """
    sh = _check_shapes(shapes)
    sig = _check_sigmas(sigma, len(sh))
    xn = _v.positive_float(x_norm, "x_norm")
    if kind == "frobenius":
        factors = np.array(
            [rms_frobenius_norm(m, n, s) for (m, n), s in zip(sh, sig, strict=True)]
        )
    elif kind == "spectral":
        factors = np.array(
            [spectral_norm_bound(m, n, s) for (m, n), s in zip(sh, sig, strict=True)]
        )
    else:
        raise ValueError(_v.expected("kind", "'frobenius' or 'spectral'", kind))
    return xn * np.cumprod(factors)


def chain_rms_output_norms(
    shapes: Sequence[Sequence[int]] = SEED_SHAPES,
    sigma: SigmaLike = 1.0,
    x_norm: float = 1.0,
    *,
    normalized: bool = False,
) -> Float64Array:
    r"""Exact root mean square :math:`\sqrt{E\|y_i\|^2}` of every layer of a Gaussian chain.

    Without normalization, :math:`E\|W u\|^2 = \sigma^2 m \|u\|^2` for a fixed :math:`u` and an
    :math:`m \times n` matrix :math:`W` with i.i.d. :math:`N(0, \sigma^2)` entries, so layer by
    layer

    .. math::

        \sqrt{E\|y_i\|^2} = \|x\| \prod_{j \le i} \sigma_j \sqrt{m_j}
        \qquad (\text{the mean } E\|y_i\| \text{ is in } :func:`chain_expected_output_norms`).

    With ``normalized=True`` every layer but the last is followed by a normalization of each unit
    over a batch (mean 0, variance 1, as in :func:`sample_chain_rms_output_norms`), and the
    square is averaged over the batch as well. The batch mean of :math:`\|y_{i,b}\|^2` is then the
    sum of the :math:`m_i` unit variances, :math:`m_i`, whatever the weights; the last layer
    :math:`y_L = W_L y_{L-1}` is not normalized, and averaged over :math:`W_L` its batch mean
    square is :math:`\sigma_L^2 m_L \operatorname{tr} C = \sigma_L^2 m_L m_{L-1}`, with
    :math:`C` the batch second-moment matrix of :math:`y_{L-1}`, whose trace is :math:`m_{L-1}`:

    .. math::

        \sqrt{E\|y_i\|^2} = \sqrt{m_i} \quad (i < L), \qquad
        \sqrt{E\|y_L\|^2} = \sigma_L \sqrt{m_L\, m_{L-1}} .

    These are the values as :math:`\epsilon \to 0`: a normalization with
    :math:`\epsilon > 0` gives each unit the variance
    :math:`\sigma^2_{\mathcal B}/(\sigma^2_{\mathcal B} + \epsilon)`, a little less. For
    ``L = 1`` nothing is normalized and both cases agree.

    Parameters
    ----------
    shapes : sequence of (int, int)
        Weight shapes in application order; default the notes' network :data:`SEED_SHAPES`.
    sigma : float or sequence of float, optional
        Entry standard deviation(s); with ``normalized=True`` only the last layer's matters.
    x_norm : float, optional
        :math:`\|x\|`, ``> 0``; default 1. With ``normalized=True`` only ``L = 1`` depends on it.
    normalized : bool, optional
        Whether every layer but the last is normalized over the batch.

    Returns
    -------
    ndarray
        The root mean squares, shape ``(L,)``.

    Raises
    ------
    ValueError
        If the shapes do not compose, a dimension is < 1, or a sigma or ``x_norm`` is <= 0.
    TypeError
        If an argument has the wrong type.

    Examples
    --------
    The notes' network with :math:`N(0, \sigma^2)` hidden weights: without normalization the
    sizes scale with :math:`\sigma` per layer, with it they do not.

    >>> [float(v) for v in chain_rms_output_norms(sigma=[0.1, 0.1, 1.0])]
    [1.0, 1.0, 1.0]
    >>> [float(v) for v in chain_rms_output_norms(sigma=[0.1, 0.1, 1.0], normalized=True)]
    [10.0, 10.0, 10.0]
    """
    sh = _check_shapes(shapes)
    sig = _check_sigmas(sigma, len(sh))
    xn = _v.positive_float(x_norm, "x_norm")
    _v.boolean(normalized, "normalized")
    factors = np.array([s * math.sqrt(m) for (m, _), s in zip(sh, sig, strict=True)])
    if not normalized or len(sh) == 1:
        plain: Float64Array = xn * np.cumprod(factors)
        return plain
    hidden = [math.sqrt(m) for m, _ in sh[:-1]]
    out: Float64Array = np.array([*hidden, factors[-1] * hidden[-1]])
    return out


# --------------------------------------------------------------------------- chain helpers
def fan_in_sigmas(shapes: Sequence[Sequence[int]]) -> list[float]:
    r"""Per-layer standard deviations :math:`\sigma_i = 1/\sqrt{n_i}` (scaling by fan-in).

    With this scaling :math:`E\|W_i y\|^2 = (m_i / n_i)\|y\|^2`, so a square chain keeps
    :math:`E\|y_i\|^2 = \|x\|^2` at every depth instead of multiplying it by :math:`m_i` per
    layer (LeCun initialization). Pass the result as ``sigma`` to the functions of this module.

    Parameters
    ----------
    shapes : sequence of (int, int)
        Weight shapes in application order.

    Returns
    -------
    list of float

    Raises
    ------
    ValueError
        If the shapes do not compose or a dimension is < 1.

    Examples
    --------
    >>> fan_in_sigmas([(100, 4), (1, 100)])
    [0.5, 0.1]
    """
    return [1.0 / math.sqrt(n) for _, n in _check_shapes(shapes)]


def square_chain_shapes(width: int, depth: int) -> list[tuple[int, int]]:
    """Shapes of a chain of ``depth`` square ``width x width`` layers.

    Parameters
    ----------
    width, depth : int
        Each ``>= 1``.

    Returns
    -------
    list of (int, int)

    Raises
    ------
    ValueError
        If ``width`` or ``depth`` is < 1.
    TypeError
        If either is not an int.

    Examples
    --------
    >>> square_chain_shapes(3, 2)
    [(3, 3), (3, 3)]
    """
    w = _v.positive_int(width, "width")
    d = _v.positive_int(depth, "depth")
    return [(w, w)] * d


def gaussian_chain_weights(
    shapes: Sequence[Sequence[int]] = SEED_SHAPES,
    sigma: SigmaLike = 1.0,
    rng: RngLike = None,
) -> list[Float64Array]:
    r"""Draw one set of weights ``[W1, ..., WL]`` with i.i.d. :math:`N(0, \sigma_i^2)` entries.

    Parameters
    ----------
    shapes : sequence of (int, int)
        Weight shapes in application order; default :data:`SEED_SHAPES`.
    sigma : float or sequence of float, optional
        Entry standard deviation(s).
    rng : numpy.random.Generator, int or None, optional
        Random generator or seed.

    Returns
    -------
    list of ndarray
        Matrices of the given shapes, ready for :func:`bnlessons.gradients.chain_gradients`.

    Raises
    ------
    ValueError
        If the shapes do not compose, a dimension is < 1 or a sigma is <= 0.
    TypeError
        If an argument has the wrong type.

    Examples
    --------
    >>> [w.shape for w in gaussian_chain_weights(rng=0)]
    [(100, 10), (100, 100), (1, 100)]
    """
    sh = _check_shapes(shapes)
    sig = _check_sigmas(sigma, len(sh))
    g = _rng(rng)
    return [s * g.standard_normal((m, n)) for (m, n), s in zip(sh, sig, strict=True)]


def random_unit_vector(n: int, rng: RngLike = None) -> Float64Array:
    r"""A vector drawn uniformly from the unit sphere in :math:`\mathbb{R}^n`: ``z / ||z||``.

    With :math:`z \sim N(0, I_n)`, :math:`z / \|z\|` is uniform on the sphere by rotation
    invariance; use it as the notes' input with :math:`\|x\| = 1`.

    Parameters
    ----------
    n : int
        Dimension, ``>= 1``.
    rng : numpy.random.Generator, int or None, optional
        Random generator or seed.

    Returns
    -------
    ndarray
        Shape ``(n,)``, norm 1 (to rounding).

    Raises
    ------
    ValueError
        If ``n < 1``.
    TypeError
        If ``n`` is not an int or ``rng`` has the wrong type.

    Examples
    --------
    >>> x = random_unit_vector(10, rng=0)
    >>> x.shape, round(float(np.linalg.norm(x)), 12)
    ((10,), 1.0)
    """
    k = _v.positive_int(n, "n")
    g = _rng(rng)
    while True:  # z = 0 has probability 0, but never divide by it
        z = g.standard_normal(k)
        nz = float(np.linalg.norm(z))
        if nz > 0.0:
            return z / nz


# --------------------------------------------------------------------------- Monte Carlo
def sample_chain_output_norms(
    shapes: Sequence[Sequence[int]] = SEED_SHAPES,
    n_samples: int = 100_000,
    *,
    sigma: SigmaLike = 1.0,
    x: ArrayLike | None = None,
    rng: RngLike = None,
) -> Float64Array:
    r"""Sample :math:`(\|y_1\|, \dots, \|y_L\|)` of a Gaussian linear chain, vectorized over draws.

    Drawing the full matrices costs :math:`\sum_i m_i n_i` normals per draw (about 11,000 for the
    notes' network, so :math:`10^9` for :math:`10^5` draws). Instead this uses an identity that
    is exact in distribution: the law of :math:`W` with i.i.d. :math:`N(0, \sigma^2)` entries is
    invariant under rotations :math:`W \mapsto W Q`, so for any fixed (or independent) vector
    :math:`y`,

    .. math::

        W y \sim N(0, \sigma^2 \|y\|^2 I_m), \qquad
        \|W y\| = \sigma \|y\| \, \chi_m, \quad \chi_m^2 \sim \chi^2(m),

    and the chi factor is independent of :math:`y`. So the norms of the whole chain are, jointly,
    :math:`\|y_i\| = \|x\| \prod_{j \le i} \sigma_j \sqrt{C_j}` with independent
    :math:`C_j \sim \chi^2(m_j)`: ``L`` chi-square draws per sample, no Python loop over samples.
    :func:`sample_chain_output_norms_full` draws the actual matrices and agrees with it
    (cross-checked in the tests).

    Parameters
    ----------
    shapes : sequence of (int, int)
        Weight shapes in application order; default :data:`SEED_SHAPES`.
    n_samples : int, optional
        Number of independent draws of the network, ``>= 1``.
    sigma : float or sequence of float, optional
        Entry standard deviation(s).
    x : array_like or None, optional
        Input of shape ``(n_1,)`` or ``(n_1, 1)``; only its norm matters. None means a unit
        vector.
    rng : numpy.random.Generator, int or None, optional
        Random generator or seed.

    Returns
    -------
    ndarray
        Shape ``(n_samples, L)``; column ``i`` holds samples of :math:`\|y_{i+1}\|` (the last is
        :math:`|y|` for a scalar output).

    Raises
    ------
    ValueError
        If the shapes do not compose, a dimension or ``n_samples`` is < 1, a sigma is <= 0, or
        ``x`` does not match ``W1``.
    TypeError
        If an argument has the wrong type.

    Examples
    --------
    >>> s = sample_chain_output_norms(n_samples=20_000, rng=0)
    >>> s.shape
    (20000, 3)
    >>> bool(np.all(np.abs(s.mean(axis=0) / chain_expected_output_norms() - 1) < 0.05))
    True
    """
    sh = _check_shapes(shapes)
    n = _v.positive_int(n_samples, "n_samples")
    sig = _check_sigmas(sigma, len(sh))
    xn = _check_x_norm(x, sh[0][1])
    g = _rng(rng)
    out = np.empty((n, len(sh)))
    for j, (m, _) in enumerate(sh):  # loop over layers, not over samples
        out[:, j] = g.chisquare(m, size=n)
    np.sqrt(out, out=out)
    out *= sig
    np.cumprod(out, axis=1, out=out)
    out *= xn
    return out


def sample_chain_output_norms_full(
    shapes: Sequence[Sequence[int]] = SEED_SHAPES,
    n_samples: int = 1000,
    *,
    sigma: SigmaLike = 1.0,
    x: ArrayLike | None = None,
    rng: RngLike = None,
    batch_size: int | None = None,
) -> Float64Array:
    r"""Sample chain output norms by drawing the actual weight matrices (batched, slow but direct).

    For each draw, :math:`W_i \in \mathbb{R}^{m_i \times n_i}` with i.i.d. :math:`N(0, \sigma_i^2)`
    entries and :math:`y_i = W_i y_{i-1}`, :math:`y_0 = x`; the draws are processed in batches as
    stacks of matrices (``matmul`` over a leading axis). This is the first-principles reference
    for :func:`sample_chain_output_norms`.

    Parameters
    ----------
    shapes : sequence of (int, int)
        Weight shapes in application order; default :data:`SEED_SHAPES`.
    n_samples : int, optional
        Number of draws, ``>= 1``.
    sigma : float or sequence of float, optional
        Entry standard deviation(s).
    x : array_like or None, optional
        Input of shape ``(n_1,)`` or ``(n_1, 1)``; None means the unit vector :math:`e_1`.
    rng : numpy.random.Generator, int or None, optional
        Random generator or seed.
    batch_size : int or None, optional
        Draws per batch; None picks one that keeps each batch near 64 MB.

    Returns
    -------
    ndarray
        Shape ``(n_samples, L)``, as :func:`sample_chain_output_norms`.

    Raises
    ------
    ValueError
        If the shapes do not compose, a dimension, ``n_samples`` or ``batch_size`` is < 1, a
        sigma is <= 0, or ``x`` does not match ``W1``.
    TypeError
        If an argument has the wrong type.

    Examples
    --------
    >>> s = sample_chain_output_norms_full([(3, 2), (1, 3)], 5, rng=0)
    >>> s.shape
    (5, 2)
    """
    sh = _check_shapes(shapes)
    n = _v.positive_int(n_samples, "n_samples")
    sig = _check_sigmas(sigma, len(sh))
    n_in = sh[0][1]
    _check_x_norm(x, n_in)
    if x is None:
        x_vec = np.zeros(n_in)
        x_vec[0] = 1.0
    else:
        x_vec = np.asarray(x, dtype=np.float64).reshape(n_in)
    per_draw = max(m * k for m, k in sh)
    if batch_size is None:
        bs = max(1, _MAX_BATCH_ENTRIES // per_draw)
    else:
        bs = _v.positive_int(batch_size, "batch_size")
    g = _rng(rng)
    out = np.empty((n, len(sh)))
    for start in range(0, n, bs):  # loop over batches, each a stack of matrices
        b = min(bs, n - start)
        y = np.broadcast_to(x_vec[:, None], (b, n_in, 1))
        for j, ((m, k), s) in enumerate(zip(sh, sig, strict=True)):
            w = g.standard_normal((b, m, k))
            w *= s
            y = w @ y
            out[start : start + b, j] = np.linalg.norm(y[:, :, 0], axis=1)
    return out


def _sample_matrix_norms(
    m: int,
    n: int,
    n_samples: int,
    sigma: float,
    rng: RngLike,
    batch_size: int | None,
    norm_of_stack: Callable[[Float64Array], Float64Array],
) -> Float64Array:
    """Draw ``n_samples`` standard-normal ``m x n`` matrices in stacks of ``batch_size``.

    ``norm_of_stack`` maps a ``(b, m, n)`` stack to its ``b`` norms; the result is scaled by
    ``sigma`` (every norm is homogeneous of degree one).
    """
    m = _v.positive_int(m, "m")
    n = _v.positive_int(n, "n")
    ns = _v.positive_int(n_samples, "n_samples")
    s = _v.positive_float(sigma, "sigma")
    if batch_size is None:
        bs = max(1, _MAX_BATCH_ENTRIES // (m * n))
    else:
        bs = _v.positive_int(batch_size, "batch_size")
    g = _rng(rng)
    out = np.empty(ns)
    for start in range(0, ns, bs):
        b = min(bs, ns - start)
        out[start : start + b] = norm_of_stack(g.standard_normal((b, m, n)))
    out *= s
    return out


def _frobenius_of_stack(w: Float64Array) -> Float64Array:
    flat = w.reshape(len(w), -1)
    norms: Float64Array = np.sqrt(np.einsum("ij,ij->i", flat, flat))
    return norms


def _spectral_of_stack(w: Float64Array) -> Float64Array:
    m, n = w.shape[1:]
    wt = np.swapaxes(w, 1, 2)
    gram = wt @ w if n <= m else w @ wt  # the smaller of W^T W and W W^T
    lam_max = np.linalg.eigvalsh(gram)[:, -1]  # ascending order
    norms: Float64Array = np.sqrt(np.maximum(lam_max, 0.0))
    return norms


def sample_frobenius_norms(
    m: int,
    n: int,
    n_samples: int,
    *,
    sigma: float = 1.0,
    rng: RngLike = None,
    batch_size: int | None = None,
) -> Float64Array:
    r"""Monte Carlo samples of :math:`\|M\|_F` for ``m x n`` matrices with :math:`N(0, \sigma^2)`.

    Draws the full matrices (in batches, as stacks) and computes
    :math:`\sqrt{\sum_{ij} M_{ij}^2}` for each; nothing about the chi distribution is assumed,
    so the samples check :func:`expected_frobenius_norm` from first principles.

    Parameters
    ----------
    m, n : int
        Matrix shape, each ``>= 1``.
    n_samples : int
        Number of matrices, ``>= 1``.
    sigma : float, optional
        Entry standard deviation, ``> 0``.
    rng : numpy.random.Generator, int or None, optional
        Random generator or seed.
    batch_size : int or None, optional
        Matrices per batch; None keeps each batch near 64 MB.

    Returns
    -------
    ndarray
        Shape ``(n_samples,)``.

    Raises
    ------
    ValueError
        If ``m``, ``n``, ``n_samples`` or ``batch_size`` is < 1 or ``sigma <= 0``.
    TypeError
        If an argument has the wrong type.

    Examples
    --------
    >>> s = sample_frobenius_norms(100, 10, 2000, rng=0)
    >>> bool(abs(s.mean() - expected_frobenius_norm(100, 10)) < 0.1)
    True
    """
    return _sample_matrix_norms(m, n, n_samples, sigma, rng, batch_size, _frobenius_of_stack)


def sample_spectral_norms(
    m: int,
    n: int,
    n_samples: int,
    *,
    sigma: float = 1.0,
    rng: RngLike = None,
    batch_size: int | None = None,
) -> Float64Array:
    r"""Monte Carlo samples of the spectral norm :math:`\|M\|_2 = s_{\max}(M)`.

    ``M`` is ``m x n`` with i.i.d. :math:`N(0, \sigma^2)` entries; batches of matrices are drawn
    as stacks. The largest singular value is
    :math:`s_{\max}(M) = \sqrt{\lambda_{\max}(M^T M)}`, computed with ``np.linalg.eigvalsh`` on
    the smaller Gram matrix (:math:`M^T M` or :math:`M M^T`); it agrees with
    ``np.linalg.svd(M, compute_uv=False)[0]`` to rounding (the Gram matrix only squares the
    condition of the *small* singular values). Compare with :func:`spectral_norm_bound`
    (:math:`E\|M\|_2 \le \sigma(\sqrt m + \sqrt n)`) and with :math:`\|M\|_2 \le \|M\|_F`.

    The parameters, the result and the errors are those of :func:`sample_frobenius_norms`.

    Examples
    --------
    >>> s = sample_spectral_norms(30, 30, 200, rng=0)
    >>> bool(s.mean() < spectral_norm_bound(30, 30))
    True
    """
    return _sample_matrix_norms(m, n, n_samples, sigma, rng, batch_size, _spectral_of_stack)


def sample_chain_rms_output_norms(
    shapes: Sequence[Sequence[int]] = SEED_SHAPES,
    n_networks: int = 200,
    *,
    sigma: SigmaLike = 1.0,
    batch: int = 256,
    normalize: bool = False,
    eps: float = 1e-5,
    rng: RngLike = None,
) -> Float64Array:
    r"""Monte Carlo root mean square of :math:`\|y_i\|` over networks and batches of unit inputs.

    For each of ``n_networks`` networks it draws the weights
    (:func:`gaussian_chain_weights`), then a batch of ``batch`` inputs, each a column
    :math:`z / \|z\|` with :math:`z \sim N(0, I)`, and runs the chain; with ``normalize=True``
    every layer but the last is followed by a batch normalization without scale and shift
    (:func:`bnlessons.batchnorm.batchnorm_forward` over the batch, with ``eps``):

    .. math::

        y_{i} = \mathrm{BN}(W_i y_{i-1}) \quad (i < L), \qquad y_L = W_L y_{L-1}, \qquad
        \widehat{\mathrm{RMS}}_i = \Big(\frac{1}{N B} \sum_{\text{networks}} \sum_{b=1}^{B}
        \|y_{i,b}\|^2\Big)^{1/2} .

    The square of the result is an unbiased estimate of :math:`E\|y_i\|^2`, whose exact value is
    :func:`chain_rms_output_norms` (for ``normalize=True`` in the limit
    :math:`\epsilon \to 0`). Random numbers are drawn network by network, weights first.

    Parameters
    ----------
    shapes : sequence of (int, int)
        Weight shapes in application order; default the notes' network :data:`SEED_SHAPES`.
    n_networks : int, optional
        Number of networks drawn, ``>= 1``.
    sigma : float or sequence of float, optional
        Entry standard deviation(s).
    batch : int, optional
        Inputs per network, ``>= 2`` (a normalization needs a batch).
    normalize : bool, optional
        Whether every layer but the last is normalized over the batch.
    eps : float, optional
        The normalizations' :math:`\epsilon`, ``> 0``.
    rng : numpy.random.Generator, int or None, optional
        Random generator or seed.

    Returns
    -------
    ndarray
        Shape ``(L,)``, the root-mean-square sizes of :math:`y_1, \dots, y_L`.

    Raises
    ------
    ValueError
        If the shapes do not compose, a dimension or ``n_networks`` is < 1, ``batch`` < 2, or a
        sigma or ``eps`` is <= 0.
    TypeError
        If an argument has the wrong type.

    Examples
    --------
    A normalized hidden layer of width 100 has size :math:`\sqrt{100} = 10` whatever the
    weights (up to :math:`\epsilon`):

    >>> sizes = sample_chain_rms_output_norms(n_networks=5, sigma=[3.0, 3.0, 1.0],
    ...                                       normalize=True, rng=0)
    >>> [round(float(v), 4) for v in sizes[:2]]
    [10.0, 10.0]
    """
    sh = _check_shapes(shapes)
    sig = _check_sigmas(sigma, len(sh))
    n_net = _v.positive_int(n_networks, "n_networks")
    b = _v.integer(batch, "batch", minimum=2)
    _v.boolean(normalize, "normalize")
    e = _v.positive_float(eps, "eps")
    g = _rng(rng)
    squares = np.zeros(len(sh))
    for _ in range(n_net):
        ws = gaussian_chain_weights(sh, sig.tolist(), g)
        a = g.standard_normal((sh[0][1], b))
        a /= np.linalg.norm(a, axis=0)
        for i, w in enumerate(ws):
            a = w @ a
            if normalize and i < len(ws) - 1:
                normed, _ = batchnorm_forward(a.T, None, None, eps=e)
                a = np.asarray(normed.T, dtype=np.float64)
            squares[i] += np.mean(np.sum(a**2, axis=0))
    out: Float64Array = np.sqrt(squares / n_net)
    return out
