"""The reader's notebook: a lesson's executed notebook as plain Jupyter shows and runs it.

myst-nb executes a lesson into a notebook whose Markdown is MyST (roles such as
``{glue:text}`key``` and ``{cite:t}`key```, directives such as ``{glue:figure}``) and whose
glued outputs live in a side file (``<doc>.glue.json``). :func:`reader_notebook` turns the
two into a notebook that JupyterLab reads and runs without myst-nb or Sphinx:

* glued values in the prose become their text (``{claim}`id``` the claim's value and a check
  mark), glued Markdown (tables) its Markdown, glued math ``$$...$$``, and a glued figure the
  image itself, attached to the Markdown cell where the page shows it, with its caption;
* references (``{class}``, ``{func}``, ``{doc}``, ``{numref}``, ...) become Markdown links to
  the hosted site, citations author--year text, with a "References" cell at the end;
* admonitions, dropdowns, tables, math and exercise blocks become Markdown (``<details>`` for
  dropdowns and solutions);
* code cells the page removes or hides stay, with their source collapsed, so a reader who runs
  the notebook runs every check; glue outputs are dropped and each claim shows the ``✓`` line
  that :func:`bnlessons.claims.claim` prints outside the site build.

The conversion is pure (notebook and glue data in, notebook out); the Markdown is rewritten
by :mod:`bnsite.markdown`, and what it needs from the site (link targets, numbers, the
bibliography) comes in a :class:`~bnsite.markdown.Site`, built by the extension from Sphinx's
environment (:func:`bnsite.site_for`) or by hand in the tests.
"""

from __future__ import annotations

import ast
import base64
import copy
import re
from collections.abc import Mapping
from typing import Any

from bnsite.markdown import (
    CHECK,
    Converter,
    ReaderError,
    Reference,
    Site,
    Target,
    format_text,
    read_bibliography,
)

__all__ = [
    "ReaderError",
    "Reference",
    "Site",
    "Target",
    "attachment_bytes",
    "code_cell",
    "forbidden_imports",
    "format_text",
    "place_claims",
    "read_bibliography",
    "reader_notebook",
]

#: myst-nb's prefix for a glued value's MIME types (bnlessons.claims.GLUE_PREFIX).
GLUE_PREFIX = "application/papermill.record/"
#: Modules a reader's notebook must not import: its reader has neither.
FORBIDDEN_IMPORTS = ("myst_nb", "sphinx", "docutils", "jupyter_cache")
#: myst-nb's ``glue`` and the library's take the same arguments; lessons not yet ported to the
#: library's import it from myst-nb, which the reader's notebook replaces by the library's.
GLUE_IMPORT = re.compile(r"^from myst_nb import glue$", re.MULTILINE)
LIBRARY_GLUE_IMPORT = "from bnlessons.claims import glue"

# ------------------------------------------------------------------ code cells


