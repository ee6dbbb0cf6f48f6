"""Claims on the pages: the ``{claim}`` role, the Checks page and each lesson's provenance.

A lesson records a checked statement with :func:`bnlessons.claims.claim`; in the site build
that glues the value with the claim in the output's metadata (myst-nb's glue format). Here:

* ``{claim}`id``` shows the value in the prose, marked with a check mark whose tooltip (on
  hover, keyboard focus or tap) gives the statement and the numbers. The first mark of a claim
  carries ``data-claim="<lesson>/<id>"`` and the anchor ``claim-<id>``; a claim that no
  sentence shows is a warning (so ``-W`` fails the build).
* ``{checks-total}`claims``` (the landing page) is a link to the Checks page with the number
  of claims, and the ``{checks}`` directive is that page's body: per lesson, every claim with
  a link to its sentence, its value, its check and its status, and the totals. Both are filled
  in from what the build recorded, after every lesson has been read.
* Each lesson page ends with its provenance: commit, library digest, Python, numpy and BLAS,
  the seeds in its source, its execution time and whether it came from the notebook cache.
  The build writes all of it to ``checks.json`` at the root of the site.
"""

from __future__ import annotations

import ast
import html
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import jupytext
from docutils import nodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective, SphinxRole
from sphinx.writers.html5 import HTML5Translator

logger = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[3]
CHECKS_DOC = "docs/checks"
STARTED = time.time()
#: What two builds of the same commit may differ in (the rest is fixed by the commit and the
#: machine's numerical configuration).
VARIABLE_FIELDS = "the execution time and whether the notebook came from the cache"


class claim_value(nodes.inline):
    """A claimed value in the prose; ``node["claim"]`` is the record, ``node["first"]`` marks
    the claim's first appearance on the site."""


class checks_placeholder(nodes.General, nodes.Element):
    """Where the Checks page's tables go, filled in at ``doctree-resolved``."""


class total_placeholder(nodes.inline):
    """Where the landing page's link with the number of claims goes."""


def lesson_of(docname: str) -> str:
    return docname.rsplit("/", 1)[-1]


def _store(env: BuildEnvironment) -> dict[str, dict[str, Any]]:
    if not hasattr(env, "bn_claims"):
        env.bn_claims = {}  # type: ignore[attr-defined]
    return env.bn_claims  # type: ignore[attr-defined, no-any-return]


class ClaimRole(SphinxRole):
    """``{claim}`id```: the claim's value, marked as checked."""

    def run(self) -> tuple[list[nodes.Node], list[nodes.system_message]]:
        from myst_nb.ext.glue.utils import RetrievalError, retrieve_glue_data

        key = self.text.strip()
        try:
            glued = retrieve_glue_data(self.inliner.document, key)
        except RetrievalError as exc:
            return [], [self.inliner.reporter.warning(f"claim {key!r}: {exc}", line=self.lineno)]
        record = glued.metadata.get("bnlessons", {}).get("claim")
        if record is None:
            message = f"{key!r} is glued but is not a claim (record it with claims.claim)"
            return [], [self.inliner.reporter.warning(message, line=self.lineno)]
        shown: set[str] = self.env.temp_data.setdefault("bn_claims_shown", set())  # type: ignore[assignment]
        node = claim_value(record["text"], claim=record, first=key not in shown)
        node["lesson"] = lesson_of(self.env.docname)
        shown.add(key)
        self.set_source_info(node)
        return [node], []


def visit_claim_html(self: HTML5Translator, node: claim_value) -> None:
    record, lesson = node["claim"], node["lesson"]
    tip = f"claim-tip-{record['id']}" + ("" if node["first"] else f"-{id(node)}")
    attributes: dict[str, Any] = {"CLASS": "claim"}
    if node["first"]:
        attributes |= {"ids": [f"claim-{record['id']}"], "data-claim": f"{lesson}/{record['id']}"}
    self.body.append(self.starttag(node, "span", "", **attributes))
    text = record["text"] if record["text"] not in ("figure", "table") else ""
    self.body.append(f'<span class="claim-value">{html.escape(text)}</span>')
    self.body.append(
        f'<button type="button" class="claim-mark" aria-describedby="{tip}">✓'
        '<span class="claim-sr"> checked</span></button>'
    )
    self.body.append(
        f'<span class="claim-tip" role="tooltip" id="{tip}">Checked when this site was built: '
        f"{html.escape(record['statement'])} ({html.escape(record['check'])})</span></span>"
    )
    raise nodes.SkipNode


