"""Claims: the checked statements of a lesson, recorded where the page and the reader find them.

A lesson's prose states results ("the relative error is below 1e-6"). Each such sentence is
backed by one call that computes nothing new: it takes the value the sentence shows, checks
the statement against it and records both::

    from bnlessons.claims import claim

    claim("rel_err", rel_err, "the gradient agrees with finite differences", below=1e-6,
          fmt=".1e")

and the prose shows the value with ``{claim}`rel_err```. If the check fails, :func:`claim`
raises :class:`ClaimError`, which names the claim, the statement and the values, and the build
stops. A check is one of ``below=``, ``above=``, ``between=(lo, hi)``, ``near=ref`` (with
``rtol=`` and/or ``atol=``), or, for anything else, ``holds=<bool>`` with the ``values=`` it
was computed from.

Where the record goes depends on who runs the lesson:

* **The site build** (the environment variable ``BNLESSONS_SITE`` is set, as ``conf.py``
  does): the value is glued, in the format of myst-nb's ``glue`` (a ``display_data`` output
  whose metadata names it), with the claim in the output's metadata; the page marks the value
  and shows the check, and the Checks page lists every claim.
* **Anyone else** (plain Jupyter, a script): the check prints one line, ``✓ id: statement
  (the values)``, with the claim in the output's metadata, so a reader who runs the lesson's
  notebook re-checks every claim.

:func:`glue` records a value that is not a claim (a parameter, a figure, a table) the same
way; outside the build it shows figures and rich objects and keeps numbers quiet, since the
reader's notebook already prints them in its text.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["Claim", "ClaimError", "claim", "glue", "to_python"]

#: Set by the site build (``conf.py``): record values for the pages instead of printing checks.
SITE_ENV = "BNLESSONS_SITE"
#: myst-nb's prefix for a glued value's MIME types (kept out of the visible outputs).
GLUE_PREFIX = "application/papermill.record/"
CHECK = "✓"


class ClaimError(AssertionError):
    """A claim whose check does not hold: the lesson's sentence is no longer true."""


@dataclass(frozen=True)
class Claim:
    """One checked statement: the value a sentence shows and the check behind it.

    Attributes
    ----------
    id : str
        Its name, unique in the lesson (the page's ``{claim}`id``` shows it).
    text : str
        The value as the page prints it (``format(value, fmt)``; ``"figure"`` or ``"table"``
        for a value that is not a number or a string).
    statement : str
        What is checked, in words.
    check : str
        The check with its numbers, for example ``"3.1e-09 < 1e-06"``.
    holds : bool
        Whether the check holds (a recorded claim always does; see :class:`ClaimError`).
    values : dict
        The values the check used, formatted, by name.
    tolerance : str
        The bound or tolerance of the check, formatted (empty for ``holds=``).
    """

    id: str
    text: str
    statement: str
    check: str
    holds: bool
    values: dict[str, str] = field(default_factory=dict)
    tolerance: str = ""

    def _ipython_display_(self) -> None:
        """Nothing: a claim shows itself once, when it is checked (a cell ending in a
        ``claim(...)`` call would otherwise print the record again)."""

    def line(self) -> str:
        """The one-line report printed outside the site build."""
        mark = CHECK if self.holds else "✗"
        return f"{mark} {self.id}: {self.statement} ({self.check})"


def to_python(value: Any) -> Any:
    """NumPy scalars (and 0-d arrays) as the Python ``bool``, ``int``, ``float`` or ``str``.

    >>> to_python(np.float32(0.5)), to_python(np.int64(3)), to_python(np.array(True))
    (0.5, 3, True)
    """
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _show(value: Any, fmt: str = "") -> str:
    """A value as text: ``format(value, fmt)``; numbers without a format to 4 significant
    digits, arrays shortened the way numpy prints them."""
    value = to_python(value)
    if isinstance(value, bool | str):
        return format(str(value), fmt) if fmt else str(value)
    if isinstance(value, numbers.Integral):
        return format(int(value), fmt or "d")
    if isinstance(value, numbers.Real):
        return format(float(value), fmt or ".4g")
    if isinstance(value, np.ndarray | list | tuple):
        with np.printoptions(precision=4, threshold=12, edgeitems=3):
            return np.array2string(np.asarray(value), separator=", ")
    kind = type(value).__name__
    return "figure" if kind == "Figure" else "table" if "Markdown" in kind else kind


