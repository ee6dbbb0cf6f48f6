"""Tests of the package itself: its top-level names and the cost of importing it."""

from __future__ import annotations

import importlib
import subprocess
import sys

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
