"""Code linked to the library: sphinx-codeautolink over the built site.

Names in the lessons' code cells link to their entries on the API page (NumPy's and
Matplotlib's to the public documentation, resolved offline from ``docs/_inv``), and each API
entry lists the lessons whose code uses it. Needs ``make html``; ``make browser-test`` runs it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"
BATCHNORM = "bnlessons.batchnorm.BatchNorm"
LINK = re.compile(r'<a class="sphinx-codeautolink-a" href="([^"]+)"')
#: codeautolink's list of the code using an API entry; the entry's name is text, not a link
#: (a link inside the summary would nest controls).
EXAMPLES = re.compile(
    r"<details><summary>Expand for references to <code[^>]*><span class=\"pre\">([^<]+)</span>"
    r"</code></summary>.*?</details>",
    flags=re.DOTALL,
)


def links(page: str) -> list[str]:
    """The targets of the code links on a built page."""
    path = SITE / page
    if not path.is_file():
        pytest.fail(f"{path} missing: run `make html`")
    return LINK.findall(path.read_text(encoding="utf-8"))


@pytest.mark.browser
def test_every_lesson_links_its_code_to_the_api() -> None:
    lessons = sorted(p.relative_to(SITE).as_posix() for p in (SITE / "lessons").glob("*.html"))
    assert lessons
    for page in lessons:
        api = [h for h in links(page) if h.startswith("../docs/api.html#bnlessons.")]
        assert api, f"{page}: no code link to an API entry"
        anchors = (SITE / "docs" / "api.html").read_text(encoding="utf-8")
        for href in api:
            assert f'id="{href.split("#")[1]}"' in anchors, f"{page}: dead link {href}"


@pytest.mark.browser
def test_lessons_link_numpy_and_matplotlib_offline() -> None:
    targets = {h for p in (SITE / "lessons").glob("*.html") for h in links(f"lessons/{p.name}")}
    assert any(h.startswith("https://numpy.org/doc/stable/") for h in targets)
    assert any(h.startswith("https://matplotlib.org/stable/") for h in targets)


@pytest.mark.browser
def test_api_entries_list_the_lessons_that_use_them() -> None:
    html = (SITE / "docs" / "api.html").read_text(encoding="utf-8")
    examples = {m[1]: m[0] for m in EXAMPLES.finditer(html)}
    assert len(examples) >= 10, "API entries do not list the code that uses them"
    # The batch-norm layer is the lessons' subject: its entry names lessons using it, each by
    # the lesson's and the section's titles (not by titles of tables or admonitions above).
    titles = re.findall(r'href="../lessons/[^"#]+#[^"]+">([^<]+)<', examples[BATCHNORM])
    assert titles, "BatchNorm lists no lesson"
    for title in titles:
        assert 1 <= title.count(" / ") <= 3, f"not a lesson's section: {title}"
