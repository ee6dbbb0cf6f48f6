"""Sphinx configuration for the bnlessons site.

The source directory is the repository root: ``docs/`` (landing page, guides, API reference)
and ``lessons/`` (MyST notebooks executed at build time) are read, everything else is
excluded. Build with ``make html``; see ``docs/guides/building.md``.
"""

from __future__ import annotations

import ast
import logging as pylogging
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "docs" / "_ext"))
sys.path.insert(0, str(ROOT / "src"))

import bnsite  # noqa: E402  (the local extension, found through the path set just above)
import jupytext  # noqa: E402
from bnsite.claims import head_commit  # noqa: E402
from docutils import nodes  # noqa: E402
from IPython.core.inputtransformer2 import TransformerManager  # noqa: E402
from sphinx.application import Sphinx  # noqa: E402
from sphinx.util import logging  # noqa: E402
from sphinx_codeautolink.extension.backref import SummaryNode  # noqa: E402
from sphinx_codeautolink.extension.block import CodeBlockAnalyser  # noqa: E402
from sphinx_codeautolink.extension.directive import PrefaceMarker  # noqa: E402

from bnlessons import _cache  # noqa: E402
from bnlessons.provenance import blas_info, blas_summary  # noqa: E402

# -- Project ------------------------------------------------------------------------------

project = "bnlessons"
author = "bnlessons contributors"
copyright = "2026, bnlessons contributors (lessons after R. Yu's lecture notes, 2018)"
html_title = "Matrix Arithmetic and Batch Normalization"

root_doc = "docs/index"
include_patterns = ["docs/**", "lessons/**"]
exclude_patterns = [
    ".venv",
    ".git",
    ".ci",
    ".github",
    "_build",
    "jupyter_execute",
    "node_modules",
    "docs/node_modules",
    "docs/_inv",
    "docs/_ext",
    "docs/_static",
    "docs/_templates",
    "src",
    "tests",
    "benchmarks",
    "**.ipynb_checkpoints",
    "README.md",
]

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx_autodoc_typehints",  # after napoleon
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.doctest",
    "sphinx_copybutton",
    "sphinx_design",
    "sphinx_codeautolink",
    "sphinxcontrib.bibtex",
    "sphinx_exercise",
    "bnsite",
]

# `make html SOLUTIONS=0` builds with the tag "exercises": the edition without solutions, for
# setting the exercises as homework (bnsite.exercises). It leaves out every solution, prose and
# code cells, and offers no download: the notebooks and sources hold the solutions.
EXERCISES_EDITION = tags.has("exercises")  # noqa: F821 (Sphinx defines tags here)
bn_solutions = not EXERCISES_EDITION

# Any warning fails the build (``make html`` passes -W --keep-going -n); nitpicky mode makes
# every unresolved cross-reference a warning too.
nitpicky = True
numfig = True  # {numref} to figures and equations in the lessons

# -- MyST and notebook execution -----------------------------------------------------------

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist", "substitution"]
myst_heading_anchors = 3

# Lessons run at build time. The jupyter-cache is keyed on cell source only, so its directory
# is named after a digest of the library (and of the pinned environment): editing anything in
# src/bnlessons, data included, gives a fresh cache and re-executes every lesson.
# The BLAS kernel and thread count are part of the key too: they change the numbers in the
# last digits (see docs/guides/building.md), and the build log names them.
BLAS = blas_info()
LIBRARY_DIGEST = bnsite.library_digest(
    ROOT / "src" / "bnlessons", ROOT / ".ci" / "constraints.txt"
)
# Training runs are memoized in the experiment cache (bnlessons._cache, keyed on their inputs,
# the library and the BLAS configuration), so editing a cell re-executes its lesson without
# retraining; the kernels inherit the variable. `make portability` runs without it.
os.environ.setdefault("BNLESSONS_CACHE_DIR", str(ROOT / "_build" / "experiment-cache"))
# The lessons' claims (bnlessons.claims) are glued for the pages instead of printed.
os.environ["BNLESSONS_SITE"] = "1"
bn_library_digest = LIBRARY_DIGEST
# The commit on every page's provenance line; a new commit makes Sphinx read every page again
# (from the notebook cache), so no page keeps an older one.
bn_commit = head_commit(ROOT)
nb_execution_mode = "cache"
nb_execution_cache_path = str(
    bnsite.prune_caches(
        ROOT / "_build" / ".jupyter_cache", f"{LIBRARY_DIGEST}-{BLAS.kernel}-{BLAS.threads}t"
    )
)
nb_execution_raise_on_error = True  # a cell that raises fails the build ...
nb_execution_show_tb = True  # ... and the log shows its traceback
nb_execution_timeout = 600  # seconds per cell
nb_execution_in_temp = False
nb_merge_streams = True
nb_ipywidgets_js: dict[str, dict[str, str]] = {}  # no widget JavaScript from a CDN

