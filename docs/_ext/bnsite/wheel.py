"""The library's wheel on the site, and how each lesson page says to run its notebook.

The build makes the wheel of the source tree it executed the lessons with (``pip wheel``) and
puts it in the site at ``wheel/bnlessons-<version>-py3-none-any.whl``; each lesson page ends
with two lines: install that wheel and JupyterLab, open the lesson's reader's notebook.
"""

from __future__ import annotations

import hashlib
import posixpath
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[3]
#: Where the site keeps the wheel, relative to its root.
WHEEL_DIR = "wheel"
#: What the wheel is built from (a copy of them, so the build leaves nothing in the tree).
WHEEL_SOURCES = ("pyproject.toml", "README.md", "src/bnlessons")


def wheel_name(root: Path = ROOT) -> str:
    """The file name of the library's wheel, from ``pyproject.toml``'s name and version."""
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return f"{project['name']}-{project['version']}-py3-none-any.whl"


def _sources_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for name in WHEEL_SOURCES:
        base = root / name
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for path in files:
            if "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def build_wheel(root: Path, cache: Path) -> Path:
    """The wheel of the library in ``root``, built once per content into ``cache/<digest>``.

    ``pip wheel`` builds it from a copy of :data:`WHEEL_SOURCES` in an isolated environment
    (pip takes setuptools from the package index or its cache).
    """
    out = cache / _sources_digest(root)
    wheel = out / wheel_name(root)
    if wheel.is_file():
        return wheel
    with tempfile.TemporaryDirectory(prefix="bnlessons-wheel-") as tmp:
        for name in WHEEL_SOURCES:
            src, dst = root / name, Path(tmp) / name
            if src.is_dir():
                ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
                shutil.copytree(src, dst, ignore=ignore)
            else:
                shutil.copy2(src, dst)
        done = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), tmp],
            capture_output=True,
            text=True,
        )
    if done.returncode != 0 or not wheel.is_file():
        raise ExtensionError(f"pip wheel could not build {wheel.name}:\n{done.stderr[-2000:]}")
    for stale in cache.iterdir():
        if stale != out and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    return wheel


def copy_wheel(app: Sphinx, exception: Exception | None) -> None:
    """``build-finished``: the wheel into ``<site>/wheel/`` (the only file there)."""
    if exception is not None or app.builder.format != "html":
        return
    wheel = build_wheel(ROOT, Path(app.outdir).parent / "wheels")
    target = Path(app.outdir) / WHEEL_DIR
    if target.is_dir():
        for old in target.iterdir():
            if old.name != wheel.name:
                old.unlink()
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(wheel, target / wheel.name)
    logger.info(f"bnlessons: the library's wheel is {WHEEL_DIR}/{wheel.name}")


def run_locally(docname: str, wheel: str) -> nodes.container:
    """The two lines of a lesson page that say how to run its notebook locally."""
    stem = docname.rsplit("/", 1)[-1]
    href = posixpath.relpath(f"{WHEEL_DIR}/{wheel}", posixpath.dirname(docname) or ".")
    box = nodes.container(classes=["run-locally"])
    first = nodes.paragraph()
    first += nodes.strong("", "Run this lesson yourself: ")
    first += nodes.Text("download its notebook (the download button, .ipynb) and the library, ")
    link = nodes.reference("", "", refuri=href)
    link += nodes.literal("", wheel)
    first += link
    first += nodes.Text("; then")
    second = nodes.paragraph()
    second += nodes.literal("", f"pip install {wheel} jupyterlab")
    second += nodes.Text(" and ")
    second += nodes.literal("", f"jupyter lab {stem}.ipynb")
    second += nodes.Text(" (each claim prints ✓ when its check holds).")
    box += [first, second]
    return box


def run_locally_markdown(docname: str, wheel: str, baseurl: str) -> str:
    """The same two lines as Markdown, for the top of the reader's notebook (absolute links)."""
    stem = docname.rsplit("/", 1)[-1]
    base = baseurl.rstrip("/")
    return (
        f"*The reader's notebook of [this lesson]({base}/{docname}.html).* To run it, install "
        f"the library's wheel [{wheel}]({base}/{WHEEL_DIR}/{wheel}) and JupyterLab,\n"
        f"`pip install {wheel} jupyterlab`, then `jupyter lab {stem}.ipynb`: the collapsed "
        "cells hold the checks, and each claim prints ✓ when its check holds."
    )


def add_run_locally(app: Sphinx, doctree: nodes.document) -> None:
    """``doctree-read``: a lesson page ends with :func:`run_locally`."""
    docname = app.env.docname
    if docname.startswith("lessons/"):
        doctree += run_locally(docname, wheel_name())


def setup(app: Sphinx) -> None:
    app.connect("doctree-read", add_run_locally, priority=450)  # before the provenance
    app.connect("build-finished", copy_wheel)
