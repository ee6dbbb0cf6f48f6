"""Local Sphinx extension for the bnlessons site.

What it adds to the stock toolchain, each piece small and named:

* :func:`library_digest` -- a hash of the library sources, used by ``conf.py`` to key the
  jupyter-cache directory, so editing ``src/bnlessons`` re-executes the lessons (myst-nb keys
  its cache on cell source alone).
* MathJax served by the site: checks that ``npm ci`` has fetched ``mathjax`` into
  ``docs/node_modules`` and copies the parts the pages load into ``_static/mathjax``.
* Notebook downloads: copies each executed lesson notebook (with outputs) next to its MyST
  source under ``_sources/`` and feeds it to the book theme's download button.
* Type names in docstrings: resolves the short spellings a numpy-style docstring uses
  (``NDArray[np.float64]``, ``array_like``, ``np.random.Generator``, private module paths such as
  ``numpy.random._generator.Generator``) against the stored intersphinx inventories, and
  shows ``NDArray[float64]`` for annotated arrays instead of the expanded generic.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import types
import typing
from pathlib import Path
from typing import Any

import numpy as np
from docutils import nodes
from docutils.statemachine import StringList
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.environment import BuildEnvironment
from sphinx.errors import ExtensionError
from sphinx.ext.intersphinx import missing_reference as intersphinx_missing_reference
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import make_refnode

LOGGER = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
MATHJAX_SRC = ROOT / "docs" / "node_modules" / "mathjax" / "es5"
#: The entry script and the directories MathJax loads lazily (fonts, TeX extensions, menu,
#: accessibility and speech rule engine); the SVG output and the other bundles are not used.
MATHJAX_PARTS = (
    "tex-mml-chtml.js",
    "input",
    "output/chtml.js",
    "output/chtml",
    "ui",
    "a11y",
    "sre",
)

_SKIP_PARTS = {"__pycache__", ".mypy_cache", ".pytest_cache"}
_SKIP_SUFFIXES = {".pyc", ".pyo"}


def library_digest(*paths: Path) -> str:
    """Return a short hex digest of every file under ``paths`` (names and bytes, sorted).

    Byte-code caches are left out, so importing the library does not change the digest.
    """
    digest = hashlib.sha256()
    for base in paths:
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for path in files:
            if _SKIP_PARTS.intersection(path.parts) or path.suffix in _SKIP_SUFFIXES:
                continue
            digest.update(path.relative_to(ROOT).as_posix().encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()[:16]


def prune_caches(cache_root: Path, keep: str, *, max_kept: int = 3) -> Path:
    """Return ``cache_root / keep``, removing all but the ``max_kept`` newest sibling caches.

    Each library digest gets its own jupyter-cache; older ones are kept a while so that going
    back to a recent library version does not re-execute everything.
    """
    current = cache_root / keep
    if cache_root.is_dir():
        others = sorted(
            (p for p in cache_root.iterdir() if p.is_dir() and p != current),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for stale in others[max_kept - 1 :]:
            shutil.rmtree(stale, ignore_errors=True)
    return current


# --------------------------------------------------------------------------- MathJax


def _check_mathjax(app: Sphinx) -> None:
    if app.builder.format != "html":
        return
    entry = MATHJAX_SRC / MATHJAX_PARTS[0]
    if not entry.is_file():
        raise ExtensionError(
            f"MathJax is missing ({entry} not found). The site serves its own copy: run "
            "`make assets` (that is, `npm ci --prefix docs`) before building."
        )


def _copy_if_changed(src: str, dst: str) -> str:
    """``shutil.copy2`` unless ``dst`` already has ``src``'s size and modification time."""
    s, d = Path(src), Path(dst)
    if d.is_file():
        a, b = s.stat(), d.stat()
        if a.st_size == b.st_size and int(a.st_mtime) == int(b.st_mtime):
            return dst
    return str(shutil.copy2(s, d))


def _copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    dest = Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        src, out = MATHJAX_SRC / part, dest / part
        if src.is_dir():
            shutil.copytree(src, out, dirs_exist_ok=True, copy_function=_copy_if_changed)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            _copy_if_changed(str(src), str(out))