# -- API reference -------------------------------------------------------------------------

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "undoc-members": True}
autodoc_preserve_defaults = True
# Types come from sphinx-autodoc-typehints (parameters, returns) and, for properties, from the
# local extension, both formatted by bnsite.format_typehint; Sphinx's own rendering would
# expand NDArray[float64] into ndarray[tuple[Any, ...], dtype[float64]].
autodoc_typehints = "none"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
# An Attributes section is laid out like Returns: a list of names (``a, b : T`` allowed),
# types and descriptions; autodoc lists the same fields as members (undoc-members).
napoleon_custom_sections = [("Attributes", "params_style")]
# Docstring types are cross-referenced word by word (the rules: docs/guides/building.md,
# "Docstrings and the API page"); these are the words that are not importable names.
napoleon_preprocess_types = True
_NDARRAY = r":py:data:`~numpy.typing.NDArray`"
napoleon_type_aliases = {
    "array_like": ":any:`array_like`",
    "sequence": ":any:`sequence`",
    "mapping": ":any:`mapping`",
    "callable": ":any:`callable`",
    "ndarray": "~numpy.ndarray",
    "NDArray": _NDARRAY,
    **{f"{prefix}{t}": f"~numpy.{t}" for prefix in ("", "np.") for t in ("float32", "float64")},
    **{
        f"NDArray[{prefix}{t}]": rf"{_NDARRAY}\ \[:py:class:`~numpy.{t}`]"
        for prefix in ("", "np.")
        for t in ("float64", "int64", "uint8")
    },
    "lists": ":py:class:`lists <list>`",
    "Path": "~pathlib.Path",
    **{
        f"sympy.{name}": f":py:class:`sympy.{name} <sympy.matrices.expressions.{name}>`"
        for name in ("MatrixExpr", "MatrixSymbol", "Trace")
    },
    # library classes named outside their own module, found in whichever module holds them
    **{
        name: f".{name}"
        for name in ("BatchNorm", "MnistData", "SigmoidMLP", "TrainingConfig", "TrainingResult")
    },
}
# Shapes and ranges in docstring types, such as ``ndarray, shape (N, C)`` or
# ``float in [0, 1]``, are not names: their pieces stay plain text.
nitpick_ignore_regex = [("py:class", r"shape .*|\(\w+|\*?\w+\)|[A-Z]|float in \[0|1\]")]
always_document_param_types = False
typehints_document_rtype = True
typehints_use_rtype = False
typehints_defaults = "comma"
typehints_formatter = bnsite.ConfigHook(bnsite.format_typehint)
typehints_fixup_module_name = bnsite.ConfigHook(bnsite.public_module)
python_use_unqualified_type_names = True

# The inventories are stored in the repository (see docs/_inv/README.md), so an offline
# build resolves them; links still point at the public documentation.
intersphinx_mapping = {
    "python": ("https://docs.python.org/3.11/", str(ROOT / "docs" / "_inv" / "python.inv")),
    "numpy": ("https://numpy.org/doc/stable/", str(ROOT / "docs" / "_inv" / "numpy.inv")),
    "matplotlib": (
        "https://matplotlib.org/stable/",
        str(ROOT / "docs" / "_inv" / "matplotlib.inv"),
    ),
    "sympy": ("https://docs.sympy.org/latest/", str(ROOT / "docs" / "_inv" / "sympy.inv")),
}

# -- Code linked to the API ---------------------------------------------------------------