def visit_claim_text(self: Any, node: claim_value) -> None:
    self.body.append(node["claim"]["text"])
    raise nodes.SkipNode


class ChecksDirective(SphinxDirective):
    """``{checks}``: the Checks page's tables (filled in once every lesson is read)."""

    def run(self) -> list[nodes.Node]:
        return [checks_placeholder()]


class TotalRole(SphinxRole):
    """``{checks-total}`claims```: "N claims checked when this site was built", linked."""

    def run(self) -> tuple[list[nodes.Node], list[nodes.system_message]]:
        return [total_placeholder()], []


# ------------------------------------------------------------------ what the build records


def _lesson_source_facts(source: Path) -> dict[str, Any]:
    """Counts from a lesson's MyST source: cells, removed cells, asserts, glue and claim
    calls, and the integer seeds it passes (``seed=N``, ``default_rng(N)``, ``SEEDS = ...``)."""
    cells = [c for c in jupytext.read(source).cells if c.cell_type == "code"]
    facts: dict[str, Any] = {
        "cells": len(cells),
        "removed": 0,
        "asserts": 0,
        "glue": 0,
        "claims": 0,
    }
    seeds: set[int] = set()
    for cell in cells:
        facts["removed"] += "remove-cell" in cell.metadata.get("tags", [])
        text = "\n".join(ln for ln in cell.source.splitlines() if not ln.startswith(("%", "!")))
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            facts["asserts"] += isinstance(node, ast.Assert)
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                facts["glue"] += name == "glue"
                facts["claims"] += name == "claim"
                args = [k.value for k in node.keywords if k.arg == "seed"]
                args += node.args[:1] if name == "default_rng" else []
                seeds.update(v for v in map(_ints, args) if v is not None)
            if isinstance(node, ast.Assign):
                seeds.update(_assigned_seeds(node))
    facts["seeds"] = sorted(seeds)
    return facts


def _assigned_seeds(node: ast.Assign) -> list[int]:
    """The seeds of ``SEEDS = ...`` or ``STEPS, SEEDS = 100, range(3)`` (names with SEED)."""
    pairs: list[tuple[ast.expr, ast.expr]] = []
    for target in node.targets:
        if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
            pairs += zip(target.elts, node.value.elts, strict=False)
        else:
            pairs.append((target, node.value))
    found: list[int] = []
    for name, value in pairs:
        if "SEED" in getattr(name, "id", "").upper():
            single = _ints(value)
            found += [single] if single is not None else _range_ints(value)
    return found


def _ints(node: ast.expr) -> int | None:
    return node.value if isinstance(node, ast.Constant) and type(node.value) is int else None


def _range_ints(node: ast.expr) -> list[int]:
    """The ints of a literal tuple or list, or of ``range`` with literal arguments."""
    if isinstance(node, ast.Tuple | ast.List):
        return [v for v in map(_ints, node.elts) if v is not None]
    if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "range":
        bounds = [_ints(a) for a in node.args]
        if bounds and all(b is not None for b in bounds):
            return list(range(*bounds))  # type: ignore[arg-type]
    return []


def _glued_claims(app: Sphinx, docname: str) -> dict[str, dict[str, Any]]:
    """The claims of a lesson, read from the glue data myst-nb wrote next to its notebook."""
    path = Path(app.outdir).parent / "jupyter_execute" / f"{docname}.glue.json"
    if not path.is_file():
        return {}
    glued = json.loads(path.read_text(encoding="utf-8"))
    claims = {}
    for key, output in glued.items():
        record = output.get("metadata", {}).get("bnlessons", {}).get("claim")
        if record is not None:
            claims[key] = record
    return claims


