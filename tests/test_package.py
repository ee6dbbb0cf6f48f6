"""Tests of the package itself: its top-level names and the cost of importing it."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import bnlessons


def test_top_level_names_are_those_of_their_modules() -> None:
    assert sorted(bnlessons.__all__) == sorted(bnlessons._HOMES)
    for name, home in bnlessons._HOMES.items():
        module = importlib.import_module(f"bnlessons.{home}")
        assert getattr(bnlessons, name) is getattr(module, name), name
        assert name in module.__all__, (name, home)
        assert name in dir(bnlessons)


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        bnlessons.nope  # noqa: B018


def test_importing_the_package_loads_nothing_heavy() -> None:
    code = (
        "import sys, bnlessons; "
        "print(sorted(m for m in ('numpy', 'sympy', 'matplotlib', 'tqdm') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    code = "import sys, bnlessons as bn; bn.BatchNorm; print('sympy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "bnlessons"


def _readme_modules() -> list[str]:
    """The module names of the README's layout block, under ``src/bnlessons/``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    names: list[str] = []
    inside = False
    for line in block.splitlines():
        if line.startswith("src/bnlessons/"):
            inside = True
            continue
        if inside and line and not line.startswith(" "):
            break  # the next top-level folder
        # "  name  description" or "  name (+ data/)  description": two spaces end the name
        match = re.match(r"\s+(_{0,2}[a-z][a-z_]*_{0,2})(?: \([^)]*\))?\s{2,}\S", line)
        if inside and match:
            names.append(match.group(1))
    return names


def test_readme_layout_lists_every_module_of_the_package_once() -> None:
    listed = _readme_modules()
    assert len(listed) == len(set(listed)), listed
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert set(listed) == modules, (
        f"README lists {sorted(set(listed) - modules)} that do not exist and misses "
        f"{sorted(modules - set(listed))}"
    )


def test_every_public_module_has_its_test_module() -> None:
    for path in PACKAGE.glob("*.py"):
        if path.stem.startswith("_") and path.stem not in {"__main__", "_validate"}:
            continue
        name = path.stem.strip("_")
        assert (ROOT / "tests" / f"test_{name}.py").is_file(), path.name