def claim_patterns(source: str) -> list[re.Pattern[str]]:
    """What the ids of a cell's ``claim(...)`` calls can be, in the order of the calls: the
    string itself, an f-string with its fields as wildcards, any name for anything else.

    >>> [p.pattern for p in claim_patterns("claim('a_1', x, 's', below=1)\\nclaim(f'b_{k}', y)")]
    ['a_1', 'b_.+?']
    """
    try:
        tree = ast.parse(_without_magics(source))
    except SyntaxError:
        return []
    calls: list[tuple[int, int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name = getattr(node.func, "id", getattr(node.func, "attr", ""))
        if name != "claim":
            continue
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            pattern = re.escape(first.value)
        elif isinstance(first, ast.JoinedStr):
            pattern = "".join(
                re.escape(str(part.value)) if isinstance(part, ast.Constant) else ".+?"
                for part in first.values
            )
        else:
            pattern = r"\w+"
        calls.append((node.lineno, node.col_offset, pattern))
    return [re.compile(pattern) for _, _, pattern in sorted(calls)]


WILDCARD = r"\w+"


def place_claims(sources: list[str], claim_ids: list[str]) -> list[list[str]]:
    """Which claims each code cell printed: ``claim_ids`` (in the order the notebook made
    them, as myst-nb's glue data keeps them) split among the cells whose ``claim`` calls can
    make them (:func:`claim_patterns`).

    A call whose id is computed (not a string or an f-string) takes the claims no other call
    could have made, up to the first claim of a later cell; a claim no call can have made goes
    to the cell of the claim before it (or the first cell with a claim).
    """
    patterns = [claim_patterns(s) for s in sources]
    specific = [[p for p in ps if p.pattern != WILDCARD] for ps in patterns]

    def owner(claim: str, cells: range) -> int | None:
        return next((k for k in cells if any(p.fullmatch(claim) for p in specific[k])), None)

    placed: list[list[str]] = [[] for _ in sources]
    position = 0  # claims are made in cell order: each cell takes from here on
    for k, cell_patterns in enumerate(patterns):
        if not cell_patterns:
            continue
        wildcard = any(p.pattern == WILDCARD for p in cell_patterns)
        later = range(k + 1, len(sources))
        taken = position
        for index in range(position, len(claim_ids)):
            claim = claim_ids[index]
            if any(p.fullmatch(claim) for p in specific[k]):
                placed[k].append(claim)
                taken = index + 1
            elif owner(claim, later) is not None:
                break
            elif wildcard and owner(claim, range(len(sources))) is None:
                placed[k].append(claim)
                taken = index + 1
        position = taken
    missing = [c for c in claim_ids if not any(c in cell for cell in placed)]
    for claim in missing:
        before = claim_ids[: claim_ids.index(claim)]
        home = next(
            (k for c in reversed(before) for k, cell in enumerate(placed) if c in cell),
            next((k for k, ps in enumerate(patterns) if ps), None),
        )
        if home is not None:
            placed[home].append(claim)
    return placed


def _without_magics(source: str) -> str:
    return "\n".join(
        "pass" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.splitlines()
    )


def forbidden_imports(source: str) -> list[str]:
    """The modules of :data:`FORBIDDEN_IMPORTS` that ``source`` imports.

    >>> forbidden_imports("import numpy as np\\nfrom myst_nb import glue\\nimport sphinx.util")
    ['myst_nb', 'sphinx.util']
    """
    try:
        tree = ast.parse(_without_magics(source))
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        found += [n for n in names if n.split(".")[0] in FORBIDDEN_IMPORTS]
    return found


def _claim_record(output: Mapping[str, Any]) -> Mapping[str, Any] | None:
    record: Mapping[str, Any] | None = output.get("metadata", {}).get("bnlessons", {}).get("claim")
    return record


def _is_glue_output(output: Mapping[str, Any]) -> bool:
    data = output.get("data", {})
    return bool(data) and all(str(m).startswith(GLUE_PREFIX) for m in data)


def _claim_output(claim: Mapping[str, Any]) -> dict[str, Any]:
    mark = CHECK if claim.get("holds", True) else "✗"
    line = f"{mark} {claim['id']}: {claim['statement']} ({claim['check']})"
    return {
        "output_type": "display_data",
        "data": {"text/plain": line},
        "metadata": {"bnlessons": {"claim": dict(claim)}},
    }


def _hidden(tags: list[str]) -> dict[str, bool]:
    """JupyterLab's collapsed-cell metadata for myst-nb's hiding tags."""
    hidden = {}
    if {"remove-cell", "hide-cell", "remove-input", "hide-input"} & set(tags):
        hidden["source_hidden"] = True
    if {"hide-output", "remove-output"} & set(tags):
        hidden["outputs_hidden"] = True
    return hidden


def code_cell(cell: Mapping[str, Any], claims: list[Mapping[str, Any]]) -> dict[str, Any]:
    """A code cell as a reader's run shows it: glue outputs out, its ``claims`` (records) as
    the ``✓`` lines they print."""
    out = copy.deepcopy(dict(cell))
    source = _source(cell)
    source = GLUE_IMPORT.sub(LIBRARY_GLUE_IMPORT, source)
    out["source"] = source
    outputs = [o for o in out.get("outputs", []) if not _is_glue_output(o)]
    lines = [_claim_output(record) for record in claims]
    results = [o for o in outputs if o.get("output_type") == "execute_result"]
    rest = [o for o in outputs if o.get("output_type") != "execute_result"]
    out["outputs"] = rest + lines + results
    metadata = dict(out.get("metadata", {}))
    hidden = _hidden(list(metadata.get("tags", [])))
    if hidden:
        metadata["jupyter"] = {**dict(metadata.get("jupyter", {})), **hidden}
    out["metadata"] = metadata
    return out


def _source(cell: Mapping[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


# ------------------------------------------------------------------ the notebook


def reader_notebook(
    notebook: Mapping[str, Any],
    glue: Mapping[str, Mapping[str, Any]],
    site: Site,
    *,
    preface: str = "",
    solutions: bool = True,
) -> dict[str, Any]:
    """The reader's notebook of an executed lesson notebook and its glue data.

    Parameters
    ----------
    notebook : mapping
        The executed notebook (nbformat 4, as JSON), its Markdown cells in MyST.
    glue : mapping
        myst-nb's glue data of that notebook (``<doc>.glue.json``): key to output.
    site : Site
        Link targets, numbers and the bibliography.
    preface : str, optional
        Markdown put in a cell of its own after the first cell (the title).
    solutions : bool, optional
        False leaves out the exercises' solutions (``solution-start`` to ``solution-end``,
        their code cells included), as the edition without solutions does.

    Raises
    ------
    ReaderError
        If the MyST has a role or directive without a Markdown form, a glued key or a link
        target is missing, or a code cell imports myst-nb or Sphinx.
    """
    converter = Converter(glue, site, solutions=solutions)
    records = {key: _claim_record(output) for key, output in glue.items()}
    claims = {key: record for key, record in records.items() if record is not None}
    code_cells = [c for c in notebook.get("cells", []) if c.get("cell_type") == "code"]
    placed = iter(place_claims([_source(c) for c in code_cells], list(claims)))
    cells: list[dict[str, Any]] = []
    for cell in notebook.get("cells", []):
        kind = cell.get("cell_type")
        if kind == "markdown":
            attachments: dict[str, Any] = {}
            continued = converter.in_solution
            text = converter.markdown(_source(cell), attachments)
            text = converter.solution_cell(text, continued)
            if not text.strip():
                continue
            new: dict[str, Any] = {"cell_type": "markdown", "metadata": {}, "source": text}
            if attachments:
                new["attachments"] = attachments
            if "id" in cell:
                new["id"] = cell["id"]
            cells.append(new)
        elif kind == "code":
            mine = [claims[key] for key in next(placed)]
            if converter.skipping:
                continue
            new = code_cell(cell, mine)
            if converter.in_solution is not None:
                jupyter = new["metadata"].setdefault("jupyter", {})
                jupyter.update(source_hidden=True, outputs_hidden=True)
            cells.append(new)
        else:
            cells.append(copy.deepcopy(dict(cell)))
    if preface:
        cells.insert(
            1 if cells else 0, {"cell_type": "markdown", "metadata": {}, "source": preface}
        )
    if converter.cited:
        cells.append({"cell_type": "markdown", "metadata": {}, "source": converter.references()})
    _number_ids(cells)
    bad = [
        f"cell {k}: {', '.join(found)}"
        for k, cell in enumerate(cells)
        if cell["cell_type"] == "code" and (found := forbidden_imports(_source(cell)))
    ]
    if bad:
        raise ReaderError(
            f"{site.docname}: the reader's notebook would import what its reader does not have "
            f"({'; '.join(bad)}); import glue and claim from bnlessons.claims"
        )
    metadata = {
        k: copy.deepcopy(v)
        for k, v in notebook.get("metadata", {}).items()
        if k in ("kernelspec", "language_info")
    }
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": metadata, "cells": cells}


def _number_ids(cells: list[dict[str, Any]]) -> None:
    """Cell ids (nbformat 4.5), unique: kept where the source notebook had them."""
    seen: set[str] = set()
    for k, cell in enumerate(cells):
        cid = str(cell.get("id", "")) or f"cell-{k}"
        while cid in seen:
            cid = f"{cid}-{k}"
        cell["id"] = cid
        seen.add(cid)


def attachment_bytes(notebook: Mapping[str, Any]) -> dict[str, bytes]:
    """The attached images of a notebook, by name, decoded (for tests and checks)."""
    found = {}
    for cell in notebook.get("cells", []):
        for name, bundle in cell.get("attachments", {}).items():
            for mime, data in bundle.items():
                if mime.startswith("image/") and mime != "image/svg+xml":
                    found[name] = base64.b64decode(data)
    return found
