"""Local Sphinx extension: what the bnlessons site needs and no maintained extension provides.

* :func:`library_digest` and :func:`prune_caches` -- ``conf.py`` names the jupyter-cache after
  a digest of the library, so editing ``src/bnlessons`` re-executes the lessons (myst-nb keys
  its cache on cell source alone).
* MathJax served by the site: the build stops early if ``npm ci`` has not fetched it into
  ``docs/node_modules``, and copies the parts the pages load into ``_static/mathjax``.
* Notebook downloads: each executed lesson notebook (with outputs) is copied next to its MyST
  source under ``_sources/`` and offered by the book theme's download button.
* The root redirect: ``index.html`` at the site root points to the landing page.
* Exercises numbered by lesson, solutions collapsed, and an edition without solutions
  (:mod:`bnsite.exercises`).
* Lesson kernels on IPC sockets (:func:`use_ipc_kernels`), not on unencrypted TCP ports.
* Types on the API page: :func:`format_typehint` is sphinx-autodoc-typehints'
  ``typehints_formatter`` (``NDArray[float64]``, ``ArrayLike``), :func:`public_module` its
  ``typehints_fixup_module_name``, and :func:`add_property_type` gives properties the type of
  their getter (autodoc itself would spell it with the expanded NumPy generics), and
  :func:`numpy_class_as_obj` finds NumPy's scalar types, which its inventory lists as
  attributes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import tempfile
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import uuid4

import jupyter_client
import numpy as np
import numpy.typing as npt
from jupyter_client.manager import AsyncKernelManager
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ExtensionError
from sphinx.ext.intersphinx import missing_reference
from sphinx_autodoc_typehints import format_annotation
from traitlets import CaselessStrEnum, default

from bnsite.reader import ReaderError, Site, Target, read_bibliography, reader_notebook
from bnsite.wheel import run_locally_markdown, wheel_name

ROOT = Path(__file__).resolve().parents[3]
MATHJAX_SRC = ROOT / "docs" / "node_modules" / "mathjax" / "es5"
#: The entry script and the directories MathJax loads lazily (fonts, TeX extensions, menu,
#: accessibility, speech rule engine); the SVG output and the other bundles are not used.
MATHJAX_PARTS = (
    "tex-mml-chtml.js",
    *("input", "output/chtml.js", "output/chtml", "ui", "a11y", "sre"),
)
#: Directories and suffixes of byte-code caches, which must not change the library digest.
SKIPPED = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", ".pyc", ".pyo"})


def library_digest(*paths: Path, root: Path = ROOT) -> str:
    """Return a short hex digest of the files under ``paths``: their names and their bytes.

    Names are taken relative to ``root``; byte-code caches are left out, so importing the
    library does not change the digest.
    """
    digest = hashlib.sha256()
    for base in paths:
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for path in files:
            if SKIPPED.intersection(path.parts) or path.suffix in SKIPPED:
                continue
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def prune_caches(cache_root: Path, keep: str, *, max_kept: int = 3) -> Path:
    """Return ``cache_root / keep``, removing all but the ``max_kept`` newest caches there.

    ``keep`` counts as the newest; older caches stay a while so that going back to a recent
    library version does not re-execute every lesson.
    """
    current = cache_root / keep
    if cache_root.is_dir():
        others = [p for p in cache_root.iterdir() if p.is_dir() and p != current]
        others.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        for stale in others[max_kept - 1 :]:
            shutil.rmtree(stale, ignore_errors=True)
    return current


def _check_mathjax(app: Sphinx) -> None:
    entry = MATHJAX_SRC / MATHJAX_PARTS[0]
    if app.builder.format == "html" and not entry.is_file():
        raise ExtensionError(
            f"MathJax is missing ({entry} not found). The site serves its own copy: run "
            "`make assets` (that is, `npm ci --prefix docs`) before building."
        )


def _copy_if_changed(src: str, dst: str) -> str:
    """``shutil.copy2`` unless ``dst`` already has ``src``'s size and modification time."""
    a, b = Path(src).stat(), Path(dst).stat() if Path(dst).is_file() else None
    if b is not None and (a.st_size, int(a.st_mtime)) == (b.st_size, int(b.st_mtime)):
        return dst
    return str(shutil.copy2(src, dst))


def _copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    for part in MATHJAX_PARTS:
        src, out = MATHJAX_SRC / part, Path(app.outdir) / "_static" / "mathjax" / part
        if src.is_dir():
            shutil.copytree(src, out, dirs_exist_ok=True, copy_function=_copy_if_changed)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            _copy_if_changed(str(src), str(out))