def _show_like(bound: float, fmt: str) -> str:
    """A bound in the value's format where that format takes a float (``%``, ``.3f``)."""
    try:
        return format(bound, fmt) if fmt else _show(bound)
    except ValueError:
        return _show(bound)


def _number(name: str, value: Any) -> float:
    value = to_python(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}: {value!r}")
    return float(value)


def _evaluate(value: Any, fmt: str, checks: dict[str, Any]) -> tuple[bool, str, str]:
    """(holds, check with numbers, tolerance) of the one check given."""
    given = {k: v for k, v in checks.items() if v is not None}
    if set(given) - {"rtol", "atol"} == {"near"}:
        pass
    elif len(given) != 1 or "rtol" in given or "atol" in given:
        raise TypeError(
            "claim() takes exactly one check: below=, above=, between=(lo, hi), near= (with "
            f"rtol= and/or atol=) or holds=; got {sorted(given) or 'none'}"
        )
    shown = _show(value, fmt)
    if "holds" in given:
        holds = to_python(given["holds"])
        if not isinstance(holds, bool):
            raise TypeError(f"holds must be a bool, got {type(holds).__name__}: {holds!r}")
        return holds, "holds" if holds else "does not hold", ""
    x = _number("value", value)
    if "below" in given:
        bound = _number("below", given["below"])
        return x < bound, f"{shown} < {_show_like(bound, fmt)}", _show_like(bound, fmt)
    if "above" in given:
        bound = _number("above", given["above"])
        return x > bound, f"{shown} > {_show_like(bound, fmt)}", _show_like(bound, fmt)
    if "between" in given:
        try:
            lo, hi = (_number("between", b) for b in given["between"])
        except (TypeError, ValueError) as exc:
            raise TypeError(f"between must be a pair (lo, hi), got {given['between']!r}") from exc
        lo_text, hi_text = _show_like(lo, fmt), _show_like(hi, fmt)
        return lo < x < hi, f"{lo_text} < {shown} < {hi_text}", f"({lo_text}, {hi_text})"
    ref = _number("near", given["near"])
    rtol = _number("rtol", given.get("rtol", 0.0))
    atol = _number("atol", given.get("atol", 0.0))
    if rtol < 0 or atol < 0 or rtol == atol == 0:
        raise ValueError(f"near= needs rtol > 0 or atol > 0, got rtol={rtol}, atol={atol}")
    tol = atol + rtol * abs(ref)
    parts = [f"rtol {_show(rtol)}"] * (rtol > 0) + [f"atol {_show(atol)}"] * (atol > 0)
    tolerance = ", ".join(parts)
    holds = math.isfinite(x) and abs(x - ref) <= tol
    return holds, f"|{shown} − {_show_like(ref, fmt)}| ≤ {_show(tol)}", tolerance