def record_lesson(app: Sphinx, doctree: nodes.document) -> None:
    """After a lesson is read: store its claims, source counts and execution; warn about a
    claim that no sentence shows; append the provenance paragraph."""
    env = app.env
    docname = env.docname
    if not docname.startswith("lessons/"):
        return
    from myst_nb.sphinx_ import NbMetadataCollector

    claims = _glued_claims(app, docname)
    shown: set[str] = env.temp_data.get("bn_claims_shown") or set()
    for key in sorted(set(claims) - shown):
        logger.warning(
            f"claim {key!r} is checked but no sentence shows it ({{claim}}`{key}`)",
            location=docname,
        )
    execution = NbMetadataCollector.get_exec_data(env, docname) or {}
    runtime = execution.get("runtime")
    entry = {
        "lesson": lesson_of(docname),
        "title": nodes.fully_normalize_name(_title(doctree)),
        "claims": [claims[k] for k in claims],
        "source": _lesson_source_facts(Path(env.doc2path(docname))),
        "seconds": round(runtime, 1) if runtime is not None else None,
        "from_cache": bool(execution) and execution.get("mtime", STARTED) < STARTED,
    }
    _store(env)[docname] = entry
    doctree += provenance_node(app, entry)


def _title(doctree: nodes.document) -> str:
    title = next(doctree.findall(nodes.title), None)
    return title.astext() if title is not None else ""


def build_facts(app: Sphinx) -> dict[str, str]:
    """The fields that name what a page was built from (the same on every page)."""
    import platform

    import numpy as np

    from bnlessons.provenance import blas_info

    if not hasattr(app, "bn_facts"):
        info = blas_info()
        app.bn_facts = {  # type: ignore[attr-defined]
            "commit": app.config.bn_commit,
            "library": app.config.bn_library_digest,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "blas": f"{info.library} {info.version} ({info.kernel} kernel, "
            f"{info.threads} thread{'s' * (info.threads != 1)})",
        }
    return app.bn_facts  # type: ignore[attr-defined, no-any-return]


def head_commit(root: Path = ROOT) -> str:
    """The commit checked out (12 hex digits), or ``unknown`` outside git.

    ``conf.py`` sets it as ``bn_commit``, a configuration value that makes Sphinx read every
    page again when it changes, so that no page keeps the commit of an earlier build.
    """
    done = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True
    )
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else "unknown"


def _facts_text(facts: dict[str, str]) -> str:
    return (
        f"commit {facts['commit']}, library digest {facts['library']}, Python {facts['python']}, "
        f"numpy {facts['numpy']}, {facts['blas']}"
    )


def provenance_node(app: Sphinx, entry: dict[str, Any]) -> nodes.Element:
    """The lesson page's closing paragraph: what its numbers were computed with."""
    facts = build_facts(app)
    seeds = ", ".join(map(str, entry["source"]["seeds"])) or "none"
    ran = "taken from the notebook cache" if entry["from_cache"] else "executed by this build"
    seconds = f"{entry['seconds']} s" if entry["seconds"] is not None else "unknown"
    text = (
        f"Built from {_facts_text(facts)}. Seeds in this lesson: {seeds}. Its cells ran in "
        f"{seconds}, {ran}. {len(entry['claims'])} claims checked ({entry['source']['asserts']} "
        f"further assertions). Two builds of the same commit differ only in {VARIABLE_FIELDS}."
    )
    box = nodes.container(classes=["provenance"])
    box += nodes.paragraph(text, text)
    return box


# ------------------------------------------------------------------ the Checks page


