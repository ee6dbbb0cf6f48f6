"""The local Sphinx extension, docs/_ext/bnsite/ (pytest finds it through ``pythonpath``)."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import bnsite
import jupyter_client
import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient
from numpy.typing import ArrayLike, NDArray

NDARRAY = r":py:data:`~numpy.typing.NDArray`\ \["


# ------------------------------------------------------------------------ the cache key


def _tree(root: Path) -> Path:
    package = root / "pkg"
    (package / "data").mkdir(parents=True)
    (package / "mod.py").write_text("x = 1\n")
    (package / "data" / "table.npz").write_bytes(b"\x00\x01")
    return package


def test_library_digest_changes_with_any_file(tmp_path: Path) -> None:
    package = _tree(tmp_path)
    before = bnsite.library_digest(package, root=tmp_path)
    assert bnsite.library_digest(package, root=tmp_path) == before
    (package / "data" / "table.npz").write_bytes(b"\x00\x02")
    assert bnsite.library_digest(package, root=tmp_path) != before


def test_library_digest_sees_names_and_extra_files(tmp_path: Path) -> None:
    package = _tree(tmp_path)
    pins = tmp_path / "constraints.txt"
    pins.write_text("numpy==2.4.6\n")
    before = bnsite.library_digest(package, pins, root=tmp_path)
    (package / "mod.py").rename(package / "other.py")
    renamed = bnsite.library_digest(package, pins, root=tmp_path)
    assert renamed != before
    pins.write_text("numpy==2.4.7\n")
    assert bnsite.library_digest(package, pins, root=tmp_path) != renamed


def test_library_digest_ignores_byte_code(tmp_path: Path) -> None:
    package = _tree(tmp_path)
    before = bnsite.library_digest(package, root=tmp_path)
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"compiled")
    (package / "stray.pyc").write_bytes(b"compiled")
    (package / ".mypy_cache").mkdir()
    (package / ".mypy_cache" / "x.json").write_text("{}")
    assert bnsite.library_digest(package, root=tmp_path) == before


def test_prune_caches_keeps_the_newest(tmp_path: Path) -> None:
    for age, name in enumerate(["new", "newer_than_old", "old", "oldest"]):
        (tmp_path / name).mkdir()
        os.utime(tmp_path / name, (1e9 - age * 100, 1e9 - age * 100))
    (tmp_path / "a_file").write_text("not a cache")
    kept = bnsite.prune_caches(tmp_path, "current", max_kept=3)
    assert kept == tmp_path / "current"
    assert not kept.exists()  # created by jupyter-cache, not here
    assert {p.name for p in tmp_path.iterdir()} == {"new", "newer_than_old", "a_file"}


def test_prune_caches_counts_the_current_cache(tmp_path: Path) -> None:
    for name in ("current", "other"):
        (tmp_path / name).mkdir()
    bnsite.prune_caches(tmp_path, "current", max_kept=1)
    assert [p.name for p in tmp_path.iterdir()] == ["current"]
    assert bnsite.prune_caches(tmp_path / "missing", "x") == tmp_path / "missing" / "x"


# ------------------------------------------------------------------------ notebook offer


def _html_app(outdir: Path, *, solutions: bool = True) -> Any:
    return SimpleNamespace(
        outdir=str(outdir),
        builder=SimpleNamespace(format="html"),
        config=SimpleNamespace(bn_solutions=solutions),
    )


def test_lesson_offers_its_readers_notebook(tmp_path: Path, monkeypatch: Any) -> None:
    outdir = tmp_path / "html"
    executed = tmp_path / "jupyter_execute" / "lessons" / "01_x.ipynb"
    executed.parent.mkdir(parents=True)
    markdown = {"cell_type": "markdown", "metadata": {}, "source": "N = {glue:text}`n:,`"}
    executed.write_text(json.dumps({"metadata": {}, "cells": [markdown]}))
    glue = {"n": {"output_type": "display_data", "data": {"text/plain": "8000"}, "metadata": {}}}
    executed.with_suffix(".glue.json").write_text(json.dumps(glue))
    site = bnsite.Site(baseurl="https://example.org/", docname="")
    monkeypatch.setattr(bnsite, "site_for", lambda app, docname: site)
    context: dict[str, Any] = {"sourcename": "lessons/01_x.md"}
    bnsite.offer_notebook(_html_app(outdir), "lessons/01_x", "page.html", context, object())
    offered = json.loads((outdir / "_sources" / "lessons" / "01_x.ipynb").read_text())
    first, preface = (c["source"] for c in offered["cells"])
    assert first == "N = 8,000"
    assert preface.startswith(
        "*The reader's notebook of [this lesson](https://example.org/lessons/01_x.html).*"
    )
    assert context["ipynb_source"] == "lessons/01_x.ipynb"


def test_edition_without_solutions_offers_no_notebook(tmp_path: Path) -> None:
    """The executed notebook holds the solutions (``make html SOLUTIONS=0``)."""
    executed = tmp_path / "jupyter_execute" / "lessons" / "01_x.ipynb"
    executed.parent.mkdir(parents=True)
    executed.write_text('{"cells": []}')
    context: dict[str, Any] = {"sourcename": "lessons/01_x.md"}
    app = _html_app(tmp_path / "html", solutions=False)
    bnsite.offer_notebook(app, "lessons/01_x", "page.html", context, object())
    assert "ipynb_source" not in context and not (tmp_path / "html").exists()


def test_pages_without_an_executed_notebook_offer_none(tmp_path: Path) -> None:
    app = _html_app(tmp_path / "html")
    context: dict[str, Any] = {"sourcename": "docs/api.md"}
    bnsite.offer_notebook(app, "docs/api", "page.html", context, object())
    executed = tmp_path / "jupyter_execute" / "nb.ipynb"
    executed.parent.mkdir()
    executed.write_text("{}")
    notebook_source: dict[str, Any] = {"sourcename": "nb.ipynb"}  # the theme offers it itself
    bnsite.offer_notebook(app, "nb", "page.html", notebook_source, object())
    assert "ipynb_source" not in context and "ipynb_source" not in notebook_source
    assert not (tmp_path / "html").exists()


# ------------------------------------------------------------------------ exercises


def test_exercises_are_numbered_by_lesson() -> None:
    """Sphinx numbers exercises across the site (5, 6, 7 here, in document order); a lesson's
    become (lesson, 1), (lesson, 2), ...; figures and pages that are no lesson keep theirs."""
    from bnsite.exercises import number_by_lesson, restore_sequential_numbers

    env: Any = SimpleNamespace(
        toc_fignumbers={
            "lessons/03_x": {
                "exercise": {"ex-03-2": (6,), "ex-03-1": (5,)},
                "figure": {"fig-a": (2,)},
            },
            "lessons/12_y": {"exercise": {"ex-12-1": (7,)}},
            "docs/guide": {"exercise": {"example": (1,)}},
        }
    )
    assert number_by_lesson(SimpleNamespace(), env) == []
    assert env.toc_fignumbers == {
        "lessons/03_x": {
            "exercise": {"ex-03-1": (3, 1), "ex-03-2": (3, 2)},
            "figure": {"fig-a": (2,)},
        },
        "lessons/12_y": {"exercise": {"ex-12-1": (12, 1)}},
        "docs/guide": {"exercise": {"example": (1,)}},
    }
    # Sphinx's numbers come back before it numbers again, so that it finds nothing changed
    assert restore_sequential_numbers(SimpleNamespace(), env) == []
    assert env.toc_fignumbers["lessons/03_x"]["exercise"] == {"ex-03-2": (6,), "ex-03-1": (5,)}
    assert env.toc_fignumbers["lessons/12_y"]["exercise"] == {"ex-12-1": (7,)}


# ------------------------------------------------------------------------ types


@pytest.fixture
def config() -> Any:
    """The settings of conf.py that sphinx-autodoc-typehints reads while formatting."""
    return SimpleNamespace(
        typehints_formatter=bnsite.ConfigHook(bnsite.format_typehint),
        typehints_fixup_module_name=bnsite.ConfigHook(bnsite.public_module),
        typehints_fully_qualified=False,
        always_use_bars_union=False,
    )


def test_arrays_are_written_as_ndarray_of_their_scalar(config: Any) -> None:
    assert bnsite.format_typehint(NDArray[np.float64], config) == (
        NDARRAY + ":py:class:`~numpy.float64`]"
    )
    floating = bnsite.format_typehint(NDArray[np.floating[Any]], config)
    assert floating is not None
    assert floating.startswith(NDARRAY + ":py:class:`~numpy.floating`")


def test_numpy_unions_keep_their_names(config: Any) -> None:
    assert bnsite.format_typehint(ArrayLike, config) == ":py:data:`~numpy.typing.ArrayLike`"
    assert bnsite.format_typehint(ArrayLike | None, config) == (
        ":py:data:`~numpy.typing.ArrayLike` | :py:obj:`None`"
    )


def test_other_types_are_left_to_sphinx_autodoc_typehints(config: Any) -> None:
    assert bnsite.format_typehint(int, config) is None
    assert bnsite.format_typehint(list[int] | None, config) is None
    assert bnsite.format_typehint(NDArray[np.float64]) is None  # no config: signatures


def test_public_module_drops_private_parts() -> None:
    assert bnsite.public_module("numpy.random._generator") == "numpy.random"
    assert bnsite.public_module("matplotlib.axes._axes") == "matplotlib.axes"
    assert bnsite.public_module("pathlib") == "pathlib"


class _Stats:
    @property
    def mean(self) -> NDArray[np.float64]:
        """The mean."""
        return np.zeros(1)


def test_properties_get_the_type_of_their_getter(config: Any) -> None:
    app: Any = SimpleNamespace(config=config)
    lines = ["The mean."]
    bnsite.add_property_type(app, "property", "m", _Stats.mean, None, lines)
    assert lines == ["The mean.", "", ":type: " + NDARRAY + ":py:class:`~numpy.float64`]"]
    typed = ["The mean.", "", ":type: float"]
    bnsite.add_property_type(app, "property", "m", _Stats.mean, None, typed)
    assert typed == ["The mean.", "", ":type: float"]


def test_config_hooks_survive_pickling() -> None:
    hook = bnsite.ConfigHook(bnsite.public_module)
    assert pickle.loads(pickle.dumps(hook)) == hook
    assert hook != bnsite.ConfigHook(bnsite.format_typehint)
    assert hook("numpy._core") == "numpy"


# ------------------------------------------------------------------------ kernels


@pytest.fixture
def ipc_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    """:func:`bnsite.use_ipc_kernels` for one test (jupyter_client is restored after it)."""
    monkeypatch.setattr(jupyter_client, "AsyncKernelManager", jupyter_client.AsyncKernelManager)
    bnsite.use_ipc_kernels()


@pytest.mark.usefixtures("ipc_kernels")
def test_notebook_kernels_run_over_ipc(capfd: pytest.CaptureFixture[str]) -> None:
    code = "from ipykernel.kernelapp import IPKernelApp\nprint(IPKernelApp.instance().transport)"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    client = NotebookClient(nb, timeout=60)
    assert client.kernel_manager_class is bnsite.IpcKernelManager
    client.execute()
    assert nb.cells[0].outputs[0]["text"].strip() == "ipc"
    assert "without encryption" not in capfd.readouterr().err


def test_lesson_source_facts_counts_cells_checks_and_seeds(tmp_path: Path) -> None:
    from bnsite.claims import _lesson_source_facts

    lesson = tmp_path / "99_x.md"
    lesson.write_text(
        "---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n"
        "    format_version: 0.13\nkernelspec:\n  display_name: Python 3\n"
        "  name: python3\n---\n# X\n\n"
        "```{code-cell} ipython3\n:tags: [remove-cell]\n\n%matplotlib inline\n"
        "rng = np.random.default_rng(seed=7)\nSEEDS = range(3, 6)\nassert True\n```\n\n"
        "```{code-cell} ipython3\nclaim('a', 1, 's', below=2)\nglue('b', 2)\n"
        "run(config, seed=11)\nother = np.random.default_rng(12)\nassert 1 < 2, 'x'\n"
        "STEPS, EVERY, SEEDS = 2_000, 200, (20, 21)\nSEED = 30\n```\n",
        encoding="utf-8",
    )
    facts = _lesson_source_facts(lesson)
    assert facts == {
        "cells": 2,
        "removed": 1,
        "asserts": 2,
        "glue": 1,
        "claims": 1,
        "seeds": [3, 4, 5, 7, 11, 12, 20, 21, 30],
    }


def test_checks_and_landing_pages_are_resolved_again_when_a_lesson_changes() -> None:
    from types import SimpleNamespace

    from bnsite.claims import CHECKS_DOC, outdated

    app = SimpleNamespace(config=SimpleNamespace(root_doc="docs/index"))
    env = SimpleNamespace(found_docs={"docs/index", CHECKS_DOC, "lessons/01_x"})
    assert outdated(app, env, set(), {"lessons/01_x"}, set()) == [CHECKS_DOC, "docs/index"]  # type: ignore[arg-type]
    assert outdated(app, env, set(), {"docs/api"}, set()) == []  # type: ignore[arg-type]