def claim(
    id: str,
    value: Any,
    statement: str,
    *,
    below: float | None = None,
    above: float | None = None,
    between: tuple[float, float] | None = None,
    near: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    holds: bool | np.bool_ | None = None,
    values: Mapping[str, Any] | None = None,
    fmt: str = "",
) -> Claim:
    """Check a statement about ``value``, record it and return the :class:`Claim`.

    Parameters
    ----------
    id : str
        The claim's name, unique in the lesson: letters, digits and ``_``.
    value : object
        What the sentence shows: a number or a string (NumPy scalars are converted), or a
        figure or table that the check is about.
    statement : str
        The check in words, as a reader would say it.
    below, above, between, near, rtol, atol, holds
        The check, exactly one of: ``value < below``, ``value > above``,
        ``lo < value < hi``, ``|value - near| <= atol + rtol * |near|``, or ``holds``
        (a bool computed by the caller, with ``values`` saying from what).
    values : mapping, optional
        Named values the check used, shown with it (arrays shortened).
    fmt : str, optional
        The format spec of the value on the page, as in ``format(value, fmt)``.

    Raises
    ------
    ClaimError
        If the check does not hold: names the claim, the statement and the values.
    TypeError, ValueError
        If the arguments do not make one check.

    Examples
    --------
    >>> c = claim("err", 3.1e-9, "agrees with finite differences", below=1e-6, fmt=".1e")
    ✓ err: agrees with finite differences (3.1e-09 < 1.0e-06)
    >>> c.text, c.tolerance
    ('3.1e-09', '1.0e-06')
    >>> claim("ratio", 7.0, "grows less than fivefold", below=5)
    Traceback (most recent call last):
    ...
    bnlessons.claims.ClaimError: claim 'ratio' does not hold: grows less than fivefold (7 < 5)
    """
    if not isinstance(id, str) or not id.replace("_", "").isalnum():
        raise ValueError(f"id must be a name of letters, digits and '_', got {id!r}")
    if not isinstance(statement, str) or not statement.strip():
        raise ValueError(f"statement must be a non-empty string, got {statement!r}")
    value = to_python(value)
    ok, check, tolerance = _evaluate(
        value,
        fmt,
        dict(
            below=below, above=above, between=between, near=near, rtol=rtol, atol=atol, holds=holds
        ),
    )
    shown_values = {str(k): _show(v) for k, v in (values or {}).items()}
    if shown_values:
        check += "; " + ", ".join(f"{k} = {v}" for k, v in shown_values.items())
    result = Claim(id, _show(value, fmt), statement, check, ok, shown_values, tolerance)
    if not ok:
        raise ClaimError(f"claim {id!r} does not hold: {statement} ({check})")
    _emit(id, value, result)
    return result


def glue(name: str, value: Any, display: bool = False) -> None:
    """Record a value that is not a claim (a parameter, a figure, a table) for the page.

    Same call as myst-nb's ``glue``; ``display=True`` also shows it in the cell's output.
    Outside the site build numbers stay quiet (the reader's notebook prints them in its
    text) and figures, tables and other rich values are shown.
    """
    value = to_python(value)
    if os.environ.get(SITE_ENV):
        _display_glued(name, value, display, {})
    elif display or not isinstance(value, numbers.Number | str):
        _ipython_display(value)


def _emit(id: str, value: Any, result: Claim) -> None:
    record = {"claim": asdict(result)}
    if os.environ.get(SITE_ENV):
        _display_glued(id, value, False, record)
        return
    shell = _shell()
    if shell is None:
        print(result.line())
        return
    shell.display_pub.publish({"text/plain": result.line()}, metadata={"bnlessons": record})


def _display_glued(name: str, value: Any, display: bool, extra: dict[str, Any]) -> None:
    """myst-nb's glue format: the value's MIME bundle, its name in ``scrapbook`` metadata."""
    from IPython.core.formatters import format_display_data
    from IPython.display import display as ipy_display

    bundle, metadata = format_display_data(value)  # type: ignore[no-untyped-call]
    prefix = "" if display else GLUE_PREFIX
    metadata = {**metadata, "scrapbook": {"name": name, "mime_prefix": prefix}}
    if extra:
        metadata["bnlessons"] = extra
    ipy_display(  # type: ignore[no-untyped-call]
        {prefix + k: v for k, v in bundle.items()}, raw=True, metadata=metadata
    )


def _shell() -> Any:
    """The running IPython shell (a Jupyter kernel), or None in plain Python."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def _ipython_display(value: Any) -> None:
    if _shell() is None:
        print(_show(value))
        return
    from IPython.display import display

    display(value)  # type: ignore[no-untyped-call]
