r"""Tables for the lessons, built from arrays: MyST/Markdown pipe tables with a caption.

A lesson never types a computed number, and that includes the numbers in its tables. A table
is therefore built from the arrays a cell has just computed, column by column, each column with
its own format, and glued into the page as Markdown::

    from IPython.display import Markdown
    glue("tbl_norms", Markdown(markdown_table(header, columns, formats, caption=...)),
         display=False)

and placed with a ``glue:md`` directive (``:format: myst``). No pandas is needed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["format_cell", "markdown_table"]


def format_cell(value: object, fmt: str = "") -> str:
    r"""Format one table entry: numbers with ``fmt``, everything else as ``str``.

    Pipes are escaped so an entry cannot split its row. NumPy scalars are converted to Python
    scalars first, so ``fmt`` behaves as for ``float``/``int``. Booleans are written ``yes`` and
    ``no``.

    Parameters
    ----------
    value : object
        A number (Python or NumPy), a bool or anything with a ``str``.
    fmt : str, optional
        A format spec for numbers, e.g. ``".4f"`` or ``".2e"``; ignored for other values.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        If ``fmt`` is not a valid format spec for the number.

    Examples
    --------
    >>> format_cell(3.14159, ".2f"), format_cell(np.float64(2.5e-10), ".1e")
    ('3.14', '2.5e-10')
    >>> format_cell("a|b"), format_cell(True)
    ('a\\|b', 'yes')
    """
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, (int, float)):
        text = format(value, fmt)
    else:
        text = str(value)
    return text.replace("|", r"\|")


def markdown_table(
    header: Sequence[str],
    columns: Sequence[ArrayLike | Sequence[object]],
    formats: Sequence[str] | str = "",
    *,
    caption: str | None = None,
    name: str | None = None,
) -> str:
    r"""Render columns of values as a Markdown pipe table, optionally inside a MyST ``table``.

    Numeric columns (every entry a number) are right-aligned, others left-aligned. With a
    ``caption`` the table is wrapped in a MyST ``{table}`` directive, which numbers it and lets
    ``name`` be the target of a ``{numref}`` reference.

    Parameters
    ----------
    header : sequence of str
        Column titles (Markdown, so ``$...$`` math works in MyST).
    columns : sequence of array_like or sequence
        One entry per column, all of the same length; a 1-D array or a list of values.
    formats : str or sequence of str, optional
        Format spec for the numbers of each column, or one spec for all; default ``""``.
    caption : str or None, optional
        Caption of the MyST ``table`` directive; None gives a bare pipe table.
    name : str or None, optional
        Label for cross-references; only with ``caption``.

    Returns
    -------
    str
        The table as Markdown (MyST when ``caption`` is given), ending with a newline.

    Raises
    ------
    ValueError
        If the columns and titles differ in number, the columns differ in length, a column is
        not one-dimensional, ``formats`` has the wrong length, there is no column, or ``name``
        is given without ``caption``.

    Examples
    --------
    >>> print(markdown_table(["shape", "norm"], [["100x10", "1x100"], np.array([31.6, 10.0])],
    ...                      ["", ".1f"]), end="")
    | shape | norm |
    | :--- | ---: |
    | 100x10 | 31.6 |
    | 1x100 | 10.0 |
    """
    titles = [str(h) for h in header]
    if len(titles) == 0:
        raise ValueError("header: expected at least one column title, got an empty sequence")
    if len(columns) != len(titles):
        raise ValueError(
            f"columns: expected one entry per header title ({len(titles)}), got {len(columns)}"
        )
    fmts = [formats] * len(titles) if isinstance(formats, str) else [str(f) for f in formats]
    if len(fmts) != len(titles):
        raise ValueError(
            f"formats: expected one string or one per column ({len(titles)}), got {len(fmts)}"
        )
    if name is not None and caption is None:
        raise ValueError("caption: expected a caption for the named table, got None")
    cols: list[list[object]] = []
    for j, col in enumerate(columns):
        if isinstance(col, np.ndarray):
            if col.ndim != 1:
                raise ValueError(f"columns[{j}]: expected a 1-D array, got shape {col.shape}")
            values: list[object] = list(col)
        elif isinstance(col, (str, bytes)) or not isinstance(col, Sequence):
            raise ValueError(
                f"columns[{j}]: expected a 1-D array or a sequence, got {type(col).__name__}"
            )
        else:
            values = list(col)
        cols.append(values)
    n_rows = len(cols[0])
    for j, values in enumerate(cols):
        if len(values) != n_rows:
            raise ValueError(
                f"columns[{j}]: expected the length of columns[0], {n_rows}, got {len(values)}"
            )

    def numeric(values: list[object]) -> bool:
        return bool(values) and all(
            isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
            for v in values
        )

    align = ["---:" if numeric(values) else ":---" for values in cols]
    lines = [
        "| " + " | ".join(t.replace("|", r"\|") for t in titles) + " |",
        "| " + " | ".join(align) + " |",
    ]
    for i in range(n_rows):
        cells = [format_cell(cols[j][i], fmts[j]) for j in range(len(cols))]
        lines.append("| " + " | ".join(cells) + " |")
    body = "\n".join(lines) + "\n"
    if caption is None:
        return body
    options = f":name: {name}\n" if name is not None else ""
    return f":::{{table}} {caption}\n{options}\n{body}:::\n"
