"""Tests for bnlessons.tables: the Markdown tables the lessons glue into their pages."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bnlessons.tables import format_cell, markdown_table


def split_row(line: str) -> list[str]:
    """Cells of a pipe-table row, undoing the escaping of pipes (first principles: GFM)."""
    assert line.startswith("| ") and line.endswith(" |"), line
    cells, current, i, body = [], "", 0, line[2:-2]
    while i < len(body):
        if body.startswith(r"\|", i):
            current += "|"
            i += 2
        elif body.startswith(" | ", i):
            cells.append(current)
            current = ""
            i += 3
        else:
            current += body[i]
            i += 1
    cells.append(current)
    return cells


def test_format_cell_numbers_strings_bools() -> None:
    assert format_cell(np.float64(31.614871896980077), ".4f") == "31.6149"
    assert format_cell(np.int64(40_000), ",d") == "40,000"
    assert format_cell(2.5e-10, ".1e") == "2.5e-10"
    assert format_cell("$W_1$") == "$W_1$"
    assert format_cell(np.bool_(True)) == "yes" and format_cell(False) == "no"
    assert format_cell("a|b") == r"a\|b"


def test_format_cell_rejects_bad_spec() -> None:
    with pytest.raises(ValueError):
        format_cell(1.5, "d")


def test_markdown_table_layout_and_alignment() -> None:
    text = markdown_table(
        ["matrix", "norm", "draws"],
        [["$W_1$", "$W_2$"], np.array([31.6149, 99.9975]), [40_000, 4_000]],
        ["", ".2f", ",d"],
    )
    lines = text.splitlines()
    assert lines == [
        "| matrix | norm | draws |",
        "| :--- | ---: | ---: |",
        "| $W_1$ | 31.61 | 40,000 |",
        "| $W_2$ | 100.00 | 4,000 |",
    ]
    assert text.endswith("\n")


def test_markdown_table_caption_and_name() -> None:
    text = markdown_table(["a"], [[1]], caption="A caption.", name="tbl-a")
    assert text.startswith(":::{table} A caption.\n:name: tbl-a\n\n| a |")
    assert text.endswith("| 1 |\n:::\n")
    bare = markdown_table(["a"], [[1]], caption="Only a caption.")
    assert ":name:" not in bare and bare.startswith(":::{table} Only a caption.\n\n")


def test_markdown_table_escapes_math_pipes_in_header() -> None:
    # LaTeX \| must survive the table: written \\| so the pipe is escaped, not a separator.
    text = markdown_table([r"$E\|M\|_F$"], [[1.0]])
    header = text.splitlines()[0]
    assert split_row(header) == [r"$E\|M\|_F$"]


@pytest.mark.parametrize(
    ("header", "columns", "formats", "kwargs", "message"),
    [
        ([], [], "", {}, "header: expected at least one column"),
        (["a", "b"], [[1]], "", {}, "columns: expected one entry per header title"),
        (
            ["a", "b"],
            [[1], [1, 2]],
            "",
            {},
            r"columns\[1\]: expected the length of columns\[0\], 1",
        ),
        (["a"], [[1]], ["", ""], {}, "formats: expected one string or one per column"),
        (["a"], [np.zeros((2, 2))], "", {}, r"columns\[0\]: expected a 1-D array, got shape"),
        (["a"], ["abc"], "", {}, r"columns\[0\]: expected a 1-D array or a sequence, got str"),
        (["a"], [[1]], "", {"name": "tbl-x"}, "caption: expected a caption for the named table"),
    ],
)
def test_markdown_table_errors(
    header: list[str],
    columns: list[object],
    formats: str | list[str],
    kwargs: dict[str, str],
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        markdown_table(header, columns, formats, **kwargs)  # type: ignore[arg-type]


@given(
    st.lists(
        st.tuples(
            st.floats(allow_nan=False, allow_infinity=False, width=64),
            st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=8),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_markdown_table_round_trips_values(rows: list[tuple[float, str]]) -> None:
    numbers = np.array([r[0] for r in rows])
    labels = [r[1].strip() or "x" for r in rows]
    labels = [" ".join(lab.split()) for lab in labels]  # the table is one line per row
    text = markdown_table(["label", "value"], [labels, numbers], ["", ""])
    body = text.splitlines()[2:]
    assert len(body) == len(rows)
    for line, label, value in zip(body, labels, numbers, strict=True):
        cells = split_row(line)
        assert cells[0] == label
        assert float(cells[1]) == value
