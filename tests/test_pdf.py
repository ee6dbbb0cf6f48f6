"""The printed site: ``make pdf`` (tools/make_pdf.py) wrote complete PDFs, and the pages link them.

Checks the PDFs in ``_build/html/pdf`` against the built HTML, with ``pypdf``:

* the whole site and every lesson have a PDF, and the landing page and each lesson link theirs;
* the title page names the commit and the library digest of the build;
* every glued number of a lesson's prose is in its PDF and in the whole-site PDF;
* every figure of a lesson is an image in its PDF;
* no raw TeX is left (MathJax typeset everything before printing);
* page counts are plausible and the footer numbers the pages.

Run with ``make browser-test`` (which runs ``make pdf`` first); ``make test`` includes it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from functools import cached_property
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"
PDF_DIR = SITE / "pdf"
WHOLE = PDF_DIR / "bnlessons.pdf"
RAW_TEX = ("\\frac", "$$", "\\(", "\\)", "\\[", "\\]", "\\begin{", "\\mathbb")
LESSON_PAGES = (3, 60)


def lessons() -> list[str]:
    """The lesson pages of the built site, relative to its root."""
    return sorted(p.relative_to(SITE).as_posix() for p in (SITE / "lessons").glob("*.html"))


def normalize(text: str) -> str:
    """Text without whitespace, with one spelling of the minus sign."""
    return re.sub(r"\s+", "", text).replace("\u2212", "-")


class _ArticleParser(HTMLParser):
    """Collects the glued text, the images and the code text of a page's article."""

    def __init__(self) -> None:
        super().__init__()
        self.glued: list[str] = []
        self.images = 0
        self.code: list[str] = []  # text shown as code, where TeX may stand as written
        self._glue: list[str] | None = None
        self._code = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag == "img":
            self.images += 1
        elif tag == "span" and "pasted-text" in classes:
            self._glue = []
        elif tag in ("code", "pre"):
            self._code += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "span" and self._glue is not None:
            self.glued.append("".join(self._glue).strip())
            self._glue = None
        elif tag in ("code", "pre") and self._code:
            self._code -= 1

    def handle_data(self, data: str) -> None:
        if self._glue is not None:
            self._glue.append(data)
        if self._code:
            self.code.append(data)


@dataclass
class Printed:
    """A PDF with its text per page and its images per page."""

    path: Path

    @cached_property
    def reader(self) -> object:
        from pypdf import PdfReader

        return PdfReader(self.path)

    @cached_property
    def pages(self) -> list[str]:
        return [page.extract_text() or "" for page in self.reader.pages]  # type: ignore[attr-defined]

    @cached_property
    def text(self) -> str:
        return normalize("".join(self.pages))

    @cached_property
    def images(self) -> int:
        return sum(len(page.images) for page in self.reader.pages)  # type: ignore[attr-defined]


def article(page: str) -> _ArticleParser:
    """What the article of a built page shows (articles do not nest)."""
    html = (SITE / page).read_text(encoding="utf-8")
    start = html.index('<article class="bd-article">')
    parser = _ArticleParser()
    parser.feed(html[start : html.index("</article>", start)])
    return parser


@pytest.fixture(scope="session")
def printed() -> dict[str, Printed]:
    """The whole-site PDF (key ``""``) and each lesson's (key: the lesson page)."""
    if not WHOLE.is_file():
        pytest.fail(f"{WHOLE} missing: run `make pdf`")
    found = {"": Printed(WHOLE)}
    for page in lessons():
        path = PDF_DIR / Path(page).with_suffix(".pdf").name
        assert path.is_file(), f"{page} has no PDF ({path} missing)"
        found[page] = Printed(path)
    return found


@pytest.mark.browser
def test_every_lesson_is_printed(printed: dict[str, Printed]) -> None:
    assert len(lessons()) >= 6
    assert set(printed) == {"", *lessons()}


@pytest.mark.browser
def test_pages_link_their_pdf(printed: dict[str, Printed]) -> None:
    landing = (SITE / "docs" / "index.html").read_text(encoding="utf-8")
    assert landing.count('href="../pdf/bnlessons.pdf"') >= 2  # in the text and the menu
    for page in lessons():
        html = (SITE / page).read_text(encoding="utf-8")
        href = f"../pdf/{printed[page].path.name}"
        assert f'href="{href}"' in html, f"{page} does not link {href}"
        assert (SITE / "lessons" / href).resolve() == printed[page].path.resolve()


def _library_digest() -> str:
    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    import bnsite

    return str(bnsite.library_digest(ROOT / "src" / "bnlessons", ROOT / ".ci" / "constraints.txt"))


@pytest.mark.browser
def test_title_page_names_commit_and_digest(printed: dict[str, Printed]) -> None:
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    commit = head.stdout.strip() if head.returncode == 0 else "unknown"
    digest = _library_digest()
    for key, pdf in printed.items():
        title = normalize(pdf.pages[0])
        assert f"Commit{commit}" in title, f"{pdf.path.name}: {pdf.pages[0]!r}"
        assert f"Librarydigest{digest}" in title, f"{pdf.path.name}: {pdf.pages[0]!r}"
        if key:
            heading = normalize(pdf.pages[1])
            assert heading, f"{pdf.path.name}: the lesson does not start on page 2"


@pytest.mark.browser
def test_glued_numbers_are_printed(printed: dict[str, Printed]) -> None:
    whole = printed[""].text
    for page in lessons():
        numbers = [g for g in article(page).glued if re.search(r"\d", g)]
        assert numbers, f"{page}: no glued number in the HTML"
        missing = [g for g in numbers if normalize(g) not in printed[page].text]
        assert not missing, f"{page}: glued numbers missing from its PDF: {missing}"
        missing = [g for g in numbers if normalize(g) not in whole]
        assert not missing, f"{page}: glued numbers missing from the whole-site PDF: {missing}"


@pytest.mark.browser
def test_every_figure_is_printed(printed: dict[str, Printed]) -> None:
    total = 0
    for page in lessons():
        figures = article(page).images
        assert printed[page].images >= figures, (
            f"{page}: {figures} images in the HTML, {printed[page].images} in its PDF"
        )
        total += figures
    assert total > 0
    assert printed[""].images >= total


@pytest.mark.browser
def test_no_raw_tex(printed: dict[str, Printed]) -> None:
    """TeX delimiters appear only as often as the printed pages show them as code."""
    pages = [p.relative_to(SITE).as_posix() for p in sorted((SITE / "docs").rglob("*.html"))]
    shown = {page: normalize("".join(article(page).code)) for page in pages + lessons()}
    for key, pdf in printed.items():
        code = shown[key] if key else "".join(shown.values())
        raw = {d: pdf.text.count(d) for d in RAW_TEX if pdf.text.count(d) > code.count(d)}
        assert not raw, f"{pdf.path.name}: raw TeX in the text (delimiter: count): {raw}"


@pytest.mark.browser
def test_page_counts_and_numbers(printed: dict[str, Printed]) -> None:
    low, high = LESSON_PAGES
    for key, pdf in printed.items():
        n = len(pdf.pages)
        if key:
            assert low <= n <= high, f"{pdf.path.name}: {n} pages"
        assert normalize(f"{n} / {n}") in normalize(pdf.pages[-1]), pdf.path.name
        assert normalize(f"1 / {n}") in normalize(pdf.pages[0]), pdf.path.name
    lesson_pages = sum(len(printed[p].pages) - 1 for p in lessons())  # without title pages
    assert len(printed[""].pages) > lesson_pages