REDIRECT = (
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>\n'
    '<meta http-equiv="refresh" content="0; url={target}"><link rel="canonical" href="{target}">\n'
    '</head><body><p><a href="{target}">{title}</a></p></body></html>\n'
)


def _write_root_redirect(app: Sphinx, exception: Exception | None) -> None:
    """The landing page is ``docs/index``; ``index.html`` at the site root points to it."""
    if exception is not None or app.builder.format != "html":
        return
    target = app.builder.get_target_uri(app.config.root_doc)
    if target != "index.html":
        title = app.config.html_title or app.config.project
        page = REDIRECT.format(title=title, target=target)
        (Path(app.outdir) / "index.html").write_text(page, encoding="utf-8")


def offer_notebook(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Write the reader's notebook of a MyST lesson into ``_sources`` and offer it for download.

    The reader's notebook (:mod:`bnsite.reader`) is made from the one myst-nb executed into
    ``jupyter_execute`` next to the output directory, and its glue data; pages without one,
    and notebooks that are sources themselves, are left alone.
    """
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if app.builder.format != "html" or doctree is None or not executed.is_file():
        return
    if not app.config.bn_solutions:  # the exercises edition offers no download (conf.py)
        return
    if str(context.get("sourcename", "")).endswith(".md"):
        target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        notebook = json.loads(executed.read_text(encoding="utf-8"))
        glue_path = executed.with_suffix(".glue.json")
        glue = json.loads(glue_path.read_text(encoding="utf-8")) if glue_path.is_file() else {}
        try:
            site = site_for(app, pagename)
            preface = run_locally_markdown(pagename, wheel_name(), site.baseurl)
            solutions = bool(getattr(app.config, "bn_solutions", True))
            converted = reader_notebook(notebook, glue, site, preface=preface, solutions=solutions)
        except ReaderError as exc:
            raise ExtensionError(f"reader's notebook of {pagename}: {exc}") from exc
        text = json.dumps(converted, indent=1, ensure_ascii=False) + "\n"
        target.write_text(text, encoding="utf-8")
        context["ipynb_source"] = f"{pagename}.ipynb"


#: How the reader's notebook numbers what ``numfig_format`` has no format for.
NUMBER_FORMATS = {"exercise": "Exercise %s"}


def site_for(app: Sphinx, docname: str) -> Site:
    """What :func:`bnsite.reader.reader_notebook` needs from the build: link targets on the
    hosted site (``html_baseurl``), figure, table and equation numbers, and the bibliography."""
    env, builder = app.env, app.builder
    if not hasattr(app, "bn_reader_site"):
        py, std, math = (env.get_domain(d) for d in ("py", "std", "math"))
        objects = {
            name: f"{builder.get_target_uri(o.docname)}#{o.node_id}"
            for name, o in py.objects.items()  # type: ignore[attr-defined]
        }
        objects |= {
            name: f"{builder.get_target_uri(m.docname)}#{m.node_id}"
            for name, m in py.modules.items()  # type: ignore[attr-defined]
        }
        labels = {
            label: Target(f"{builder.get_target_uri(doc)}#{anchor}", title)
            for label, (doc, anchor, title) in std.labels.items()  # type: ignore[attr-defined]
        }
        numbers = {}
        for label, (doc, anchor) in std.anonlabels.items():  # type: ignore[attr-defined]
            for kind, ids in env.toc_fignumbers.get(doc, {}).items():
                if anchor in ids:
                    number = ".".join(map(str, ids[anchor]))
                    fmt = app.config.numfig_format.get(kind) or NUMBER_FORMATS.get(kind, "%s")
                    text = fmt % number
                    numbers[label] = Target(f"{builder.get_target_uri(doc)}#{anchor}", text)
        equations = {
            label: Target(f"{builder.get_target_uri(doc)}#equation-{label}", str(number))
            for label, (doc, number) in math.equations.items()  # type: ignore[attr-defined]
        }
        documents = {d: env.titles[d].astext() for d in env.found_docs if d in env.titles}
        bib = ROOT / app.config.bibtex_bibfiles[0]
        app.bn_reader_site = Site(  # type: ignore[attr-defined]
            baseurl=app.config.html_baseurl or "",
            docname="",
            objects=objects,
            labels=labels,
            numbers=numbers,
            equations=equations,
            documents=documents,
            bibliography=read_bibliography(bib),
        )
    site: Site = app.bn_reader_site  # type: ignore[attr-defined]
    return dataclasses.replace(site, docname=docname)


# --------------------------------------------------------------------------- kernels


class IpcKernelManager(AsyncKernelManager):
    """Starts kernels that listen on IPC sockets (files in the temporary directory).

    With jupyter_client's default TCP transport, ipykernel warns that the traffic on its
    localhost ports is not encrypted.
    """

    transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

    @default("ip")
    def _ipc_path(self) -> str:
        return str(Path(tempfile.gettempdir()) / f"kernel-{uuid4().hex}")


def use_ipc_kernels() -> None:
    """Make nbclient, which myst-nb runs without configuration, use :class:`IpcKernelManager`.

    nbclient takes its default kernel manager from ``jupyter_client.AsyncKernelManager``
    when it creates one.
    """
    setattr(jupyter_client, "AsyncKernelManager", IpcKernelManager)  # noqa: B010


# --------------------------------------------------------------------------- types

#: NumPy's union aliases, which ``typing`` expands into their private members.
NUMPY_UNIONS = {name: typing.get_args(getattr(npt, name)) for name in ("ArrayLike", "DTypeLike")}


def format_typehint(annotation: Any, config: Config | None = None) -> str | None:
    """Format NumPy annotations as they are written; None leaves the rest to the default.

    ``NDArray[float64]`` instead of ``ndarray[tuple[Any, ...], dtype[float64]]``,
    and ``ArrayLike | None`` instead of the private members of ``ArrayLike``.
    """
    if config is None:
        return None
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is np.ndarray and typing.get_origin(args[1]) is np.dtype:
        scalar = format_annotation(typing.get_args(args[1])[0], config)
        return rf":py:data:`~numpy.typing.NDArray`\ \[{scalar}]"
    for name, members in NUMPY_UNIONS.items():
        if args and all(m in args for m in members):
            rest = [format_annotation(a, config) for a in args if a not in members]
            return " | ".join([f":py:data:`~numpy.typing.{name}`", *rest])
    return None


def public_module(module: str) -> str:
    """``typehints_fixup_module_name``: ``numpy.random._generator`` -> ``numpy.random``."""
    return ".".join(part for part in module.split(".") if not part.startswith("_"))


def numpy_class_as_obj(app: Sphinx, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve a ``py:class`` reference to NumPy as ``py:obj``, or return None.

    NumPy's inventory lists its scalar types (``numpy.float64``) as attributes, which the
    ``class`` role that type annotations and docstring types use does not find.
    """
    reference = (node.get("refdomain"), node.get("reftype"), str(node["reftarget"]).split(".")[0])
    if reference != ("py", "class", "numpy"):
        return None
    node["reftype"] = "obj"
    found = missing_reference(app, env, node, contnode)
    node["reftype"] = "class"
    return found


def add_property_type(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Give a property the ``:type:`` of its getter's return annotation (if it has none)."""
    getter = getattr(obj, "fget", None)
    if what != "property" or getter is None or any(ln.startswith(":type:") for ln in lines):
        return
    annotation = typing.get_type_hints(getter).get("return")
    if annotation is not None:
        lines.extend(["", f":type: {format_annotation(annotation, app.config)}"])


class ConfigHook:
    """A function as a configuration value that Sphinx can pickle and compare between builds.

    Sphinx does not cache a plain function in ``conf.py``, so it would take the configuration
    as changed and re-read every page on every build.
    """

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function

    def __call__(self, *args: Any) -> Any:
        return self.function(*args)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ConfigHook) and other.function is self.function

    def __hash__(self) -> int:
        return hash(self.function)


def setup(app: Sphinx) -> dict[str, Any]:
    from bnsite import claims, exercises, wheel

    claims.setup(app)
    exercises.setup(app)
    wheel.setup(app)
    use_ipc_kernels()
    app.connect("builder-inited", _check_mathjax)
    app.connect("build-finished", _copy_mathjax)
    app.connect("build-finished", _write_root_redirect)
    app.connect("html-page-context", offer_notebook, priority=450)
    app.connect("autodoc-process-docstring", add_property_type, priority=600)
    app.connect("missing-reference", numpy_class_as_obj, priority=600)
    # env_version: raise it when what the extension adds to the doctrees changes (a re-read).
    return {
        "version": "2.1",
        "env_version": 2,
        "parallel_read_safe": True,
        "parallel_write_safe": True,
    }
