"""Sphinx configuration for the bnlessons site.

The source directory is the repository root: ``docs/`` (landing page, guides, API reference)
and ``lessons/`` (MyST notebooks executed at build time) are read, everything else is
excluded. Build with ``make html``; see ``docs/guides/building.md``.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "docs" / "_ext"))
sys.path.insert(0, str(ROOT / "src"))

import bnsite  # noqa: E402  (the local extension, found through the path set just above)
from docutils import nodes  # noqa: E402
from sphinx.application import Sphinx  # noqa: E402
from sphinx.util import logging  # noqa: E402

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
    "sphinxcontrib.bibtex",
    "bnsite",
]

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

# -- Bibliography --------------------------------------------------------------------------

bibtex_bibfiles = ["docs/references.bib"]
bibtex_default_style = "plain"
bibtex_reference_style = "author_year"

# -- Doctest builder -----------------------------------------------------------------------

doctest_global_setup = "import numpy as np"
doctest_test_doctest_blocks = ""  # only {doctest} blocks; docstrings run under pytest

# -- HTML ----------------------------------------------------------------------------------

html_theme = "sphinx_book_theme"
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

# MathJax is served by the site itself: npm installs mathjax@3 into docs/node_modules and the
# local extension copies it into _static/mathjax (relative paths are taken from _static).
mathjax_path = "mathjax/tex-mml-chtml.js"

copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
copybutton_exclude = ".linenos, .gp, .go"

# sphinx-autodoc-typehints 3.6 calls an API that Sphinx 9 deprecates; the Python warning is
# noise on stderr (it is not a Sphinx warning and does not fail -W).
warnings.filterwarnings("ignore", message=".*set_application.*", category=DeprecationWarning)


def setup(app: Sphinx) -> None:
    """Log the numerical configuration, and each lesson's experiment-cache hits and misses."""
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

    app.connect("doctree-read", report)
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