_REDIRECT = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<meta http-equiv="refresh" content="0; url={target}">
<link rel="canonical" href="{target}">
</head>
<body><p><a href="{target}">{title}</a></p></body>
</html>
"""


def _write_root_redirect(app: Sphinx, exception: Exception | None) -> None:
    """The landing page is ``docs/index``; ``index.html`` at the site root points to it."""
    if exception is not None or app.builder.format != "html":
        return
    target = app.builder.get_target_uri(app.config.root_doc)
    if target == "index.html":
        return
    page = _REDIRECT.format(title=app.config.html_title or app.config.project, target=target)
    (Path(app.outdir) / "index.html").write_text(page, encoding="utf-8")


# --------------------------------------------------------------------------- notebooks


def _offer_notebook(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Copy the executed notebook of a lesson page into ``_sources`` for the download menu."""
    if app.builder.format != "html" or doctree is None:
        return
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if not executed.is_file() or not str(context.get("sourcename", "")).endswith(".md"):
        return
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(executed, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


# --------------------------------------------------------------------------- API page


class LibraryModule(SphinxDirective):
    """``automodule`` for a module of ``bnlessons`` that may not be written yet.

    The library is written module by module; until a module's file exists, the API page says
    so instead of failing the build. ``tests/test_site.py`` checks that the page lists every
    module of the package and that every module it lists exists.
    """

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        module = self.arguments[0]
        relative = Path(*module.split(".")).with_suffix(".py")
        path = ROOT / "src" / relative
        if not path.is_file():
            note = nodes.note()
            note += nodes.paragraph(text=f"{module} ({relative.as_posix()}) is not written yet.")
            return [note]
        self.env.note_dependency(str(path))
        # autodoc writes reStructuredText, so it is parsed inside eval-rst
        lines = [
            "```{eval-rst}",
            f".. automodule:: {module}",
            "   :members:",
            "   :undoc-members:",
            "```",
        ]
        container = nodes.container()
        source = self.get_source_info()[0]
        self.state.nested_parse(StringList(lines, source=source), self.content_offset, container)
        return list(container.children)


# --------------------------------------------------------------------------- docstrings

_MULTI_FIELD = re.compile(
    r"^(?P<indent>\s*):(?P<kind>ivar|vartype|param|type) (?P<names>[^:]+,[^:]+):(?P<rest>.*)$"
)


def _split_multi_name_fields(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Turn napoleon's ``:ivar a, b: ...`` (from ``a, b : T`` in Attributes) into one field each.

    Sphinx reads ``:ivar a, b:`` as type ``a,`` and name ``b``, which is neither.
    """
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _MULTI_FIELD.match(lines[i])
        if match is None:
            out.append(lines[i])
            i += 1
            continue
        body = [match["rest"]]
        i += 1
        while i < len(lines) and lines[i].startswith(match["indent"] + " ") and lines[i].strip():
            body.append(lines[i])
            i += 1
        for field_name in (n.strip() for n in match["names"].split(",")):
            out.append(f"{match['indent']}:{match['kind']} {field_name}:{body[0]}")
            out.extend(body[1:])
    lines[:] = out


_CODE_OR_ROLE = re.compile(r"(:[\w:.+-]+:)?`[^`]*`+")
_PROSE_COLON: dict[str, tuple[str, str]] = {}


def _note_prose_colon(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Before napoleon: remember attribute docstrings whose first line is prose with a colon.

    Napoleon reads the first line of an attribute or property docstring as ``type: text``;
    for ``Weight of the new batch (None: cumulative).`` it would make ``Weight of the new
    batch (None`` the type. The type comes from the annotation anyway.
    """
    if what not in {"attribute", "property", "data"}:
        return
    first = next((line for line in lines if line.strip()), "")
    masked = _CODE_OR_ROLE.sub(lambda m: "x" * len(m.group(0)), first)
    cut = masked.find(":")
    if cut <= 0 or masked[cut - 1 : cut + 2].count(":") > 1:
        return
    if len(first[:cut].split()) > 3:
        _PROSE_COLON[name] = (first, first[cut + 1 :].strip())


def _restore_prose_colon(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """After napoleon: drop the spurious ``:type:`` and put the first line back."""
    if name not in _PROSE_COLON:
        return
    original, rest = _PROSE_COLON.pop(name)
    for i, line in enumerate(lines):
        if line.startswith(":type: "):
            del lines[i]
            if i > 0 and not lines[i - 1].strip():
                del lines[i - 1]
            break
    for i, line in enumerate(lines):
        if line.strip() == rest:
            lines[i] = original
            break


def _property_type(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Add a property's return annotation as a ``:type:`` field, formatted like the rest.

    ``conf.py`` sets ``autodoc_typehints = "none"``, because Sphinx's own rendering spells
    ``NDArray[float64]`` as the expanded ``ndarray[tuple[Any, ...], dtype[float64]]``.
    """
    if what != "property" or any(line.startswith(":type:") for line in lines):
        return
    getter = getattr(obj, "fget", None)
    if getter is None:
        return
    try:
        annotation = typing.get_type_hints(getter).get("return")
    except Exception:  # an annotation that cannot be evaluated: leave the docstring alone
        return
    if annotation is None:
        return
    from sphinx_autodoc_typehints import format_annotation

    lines.extend(["", f":type: {format_annotation(annotation, app.config)}"])


# --------------------------------------------------------------------------- type names

#: Spellings used in numpy-style docstrings, mapped to (domain, role, target).
ALIASES: dict[str, tuple[str, str, str]] = {
    "array_like": ("std", "term", "array_like"),
    "array-like": ("std", "term", "array_like"),
    "ndarray": ("py", "class", "numpy.ndarray"),
    "NDArray": ("py", "data", "numpy.typing.NDArray"),
    "ArrayLike": ("py", "data", "numpy.typing.ArrayLike"),
    "Generator": ("py", "class", "numpy.random.Generator"),
    "Path": ("py", "class", "pathlib.Path"),
    "callable": ("py", "func", "callable"),
    "sequence": ("std", "term", "sequence"),
    "Sequence": ("py", "class", "collections.abc.Sequence"),
    "mapping": ("std", "term", "mapping"),
    "Mapping": ("py", "class", "collections.abc.Mapping"),
    "iterable": ("std", "term", "iterable"),
    "Iterable": ("py", "class", "collections.abc.Iterable"),
    "Figure": ("py", "class", "matplotlib.figure.Figure"),
    "Axes": ("py", "class", "matplotlib.axes.Axes"),
    "function": ("py", "data", "types.FunctionType"),
    "scalar": ("py", "class", "float"),
    "lists": ("py", "class", "list"),
    "tuples": ("py", "class", "tuple"),
    "ints": ("py", "class", "int"),
    "floats": ("py", "class", "float"),
    "arrays": ("py", "class", "numpy.ndarray"),
    "ndarrays": ("py", "class", "numpy.ndarray"),
}
#: Our own package: a bare class name in a docstring type (``MnistData``) may live in another
#: of its modules than the one being documented.
LOCAL_PACKAGE = "bnlessons"
_GENERIC = re.compile(r"^(?P<head>[A-Za-z_][\w.]*)\[.*\]$")
_NAME = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")
_PREFIXES = {
    "np.": "numpy.",
    "npt.": "numpy.typing.",
    "plt.": "matplotlib.pyplot.",
    "sp.": "sympy.",
}


def _candidates(target: str) -> list[tuple[str, str, str]]:
    """Return the (domain, role, target) spellings worth trying for an unresolved name."""
    out: list[tuple[str, str, str]] = []
    generic = _GENERIC.match(target)
    if generic:  # ``NDArray[np.float64]`` as one token: link the head
        target = generic["head"]
    if target in ALIASES:
        out.append(ALIASES[target])
    for short, full in _PREFIXES.items():
        if target.startswith(short):
            target = full + target[len(short) :]
    if _NAME.match(target):
        parts = target.split(".")
        # drop private and then intermediate modules: numpy.random._generator.Generator,
        # sympy.matrices.expressions.matexpr.MatrixSymbol -> the public documented path
        public = [p for p in parts[:-1] if not p.startswith("_")] + parts[-1:]
        for cut in range(len(public) - 1, 0, -1):
            out.append(("py", "obj", ".".join([*public[:cut], public[-1]])))
        out.append(("py", "obj", target))
        if len(parts) == 1:  # ``float64`` in a type field means numpy.float64
            out.append(("py", "obj", f"numpy.{target}"))
    return out


def _unique_by_last_name(env: BuildEnvironment, target: str) -> str | None:
    """Return the one inventory name in ``target``'s package ending in ``.<last part>``.

    So ``sympy.MatrixSymbol`` finds ``sympy.matrices.expressions.MatrixSymbol``.
    """
    if "." not in target:
        return None
    top, last = target.split(".")[0], target.rsplit(".", 1)[1]
    inventory = getattr(env, "intersphinx_inventory", {})
    found = {
        name
        for objtype, items in inventory.items()
        if objtype.startswith("py:")
        for name in items
        if name.startswith(top + ".") and name.endswith("." + last)
    }
    return found.pop() if len(found) == 1 else None


def _field_of_documented_class(
    app: Sphinx,
    env: BuildEnvironment,
    node: pending_xref,
    contnode: nodes.TextElement,
    target: str,
) -> nodes.reference | None:
    """Link ``Class.field`` to the class when the field is listed in its Attributes section.

    Napoleon lists dataclass fields as ``:ivar:`` fields of the class, which have no anchor
    of their own.
    """
    if node.get("reftype") not in ("attr", "obj") or "." not in target:
        return None
    owner, field_name = target.rsplit(".", 1)
    objects = env.get_domain("py").objects  # type: ignore[attr-defined]
    module = node.get("py:module")
    for name in (f"{module}.{owner}" if module else owner, owner):
        entry = objects.get(name)
        if entry is None or entry.objtype != "class":
            continue
        cls = _import_object(name)
        fields = getattr(cls, "__dataclass_fields__", {})
        if field_name in fields or field_name in getattr(cls, "__annotations__", {}):
            return make_refnode(
                app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, target
            )
    return None


def _local_object(
    app: Sphinx,
    env: BuildEnvironment,
    node: pending_xref,
    contnode: nodes.TextElement,
    target: str,
) -> nodes.reference | None:
    """Link a bare name to the one object of that name documented in ``LOCAL_PACKAGE``."""
    if "." in target:
        return None
    objects = env.get_domain("py").objects  # type: ignore[attr-defined]
    matches = [
        (name, entry)
        for name, entry in objects.items()
        if name.startswith(LOCAL_PACKAGE + ".")
        and name.endswith("." + target)
        and not getattr(entry, "aliased", False)
    ]
    if len(matches) != 1:
        return None
    name, entry = matches[0]
    return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, name)


def _import_object(dotted: str) -> Any:
    import importlib

    module_name, _, attr = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError):
        return None


def _resolve_alias(
    app: Sphinx, env: BuildEnvironment, node: pending_xref, contnode: nodes.TextElement
) -> nodes.reference | nodes.Node | None:
    """Second chance for a Python cross-reference that neither Sphinx nor intersphinx found."""
    if node.get("refdomain") != "py":
        return None
    target = str(node["reftarget"]).removeprefix("~")
    if not _NAME.match(target) and not _GENERIC.match(target) and target not in ALIASES:
        # not a name at all (a shape such as ``(n, d)`` or prose in a type field): plain text
        return contnode
    if len(target) == 1:
        # a shape symbol from a type field such as ``ndarray, shape (N, C)``: plain text
        return contnode
    field = _field_of_documented_class(app, env, node, contnode, target)
    if field is not None:
        return field
    local = _local_object(app, env, node, contnode, target)
    if local is not None:
        return local
    saved = {key: node.get(key) for key in ("refdomain", "reftype", "reftarget")}
    try:
        for domain, role, candidate in _candidates(target):
            node["refdomain"], node["reftype"], node["reftarget"] = domain, role, candidate
            found = intersphinx_missing_reference(app, env, node, contnode)
            if found is None and domain == "py":
                node["reftype"] = "obj"
                found = intersphinx_missing_reference(app, env, node, contnode)
            if found is not None:
                return found
        unique = (
            _unique_by_last_name(env, _candidates(target)[-1][2]) if _candidates(target) else None
        )
        if unique is not None:
            node["refdomain"], node["reftype"], node["reftarget"] = "py", "obj", unique
            found = intersphinx_missing_reference(app, env, node, contnode)
            if found is not None:
                return found
    finally:
        for key, value in saved.items():
            node[key] = value
    return None


def _array_dtype(annotation: Any) -> Any | None:
    """Return ``X`` if ``annotation`` is ``numpy.ndarray[shape, numpy.dtype[X]]``, else None."""
    if typing.get_origin(annotation) is not np.ndarray:
        return None
    args = typing.get_args(annotation)
    if len(args) != 2 or typing.get_origin(args[1]) is not np.dtype:
        return None
    (scalar,) = typing.get_args(args[1])
    return scalar


def _union_args(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return ()


def _named_aliases() -> list[tuple[str, tuple[Any, ...]]]:
    """NumPy's union aliases, which typing expands into their private members."""
    import numpy.typing as npt

    return [
        (":py:data:`~numpy.typing.ArrayLike`", typing.get_args(npt.ArrayLike)),
        (":py:data:`~numpy.typing.DTypeLike`", typing.get_args(npt.DTypeLike)),
    ]


def _format_union_with_aliases(annotation: Any, config: Config | None) -> str | None:
    """``ArrayLike | None`` instead of the seven private members of ``ArrayLike`` and None."""
    members = list(_union_args(annotation))
    if not members:
        return None
    parts: list[str] = []
    for text, alias_members in _named_aliases():
        if alias_members and all(m in members for m in alias_members):
            parts.append(text)
            members = [m for m in members if m not in alias_members]
    if not parts:
        return None
    for member in members:
        formatted = format_typehint(member, config)
        if formatted is None:
            from sphinx_autodoc_typehints import format_annotation

            formatted = format_annotation(member, config) if config is not None else str(member)
        parts.append(formatted)
    return " | ".join(parts)


def format_typehint(annotation: Any, config: Config | None = None) -> str | None:
    """``typehints_formatter`` for sphinx-autodoc-typehints: ``NDArray[float64]`` for arrays.

    Everything else falls through to the default formatting (returns None), except numpy
    scalar types, which the NumPy inventory lists as attributes and so need the ``obj`` role.
    """
    scalar = _array_dtype(annotation)
    if scalar is not None:
        inner = format_typehint(scalar, config)
        if inner is None:
            from sphinx_autodoc_typehints import format_annotation

            inner = format_annotation(scalar, config) if config is not None else str(scalar)
        return rf":py:data:`~numpy.typing.NDArray`\ \[{inner}]"
    if isinstance(annotation, type) and issubclass(annotation, np.generic):
        return f":py:obj:`~numpy.{annotation.__name__}`"
    if annotation is typing.Any:
        return ":py:data:`~typing.Any`"
    if annotation is type(None):
        return ":py:obj:`None`"
    return _format_union_with_aliases(annotation, config)


def fixup_module_name(module: str) -> str:
    """``typehints_fixup_module_name``: report classes from their public module."""
    public = {
        "numpy.random._generator": "numpy.random",
        "numpy.random.bit_generator": "numpy.random",
        "matplotlib.axes._axes": "matplotlib.axes",
        "matplotlib.axes._base": "matplotlib.axes",
    }
    return public.get(module, module)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("library-module", LibraryModule)
    app.connect("builder-inited", _check_mathjax)
    app.connect("build-finished", _copy_mathjax)
    app.connect("build-finished", _write_root_redirect)
    app.connect("html-page-context", _offer_notebook, priority=450)
    app.connect("missing-reference", _resolve_alias, priority=600)
    app.connect("autodoc-process-docstring", _split_multi_name_fields, priority=600)
    app.connect("autodoc-process-docstring", _note_prose_colon, priority=400)
    app.connect("autodoc-process-docstring", _restore_prose_colon, priority=600)
    app.connect("autodoc-process-docstring", _property_type, priority=650)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}


class _Hook:
    """A config-value callable that Sphinx can pickle and compare across builds.

    A plain function in ``conf.py`` cannot be cached in the environment, which makes Sphinx
    treat the configuration as changed and re-read every page on each build.
    """

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self).__qualname__)


class TypehintFormatter(_Hook):
    """Picklable ``typehints_formatter`` (see :func:`format_typehint`)."""

    def __call__(self, annotation: Any, config: Config | None = None) -> str | None:
        return format_typehint(annotation, config)


class ModuleNameFixup(_Hook):
    """Picklable ``typehints_fixup_module_name`` (see :func:`fixup_module_name`)."""

    def __call__(self, module: str) -> str:
        return fixup_module_name(module)