def fill_checks(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    store = _store(app.env)
    lessons = [store[d] for d in sorted(store)]
    total = sum(len(e["claims"]) for e in lessons)
    for node in list(doctree.findall(total_placeholder)):
        uri = app.builder.get_relative_uri(docname, CHECKS_DOC)
        link = nodes.reference(refuri=uri, internal=True)
        link += nodes.Text(f"{total} claims checked when this site was built")
        node.replace_self(link)
    for node in list(doctree.findall(checks_placeholder)):
        node.replace_self(checks_body(app, docname, sorted(store), lessons, total))


def checks_body(
    app: Sphinx, docname: str, names: list[str], lessons: list[dict[str, Any]], total: int
) -> list[nodes.Node]:
    asserts = sum(e["source"]["asserts"] for e in lessons)
    failing = sum(not c["holds"] for e in lessons for c in e["claims"])
    summary = (
        f"{total} claims in {len(lessons)} lessons, {total - failing} holding; besides them "
        f"{asserts} assertions check the lessons' internal consistency without a sentence of "
        f"their own. Built from {_facts_text(build_facts(app))}."
    )
    body: list[nodes.Node] = [nodes.paragraph(summary, summary)]
    for name, entry in zip(names, lessons, strict=True):
        uri = app.builder.get_relative_uri(docname, name)
        heading = nodes.rubric(classes=["checks-lesson"])
        heading += nodes.reference("", entry["title"], refuri=uri)
        seconds = f"{entry['seconds']} s" if entry["seconds"] is not None else "unknown time"
        ran = "from the notebook cache" if entry["from_cache"] else "executed by this build"
        line = (
            f"{len(entry['claims'])} claims, {entry['source']['asserts']} further assertions; "
            f"ran in {seconds}, {ran}."
        )
        body += [heading, nodes.paragraph(line, line), _claims_table(uri, entry["claims"])]
    return body


def _claims_table(uri: str, claims: list[dict[str, Any]]) -> nodes.table:
    table = nodes.table(classes=["checks-table"])
    group = nodes.tgroup(cols=4)
    table += group
    for width in (18, 12, 60, 10):
        group += nodes.colspec(colwidth=width)
    head, body = nodes.thead(), nodes.tbody()
    group += [head, body]
    head += _row(["claim", "value", "check", "status"])
    for c in claims:
        link = nodes.reference("", c["id"], refuri=f"{uri}#claim-{c['id']}")
        status = "✓ holds" if c["holds"] else "✗ fails"
        body += _row([link, c["text"], f"{c['statement']} ({c['check']})", status])
    return table


def _row(cells: list[Any]) -> nodes.row:
    row = nodes.row()
    for cell in cells:
        entry = nodes.entry()
        para = nodes.paragraph()
        para += cell if isinstance(cell, nodes.Node) else nodes.Text(str(cell))
        entry += para
        row += entry
    return row


# ------------------------------------------------------------------ environment, output


def outdated(
    app: Sphinx, env: BuildEnvironment, added: set[str], changed: set[str], removed: set[str]
) -> list[str]:
    """Re-resolve the Checks page and the landing page whenever a lesson is read again."""
    if any(d.startswith("lessons/") for d in added | changed | removed):
        return [d for d in (CHECKS_DOC, app.config.root_doc) if d in env.found_docs]
    return []


def purge(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    _store(env).pop(docname, None)


def merge(app: Sphinx, env: BuildEnvironment, docnames: set[str], other: Any) -> None:
    _store(env).update({d: e for d, e in _store(other).items() if d in docnames})


def write_json(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    store = _store(app.env)
    data = {"build": build_facts(app), "variable_fields": VARIABLE_FIELDS, "lessons": store}
    text = json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    (Path(app.outdir) / "checks.json").write_text(text, encoding="utf-8")


def setup(app: Sphinx) -> None:
    app.add_config_value("bn_library_digest", "", "html", types=[str])
    app.add_config_value("bn_commit", "unknown", "env", types=[str])
    app.add_node(
        claim_value,
        html=(visit_claim_html, None),
        latex=(visit_claim_text, None),
        text=(visit_claim_text, None),
    )
    app.add_node(checks_placeholder)
    app.add_node(total_placeholder)
    app.add_role("claim", ClaimRole())
    app.add_role("checks-total", TotalRole())
    app.add_directive("checks", ChecksDirective)
    app.connect("doctree-read", record_lesson)
    app.connect("doctree-resolved", fill_checks)
    app.connect("env-get-outdated", outdated)
    app.connect("env-purge-doc", purge)
    app.connect("env-merge-info", merge)
    app.connect("build-finished", write_json)
