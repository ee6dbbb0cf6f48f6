"""bnlessons.claims: each check decides by its own rule, failures name what failed, and the
record goes where the runner of the lesson finds it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from bnlessons import claims
from bnlessons.claims import Claim, ClaimError, claim, to_python


@pytest.fixture(autouse=True)
def plain_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(claims.SITE_ENV, raising=False)


@pytest.mark.parametrize(
    ("check", "value", "holds"),
    [
        ({"below": 1.0}, 0.999, True),
        ({"below": 1.0}, 1.0, False),  # strict
        ({"above": 2.0}, 2.5, True),
        ({"above": 2.0}, 2.0, False),
        ({"between": (1.0, 2.0)}, 1.5, True),
        ({"between": (1.0, 2.0)}, 2.0, False),
        ({"near": 10.0, "rtol": 0.01}, 10.1, True),
        ({"near": 10.0, "rtol": 0.01}, 10.2, False),
        ({"near": 0.0, "atol": 1e-3}, -9e-4, True),
        ({"near": 0.0, "atol": 1e-3}, float("nan"), False),
        ({"holds": np.bool_(True)}, "anything", True),
        ({"holds": False}, 3, False),
    ],
)
def test_each_check_decides_by_its_rule(
    check: dict[str, object], value: object, holds: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    if holds:
        result = claim("c", value, "the statement", **check)  # type: ignore[arg-type]
        assert result.holds
        assert capsys.readouterr().out.startswith("✓ c: the statement (")
    else:
        with pytest.raises(ClaimError, match=r"claim 'c' does not hold: the statement \("):
            claim("c", value, "the statement", **check)  # type: ignore[arg-type]
        assert capsys.readouterr().out == ""  # nothing recorded for a false claim


def test_failure_names_the_numbers() -> None:
    with pytest.raises(ClaimError) as info:
        claim(
            "gap",
            np.float32(0.25),
            "BN is ahead",
            between=(0.3, 1),
            fmt=".2f",
            values={"bn": np.array([0.9, 0.95]), "plain": 0.7},
        )
    message = str(info.value)
    assert "0.30 < 0.25 < 1.00" in message  # bounds in the value's format
    assert "bn = [0.9 , 0.95]" in message and "plain = 0.7" in message


def test_the_record_has_the_formatted_value_and_tolerance() -> None:
    result = claim("acc", np.float64(0.94567), "accuracy above 0.9", above=0.9, fmt=".3f")
    assert result == Claim(
        id="acc",
        text="0.946",
        statement="accuracy above 0.9",
        check="0.946 > 0.900",
        holds=True,
        values={},
        tolerance="0.900",
    )
    near = claim("n", 10.05, "about ten", near=10, rtol=0.01, atol=0.001)
    assert near.tolerance == "rtol 0.01, atol 0.001"
    assert near.check == "|10.05 − 10| ≤ 0.101"
    percent = claim("p", 0.002497, "a quarter of a percent", below=0.0025, fmt=".4%")
    assert percent.check == "0.2497% < 0.2500%"
    steps = claim("s", 2000, "fewer steps", below=2500.5, fmt=",")
    assert steps.check == "2,000 < 2,500.5"
    assert claim("i", 3, "an int format", below=5.5, fmt="d").check == "3 < 5.5"  # fallback


def test_a_claim_shows_itself_once() -> None:
    """A cell that ends in claim(...) must not print the record a second time."""
    result = claim("x", 1.0, "one", below=2)
    assert result._ipython_display_() is None


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, TypeError, "exactly one check.*none"),
        ({"below": 1, "above": 0}, TypeError, r"exactly one check.*\['above', 'below'\]"),
        ({"below": 1, "rtol": 0.1}, TypeError, "exactly one check"),
        ({"near": 1.0}, ValueError, "rtol > 0 or atol > 0"),
        ({"near": 1.0, "rtol": -1.0}, ValueError, "rtol > 0 or atol > 0"),
        ({"below": "1"}, TypeError, "below must be a real number, got str"),
        ({"between": 3}, TypeError, r"between must be a pair \(lo, hi\), got 3"),
        ({"holds": 1}, TypeError, "holds must be a bool, got int"),
    ],
)
def test_bad_checks_are_clear_errors(kwargs: dict[str, object], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        claim("c", 0.5, "s", **kwargs)  # type: ignore[arg-type]


def test_bad_id_statement_and_value() -> None:
    with pytest.raises(ValueError, match=r"id must be a name.*'a b'"):
        claim("a b", 1.0, "s", below=2)
    with pytest.raises(ValueError, match="statement must be a non-empty string"):
        claim("a", 1.0, " ", below=2)
    with pytest.raises(TypeError, match="value must be a real number, got str"):
        claim("a", "x", "s", below=2)


def test_to_python_converts_numpy_scalars() -> None:
    converted = [to_python(v) for v in (np.float32(0.5), np.int64(7), np.bool_(False))]
    assert converted == [0.5, 7, False]
    assert [type(v) for v in converted] == [float, int, bool]
    assert to_python(np.array(2.5)) == 2.5 and type(to_python(np.array(2.5))) is float
    assert isinstance(to_python(np.arange(3)), np.ndarray)


KERNEL_CODE = """
import json, os
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.displaypub import DisplayPublisher
published = []
class Keep(DisplayPublisher):
    def publish(self, data, metadata=None, **kwargs):
        published.append({"data": data, "metadata": metadata or {}})
shell = InteractiveShell.instance()
shell.display_pub = Keep(shell=shell)
from bnlessons.claims import claim, glue
claim("err", 3e-9, "small", below=1e-6, fmt=".1e")
glue("steps", 500)
print(json.dumps(published))
"""


@pytest.mark.parametrize("site", [False, True])
def test_outputs_in_a_kernel(site: bool) -> None:
    """In the site build a claim is glued (myst-nb's format, the claim in the metadata); in a
    reader's kernel it is a visible line with the same record in the metadata."""
    env = {"BNLESSONS_SITE": "1"} if site else {}
    import os

    done = subprocess.run(
        [sys.executable, "-c", KERNEL_CODE],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != claims.SITE_ENV} | env,
    )
    published = json.loads(done.stdout.strip().splitlines()[-1])
    record = {
        "id": "err",
        "text": "3.0e-09",
        "statement": "small",
        "check": "3.0e-09 < 1.0e-06",
        "holds": True,
        "values": {},
        "tolerance": "1.0e-06",
    }
    if site:
        assert len(published) == 2  # the claim and the plain value, both glued
        first, second = published
        assert first["metadata"]["scrapbook"] == {"name": "err", "mime_prefix": claims.GLUE_PREFIX}
        assert first["metadata"]["bnlessons"]["claim"] == record
        assert first["data"] == {claims.GLUE_PREFIX + "text/plain": "3e-09"}
        assert second["metadata"]["scrapbook"]["name"] == "steps"
        assert second["data"] == {claims.GLUE_PREFIX + "text/plain": "500"}
    else:
        assert published == [
            {
                "data": {"text/plain": "✓ err: small (3.0e-09 < 1.0e-06)"},
                "metadata": {"bnlessons": {"claim": record}},
            }
        ]  # a number glued outside the site shows nothing: the text already has it