# Names in the lessons' code cells link to their API entries (NumPy and Matplotlib names to the
# stored inventories), and each API entry lists the lessons that use it. A lesson's cells are
# one program, so an import in its first cell holds in the later ones.
codeautolink_concat_default = True
codeautolink_autodoc_inject = True
# A name resolved to an object that no inventory documents is a warning, so a library name
# missing from the API page fails the build ...
codeautolink_warn_on_missing_inventory = True
# ... but a name whose type cannot be inferred without running the code (what ``max()`` or
# ``copy.deepcopy()`` returns, NumPy's untyped generators) is not a failure: it stays text.
codeautolink_warn_on_failed_resolve = False
# Names the stored inventories list under another name.
codeautolink_inventory_map = {
    "numpy.abs": "numpy.absolute",
    "type.__name__": "definition.__name__",  # a class's name, as in type(x).__name__
    **{
        f"sympy.matrices.expressions.{module}.{name}": f"sympy.matrices.expressions.{name}"
        for module, name in (("matexpr", "MatrixSymbol"), ("transpose", "Transpose"))
    },
}
#: Names no stored inventory covers, left as text without a warning: IPython (Debian's
#: IPython documentation has no API reference), myst-nb's ``glue``, and what SymPy's HTML
#: documents without an object entry.
CODEAUTOLINK_UNDOCUMENTED = re.compile(
    r"Inventory missing `(IPython\.\S+|myst_nb\.\S+|sympy|sympy\.latex)`"
)

# -- Bibliography --------------------------------------------------------------------------

bibtex_bibfiles = ["docs/references.bib"]
bibtex_default_style = "plain"
bibtex_reference_style = "author_year"

# -- Doctest builder -----------------------------------------------------------------------

doctest_global_setup = "import numpy as np"
doctest_test_doctest_blocks = ""  # only {doctest} blocks; docstrings run under pytest

# -- HTML ----------------------------------------------------------------------------------

html_theme = "sphinx_book_theme"
# The hosted site: the reader's notebooks link their API names, lessons and figures there (Read
# the Docs sets the variable to the address of the version it builds).
html_baseurl = (
    os.environ.get("READTHEDOCS_CANONICAL_URL") or "https://bnlessons.readthedocs.io/en/latest/"
)
html_static_path = ["docs/_static"]
templates_path = ["docs/_templates"]  # theme components overridden for accessibility
html_css_files = ["bnlessons.css"]
html_copy_source = True
html_sourcelink_suffix = ""  # _sources/lessons/x.md, the MyST file itself
html_show_sourcelink = False
html_last_updated_fmt = None  # no build date: two builds give identical pages
# pydata-sphinx-theme reads the initial colour mode from the context; left empty, a first
# visit logs "Got invalid theme mode" to the console.
html_context = {"default_mode": "auto"}
html_theme_options = {
    "use_download_button": True,  # .ipynb (executed), .md (MyST source), print to PDF
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "use_source_button": False,
    "use_edit_page_button": False,
    "use_issues_button": False,
    "launch_buttons": {},
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "navigation_with_keys": False,
}
if EXERCISES_EDITION:
    html_title += " (exercises edition)"
    html_theme_options["use_download_button"] = False
    html_copy_source = False

# MathJax is served by the site itself: npm installs mathjax@3 into docs/node_modules and the
# local extension copies it into _static/mathjax (relative paths are taken from _static).
mathjax_path = "mathjax/tex-mml-chtml.js"

copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
copybutton_exclude = ".linenos, .gp, .go"

# sphinx-autodoc-typehints 3.6 calls an API that Sphinx 9 deprecates; the Python warning is
# noise on stderr (it is not a Sphinx warning and does not fail -W).
warnings.filterwarnings("ignore", message=".*set_application.*", category=DeprecationWarning)


def _known_undocumented(record: pylogging.LogRecord) -> bool:
    """Drop codeautolink's warnings about :data:`CODEAUTOLINK_UNDOCUMENTED`, and its summary
    of them (any other missing name has a warning of its own)."""
    message = record.getMessage()
    return not (
        CODEAUTOLINK_UNDOCUMENTED.match(message) or message.startswith("Cannot locate modules")
    )


def preface_removed_imports(app: Sphinx, doctree: nodes.document) -> None:
    """Tell codeautolink the imports of a lesson's removed cells (its first cell is one), so
    the names they bind link in the cells that are shown."""
    source = Path(doctree["source"])
    if source.parent != ROOT / "lessons" or source.suffix != ".md":
        return
    imports = []
    for cell in jupytext.read(source).cells:
        removed = {"remove-cell", "remove-input"} & set(cell.metadata.get("tags", []))
        if cell.cell_type == "code" and removed:
            body = ast.parse(TransformerManager().transform_cell(cell.source)).body  # magics
            imports += [ast.unparse(n) for n in body if isinstance(n, ast.Import | ast.ImportFrom)]
    if imports:
        doctree.insert(0, PrefaceMarker("\n".join(imports), "file"))


