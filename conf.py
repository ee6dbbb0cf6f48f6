"""Sphinx configuration for the bnlessons site (source directory: the repository root)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "docs" / "_ext"))
sys.path.insert(0, str(ROOT / "src"))

project = "bnlessons"
author = "bnlessons contributors"
copyright = "2026, bnlessons contributors"

root_doc = "docs/index"
include_patterns = ["docs/**", "lessons/**"]
exclude_patterns = [
    ".venv",
    "_build",
    "jupyter_execute",
    "node_modules",
    "docs/node_modules",
    "docs/_inv",
    "src",
    "tests",
    "benchmarks",
    ".ci",
    ".github",
    "**.ipynb_checkpoints",
    "README.md",
]

extensions = [
    "myst_nb",
]

nb_execution_mode = "cache"
nb_execution_cache_path = str(ROOT / "_build" / ".jupyter_cache")
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_timeout = 600

html_theme = "sphinx_book_theme"
