"""The claims on the built site: marked on their lesson pages, listed on the Checks page.

Reads ``_build/html`` (``make html``) and its ``checks.json``, which the build writes from what
the lessons recorded (docs/_ext/bnsite/claims.py). The contract, which these tests hold:

* every claim's value on its lesson page is wrapped in an element carrying
  ``data-claim="<lesson>/<id>"``, once per claim on the whole site, with the statement and
  the numbers in a tooltip that hover and keyboard focus show;
* the Checks page lists every claim, links it to its sentence and gives the totals; the landing
  page links it with the total;
* every lesson page and the Checks page say what they were built from.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from test_site import SITE, site  # noqa: F401  (the fixture)

pytestmark = pytest.mark.browser

DATA_CLAIM = re.compile(r'data-claim="([^"]+)"')


@pytest.fixture(scope="module")
def checks(site: Path) -> dict[str, Any]:  # noqa: F811
    data: dict[str, Any] = json.loads((site / "checks.json").read_text(encoding="utf-8"))
    return data


def _claims(checks: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (docname, claim)
        for docname, entry in sorted(checks["lessons"].items())
        for claim in entry["claims"]
    ]


def _html(page: str) -> str:
    return (SITE / page).read_text(encoding="utf-8")


def test_every_lesson_has_claims(checks: dict[str, Any]) -> None:
    lessons = sorted(p.stem for p in (SITE.parent.parent / "lessons").glob("*.md"))
    recorded = {d.rsplit("/", 1)[-1]: len(e["claims"]) for d, e in checks["lessons"].items()}
    assert sorted(recorded) == lessons
    assert {name: n for name, n in recorded.items() if n == 0} == {}


def test_each_claim_is_marked_once_on_its_page(checks: dict[str, Any]) -> None:
    everywhere = Counter(
        key for page in SITE.rglob("*.html") for key in DATA_CLAIM.findall(page.read_text())
    )
    expected = Counter(f"{d.rsplit('/', 1)[-1]}/{c['id']}" for d, c in _claims(checks))
    assert everywhere == expected
    for docname, claim in _claims(checks):
        page = _html(f"{docname}.html")
        lesson = docname.rsplit("/", 1)[-1]
        mark = re.search(
            rf'<span class="claim" data-claim="{lesson}/{claim["id"]}" id="claim-{claim["id"]}">'
            r'<span class="claim-value">([^<]*)</span>.*?role="tooltip"[^>]*>([^<]*)</span>',
            page,
        )
        assert mark is not None, (docname, claim["id"])
        value, tip = (html.unescape(m) for m in mark.groups())
        if claim["text"] not in ("figure", "table"):
            assert value == claim["text"]
        assert claim["statement"].replace("'", "") in tip.replace("'", "")
        assert claim["holds"] is True


def test_checks_page_lists_every_claim_with_totals(checks: dict[str, Any]) -> None:
    page = _html("docs/checks.html")
    claims = _claims(checks)
    for docname, claim in claims:
        link = f'href="../{docname}.html#claim-{claim["id"]}"'
        assert link in page, (docname, claim["id"])
    asserts = sum(e["source"]["asserts"] for e in checks["lessons"].values())
    lessons = len(checks["lessons"])
    total = f"{len(claims)} claims in {lessons} lessons, {len(claims)} holding"
    assert total in page
    assert f"{asserts} assertions" in page
    for entry in checks["lessons"].values():
        assert f"{len(entry['claims'])} claims, {entry['source']['asserts']} further" in page


def test_landing_page_links_the_total(checks: dict[str, Any]) -> None:
    total = len(_claims(checks))
    links = re.findall(r'<a [^>]*href="checks.html"[^>]*>([^<]*)</a>', _html("docs/index.html"))
    assert f"{total} claims checked when this site was built" in links


def test_provenance_on_lesson_pages_and_checks_page(checks: dict[str, Any]) -> None:
    build = checks["build"]
    fields = [build["commit"], build["library"], build["numpy"], build["python"], build["blas"]]
    assert re.fullmatch(r"[0-9a-f]{12}|unknown", build["commit"])
    for docname in [*checks["lessons"], "docs/checks"]:
        page = _html(f"{docname}.html")
        missing = [f for f in fields if f not in page]
        assert missing == [], (docname, missing)
    for docname, entry in checks["lessons"].items():
        page = _html(f"{docname}.html")
        assert "Seeds in this lesson: " in page and "Its cells ran in " in page, docname
        assert ("taken from the notebook cache" in page) == entry["from_cache"], docname