def _section_titles_only(visit_title: Any) -> Any:
    """sphinx-codeautolink 0.20 names an example by the titles above it, but stacks the titles
    of tables and admonitions too and pops only at a section's end; keep section titles."""

    def visit(self: Any, node: nodes.title) -> None:
        if isinstance(node.parent, nodes.section):
            visit_title(self, node)

    return visit


CodeBlockAnalyser.visit_title = _section_titles_only(CodeBlockAnalyser.visit_title)


def unlink_example_summaries(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """codeautolink's "Expand for references to NAME" links NAME inside the summary, a control
    in a control (axe-core: nested-interactive); the entry is right above, so NAME stays text."""
    for summary in doctree.findall(SummaryNode):
        for reference in list(summary.findall(nodes.reference)):
            reference.replace_self(reference.children)


def link_pdf(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: object
) -> None:
    """Point the download menu's ``.pdf`` of a lesson (of the landing page: the whole site) at
    the PDF ``make pdf`` prints into ``_build/html/pdf`` (tools/make_pdf.py), not at the
    browser's print dialog."""
    if pagename.startswith("lessons/"):
        target = f"pdf/{Path(pagename).name}.pdf"
    elif pagename == root_doc:
        target = "pdf/bnlessons.pdf"
    else:
        return
    for group in context.get("header_buttons", []):
        buttons = group.get("buttons", [])
        for k, button in enumerate(buttons):
            if button.get("label") == "download-pdf-button":
                url = context["pathto"](target, 1)
                kept = {key: v for key, v in button.items() if key != "javascript"}
                buttons[k] = {**kept, "type": "link", "url": url, "tooltip": "Download the PDF"}


def setup(app: Sphinx) -> None:
    """Log the numerical configuration, and each lesson's experiment-cache hits and misses;
    link the printed PDFs."""
    app.connect("doctree-read", preface_removed_imports, priority=480)  # before codeautolink's
    app.connect("doctree-resolved", unlink_example_summaries, priority=510)  # after the tables
    app.connect("html-page-context", link_pdf, priority=502)  # after the book theme's buttons
    pylogging.getLogger("sphinx.sphinx_codeautolink").addFilter(_known_undocumented)
    logger = logging.getLogger("bnlessons")
    logger.info(f"bnlessons: lessons execute with {blas_summary()}")
    cache_root = Path(os.environ["BNLESSONS_CACHE_DIR"])
    offset = [_cache.read_log(cache_root)[2]]  # lessons execute one after another

    def report(app: Sphinx, doctree: object) -> None:
        hits, misses, offset[0] = _cache.read_log(cache_root, offset[0])
        if hits or misses:
            docname = app.env.docname
            app.env.metadata[docname]["experiment_cache"] = {"hits": hits, "misses": misses}
            logger.info(f"bnlessons: {docname}: experiment cache {hits} hits, {misses} misses")

    def prune(app: Sphinx, exception: Exception | None) -> None:
        if exception is None:  # the stores this build used stay; older code's go past 2 GiB
            removed = _cache.prune(cache_root, since=started)
            if removed:
                logger.info(f"bnlessons: experiment cache: removed {len(removed)} unused stores")

    started = offset[0]
    app.connect("doctree-read", report)
    app.connect("build-finished", prune)
    app.connect("doctree-resolved", alt_from_caption)
    app.connect("html-page-context", accessible_html)


# -- Accessibility (axe-core finds no serious or critical violation; tests/test_site.py) -----

#: HTML that myst-nb and docutils write and axe-core flags, and what replaces it:
#: a summary named "Toggle hidden content" while it shows "Show code cell source" (label in
#: name, WCAG 2.5.3), and DPUB's deprecated doc-biblioentry, which is no listitem of its list.
A11Y_HTML = {
    '<summary aria-label="Toggle hidden content">': "<summary>",
    'role="doc-biblioentry"': 'role="listitem"',
}


def accessible_html(
    app: Sphinx, pagename: str, template: str, context: dict[str, object], doctree: object
) -> None:
    for old, new in A11Y_HTML.items():
        if isinstance(context.get("body"), str):
            context["body"] = str(context["body"]).replace(old, new)


def alt_from_caption(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """A figure's image without alt text gets its caption, as read, for alt text."""
    for figure in doctree.findall(nodes.figure):
        caption = next(figure.findall(nodes.caption), None)
        for image in figure.findall(nodes.image):
            if caption is not None and not image.get("alt"):
                image["alt"] = " ".join(caption.astext().split())
