"""The built site in a real browser: self-contained, typeset, searchable.

Serves ``_build/html`` (``make html``) on a free port of 127.0.0.1 and drives Debian's
Chromium through Playwright's ``executable_path`` (Playwright never downloads a browser here).
Every HTML page is visited once; the tests then check what was recorded:

* no failed request, no request to any host but the local server;
* no console error (a missing favicon aside);
* every ``<img>`` loaded;
* on lesson pages, MathJax typeset the math and no raw ``\\(`` or ``$$`` is left;
* every figure's image has alt text (its caption), not its file name;
* axe-core finds no serious or critical accessibility violation, in light and in dark mode
  (every page is visited once more with the browser preferring a dark colour scheme, which
  the theme's default "auto" mode follows);
* the search page finds the lessons for "running average" and "Frobenius";
* every lesson's exercises read "Exercise N.k", each followed by its solution, collapsed until
  its summary is clicked (axe-core runs again with the solutions open), and references to
  them read "Exercise N.k"; the edition without solutions (``make html SOLUTIONS=0``, served
  from ``_build/html-exercises``) shows the same numbered exercises and none of the
  solutions' prose or code.

It also saves screenshots of the landing page and of a lesson at 1280 px width, and of every
lesson in dark mode, under ``_build/screenshots/``. Run with ``make browser-test``;
``make test`` includes it.

The module also holds two checks of the documentation sources that need no browser (the
API page covers every module; every lesson has the jupytext front matter).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from make_pdf import CHROMIUM, CHROMIUM_ARGS  # one browser setup (tools/ is on pythonpath)

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"
#: The edition without solutions, ``make html SOLUTIONS=0``.
EXERCISES_SITE = ROOT / "_build" / "html-exercises"
SCREENSHOTS = ROOT / "_build" / "screenshots"
WIDTH, HEIGHT = 1280, 900
PAGE_TIMEOUT_MS = 60_000
#: axe-core, installed by ``npm ci`` in docs/ (docs/package.json) and injected from this file.
AXE = ROOT / "docs" / "node_modules" / "axe-core" / "axe.min.js"
#: The colour modes every page is checked in; the first is the one the other tests see.
MODES = ("light", "dark")
#: The axe-core impacts that fail the test (the others are "moderate" and "minor").
FAILING_IMPACTS = ("serious", "critical")

#: The search terms of issue 3 and the lesson pages that must be among the hits.
SEARCHES = {
    "running average": "lessons/07_batchnorm_in_practice.html",
    "Frobenius": "lessons/02_random_matrix_norms.html",
}

#: Text nodes inside these elements may legitimately contain TeX delimiters.
_RAW_MATH_JS = """
() => {
  const skip = new Set(["SCRIPT", "STYLE", "PRE", "CODE", "TEXTAREA", "MJX-CONTAINER",
                        "MJX-ASSISTIVE-MML"]);
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const found = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    let p = n.parentElement, skipped = false;
    while (p) {
      if (skip.has(p.tagName.toUpperCase())) { skipped = true; break; }
      p = p.parentElement;
    }
    if (skipped) continue;
    const t = n.textContent;
    for (const d of ["\\\\(", "\\\\)", "\\\\[", "\\\\]", "$$"]) {
      if (t.includes(d)) { found.push(t.trim().slice(0, 80)); break; }
    }
  }
  return found;
}
"""

_IMAGES_JS = """
() => Array.from(document.images).map(img => ({
  src: img.currentSrc || img.src, complete: img.complete, width: img.naturalWidth,
  alt: img.getAttribute("alt"), in_figure: img.closest("figure") !== null
}))
"""

#: axe-core's violations, with the nodes' selectors; run after ``AXE`` is injected.
_AXE_JS = """
async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.map(n => n.target.join(" "))
  }));
}
"""

_WAIT_MATHJAX_JS = """
async () => {
  const mj = window.MathJax;
  if (!mj || !mj.startup || !mj.startup.promise) return -1;
  await mj.startup.promise;
  if (mj.typesetPromise) await mj.typesetPromise();
  return document.querySelectorAll("mjx-container").length;
}
"""


# ------------------------------------------------------------------------------ helpers


def html_pages(site: Path) -> list[str]:
    """Every HTML page of the built site, as paths relative to its root."""
    pages = []
    for path in sorted(site.rglob("*.html")):
        rel = path.relative_to(site).as_posix()
        if rel.startswith(("_static/", "_sources/", "_images/", "_downloads/")):
            continue
        pages.append(rel)
    return pages


def is_lesson(page: str) -> bool:
    return page.startswith("lessons/")


@dataclass
class PageReport:
    """What the browser saw while loading one page."""

    page: str
    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    mathjax_elements: int = -1
    raw_math: list[str] = field(default_factory=list)
    mode: str = "light"
    theme: str = ""  # the theme the page ended up in (<html data-theme>)
    axe_violations: list[dict[str, Any]] = field(default_factory=list)


def _is_favicon(text: str) -> bool:
    return "favicon" in text


def _quiet_handler(directory: Path) -> type[http.server.SimpleHTTPRequestHandler]:
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(directory), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def site() -> Path:
    if not (SITE / "docs" / "index.html").is_file():
        pytest.fail(f"the site is not built ({SITE}/docs/index.html missing): run `make html`")
    return SITE


@contextlib.contextmanager
def _serve(directory: Path) -> Iterator[str]:
    """A local HTTP server for ``directory`` on a free port of 127.0.0.1; yields its URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _quiet_handler(directory))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def server(site: Path) -> Iterator[str]:
    """A local HTTP server for the built site on a free port of 127.0.0.1."""
    with _serve(site) as url:
        yield url


@pytest.fixture(scope="session")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Debian's Chromium driven by Playwright, with a fresh user data directory."""
    if not CHROMIUM.is_file():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}. Install Debian's package: "
            "`apt-get update && apt-get install -y chromium` as root "
            "(`make browser-test` does this when run as root)."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": WIDTH, "height": HEIGHT},
            service_workers="block",
        )
        context.set_default_timeout(PAGE_TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


def _wait_until_quiet(page: Any, in_flight: set[Any], quiet_ms: int = 500) -> None:
    """Wait until no request has been in flight for ``quiet_ms`` (Playwright's own
    ``networkidle`` is a one-shot lifecycle event and misses MathJax's late font loads)."""
    waited, quiet = 0, 0
    while quiet < quiet_ms:
        if waited > PAGE_TIMEOUT_MS:
            pending = sorted(r.url for r in in_flight)
            raise AssertionError(f"{page.url}: requests still pending: {pending}")
        page.wait_for_timeout(100)
        waited += 100
        quiet = quiet + 100 if not in_flight else 0


def _refresh_target(path: Path) -> str | None:
    """The URL a ``<meta http-equiv="refresh">`` page leads to (None for other pages)."""
    found = re.search(r'http-equiv="refresh" content="\d+; url=([^"]+)"', path.read_text())
    return found.group(1) if found else None


def _visit(context: Any, base: str, page_path: str, mode: str = "light") -> PageReport:
    """Load one page in colour mode ``mode``, record what the browser saw and run axe-core.

    The browser prefers ``mode``'s colour scheme, which the theme's "auto" mode follows.
    In dark mode a lesson is also saved as a full-page screenshot.
    """
    report = PageReport(page_path, mode=mode)
    page = context.new_page()
    page.emulate_media(color_scheme=mode)
    in_flight: set[Any] = set()

    def on_request(request: Any) -> None:
        report.requests.append(request.url)
        in_flight.add(request)

    def on_finished(request: Any) -> None:
        in_flight.discard(request)

    def on_failed(request: Any) -> None:
        in_flight.discard(request)
        if not _is_favicon(request.url):
            report.failed.append(f"{request.url} ({request.failure})")

    def on_response(response: Any) -> None:
        if response.status >= 400 and not _is_favicon(response.url):
            report.failed.append(f"{response.url} (HTTP {response.status})")

    def on_console(message: Any) -> None:
        if message.type == "error" and not _is_favicon(message.text + str(message.location)):
            report.console_errors.append(f"{message.text} at {message.location}")

    def on_page_error(error: Any) -> None:
        report.console_errors.append(f"uncaught: {error}")

    page.on("request", on_request)
    page.on("requestfinished", on_finished)
    page.on("requestfailed", on_failed)
    page.on("response", on_response)
    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    try:
        page.goto(base + page_path, wait_until="load")
        target = _refresh_target(SITE / page_path)
        if target is not None:  # a redirect page: look at the page it leads to, once loaded
            page.wait_for_url(urljoin(base + page_path, target), wait_until="load")
        if page.locator("script[src*='mathjax']").count():
            page.wait_for_function(
                "() => window.MathJax && window.MathJax.startup && window.MathJax.startup.promise"
            )
            report.mathjax_elements = int(page.evaluate(_WAIT_MATHJAX_JS))
        page.evaluate("() => { for (const img of document.images) img.loading = 'eager'; }")
        page.wait_for_function("() => Array.from(document.images).every(img => img.complete)")
        _wait_until_quiet(page, in_flight)
        report.images = page.evaluate(_IMAGES_JS)
        report.raw_math = page.evaluate(_RAW_MATH_JS)
        report.theme = str(page.evaluate("() => document.documentElement.dataset.theme"))
        page.add_script_tag(path=str(AXE))
        report.axe_violations = page.evaluate(_AXE_JS)
        if mode == "dark" and is_lesson(page_path):
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            out = SCREENSHOTS / f"dark-{Path(page_path).stem}.png"
            page.screenshot(path=str(out), full_page=True)
    finally:
        page.close()
    return report


@pytest.fixture(scope="session")
def axe_script() -> Path:
    if not AXE.is_file():
        pytest.fail(f"axe-core is missing ({AXE} not found): run `make assets` (npm ci in docs/)")
    return AXE


@pytest.fixture(scope="session")
def reports(
    site: Path, server: str, browser_context: Any, axe_script: Path
) -> dict[str, PageReport]:
    """Every HTML page of the site, visited once (in light mode)."""
    pages = html_pages(site)
    assert "docs/index.html" in pages
    return {page: _visit(browser_context, server, page, MODES[0]) for page in pages}


@pytest.fixture(scope="session")
def dark_reports(
    site: Path, server: str, browser_context: Any, axe_script: Path
) -> dict[str, PageReport]:
    """Every HTML page of the site, visited again in dark mode."""
    return {page: _visit(browser_context, server, page, "dark") for page in html_pages(site)}


# ------------------------------------------------------------------------------ browser tests


@pytest.mark.browser
def test_every_page_was_visited(site: Path, reports: dict[str, PageReport]) -> None:
    pages = html_pages(site)
    assert sorted(reports) == pages
    assert any(is_lesson(p) for p in pages), "no lesson page in the built site"
    assert {"index.html", "docs/index.html", "docs/api.html", "search.html"} <= set(pages)


@pytest.mark.browser
def test_no_request_leaves_the_local_server(server: str, reports: dict[str, PageReport]) -> None:
    external = {
        page: [u for u in r.requests if not u.startswith((server, "data:", "blob:", "about:"))]
        for page, r in reports.items()
    }
    external = {page: urls for page, urls in external.items() if urls}
    assert external == {}, f"requests to other hosts: {external}"
    assert all(r.requests for r in reports.values())


@pytest.mark.browser
def test_no_failed_request(reports: dict[str, PageReport]) -> None:
    failed = {page: r.failed for page, r in reports.items() if r.failed}
    assert failed == {}, f"failed requests: {failed}"


@pytest.mark.browser
def test_no_console_error(reports: dict[str, PageReport]) -> None:
    errors = {page: r.console_errors for page, r in reports.items() if r.console_errors}
    assert errors == {}, f"console errors: {errors}"


@pytest.mark.browser
def test_every_image_loaded(reports: dict[str, PageReport]) -> None:
    broken = {
        page: [img["src"] for img in r.images if not img["complete"] or img["width"] <= 0]
        for page, r in reports.items()
    }
    broken = {page: srcs for page, srcs in broken.items() if srcs}
    assert broken == {}, f"images that did not load: {broken}"
    lesson_images = sum(len(r.images) for page, r in reports.items() if is_lesson(page))
    assert lesson_images > 0, "the lessons show no figure at all"


@pytest.mark.browser
def test_every_figure_has_alt_text(reports: dict[str, PageReport]) -> None:
    missing = {
        page: [img["src"] for img in r.images if not _is_alt_text(img["alt"], img["src"])]
        for page, r in reports.items()
    }
    missing = {page: srcs for page, srcs in missing.items() if srcs}
    assert missing == {}, f"images without alt text (or with their file name as alt): {missing}"
    figures = [img for r in reports.values() for img in r.images if img["in_figure"]]
    assert figures, "no figure found"
    short = [img["alt"] for img in figures if len(img["alt"].split()) < 5]
    assert short == [], f"figures with too short an alt text (not their caption?): {short}"


def _is_alt_text(alt: str | None, src: str) -> bool:
    """Alt text that says something: not missing, empty, a path or the image's file name."""
    return bool(alt and alt.strip()) and Path(alt).name not in src


@pytest.mark.browser
@pytest.mark.parametrize("mode", MODES)
def test_no_serious_accessibility_violation(
    mode: str, reports: dict[str, PageReport], dark_reports: dict[str, PageReport]
) -> None:
    checked = reports if mode == MODES[0] else dark_reports
    wrong_theme = {page: r.theme for page, r in checked.items() if r.theme != mode}
    assert wrong_theme == {}, f"pages not shown in {mode} mode: {wrong_theme}"
    found = {
        page: [
            f"{v['id']} ({v['impact']}): {v['help']} -- {', '.join(v['targets'])}"
            for v in r.axe_violations
            if v["impact"] in FAILING_IMPACTS
        ]
        for page, r in sorted(checked.items())
    }
    found = {page: violations for page, violations in found.items() if violations}
    listing = "\n".join(f"{page}:\n  " + "\n  ".join(vs) for page, vs in found.items())
    assert found == {}, f"axe-core violations in {mode} mode:\n{listing}"


@pytest.mark.browser
def test_dark_mode_pages_load_cleanly(dark_reports: dict[str, PageReport]) -> None:
    problems = {
        page: r.failed + r.console_errors
        for page, r in dark_reports.items()
        if r.failed or r.console_errors
    }
    assert problems == {}, f"failed requests or console errors in dark mode: {problems}"
    lessons = sorted(page for page in dark_reports if is_lesson(page))
    shots = [SCREENSHOTS / f"dark-{Path(page).stem}.png" for page in lessons]
    small = [str(shot) for shot in shots if not shot.is_file() or shot.stat().st_size < 10_000]
    assert lessons and small == [], f"dark-mode lesson screenshots missing or empty: {small}"


@pytest.mark.browser
def test_math_is_typeset_on_every_lesson(reports: dict[str, PageReport]) -> None:
    lessons = {page: r for page, r in reports.items() if is_lesson(page)}
    assert lessons
    untypeset = {
        page: r.mathjax_elements for page, r in lessons.items() if r.mathjax_elements <= 0
    }
    assert untypeset == {}, f"lesson pages without typeset math (MathJax elements): {untypeset}"
    raw = {page: r.raw_math for page, r in reports.items() if r.raw_math}
    assert raw == {}, f"raw TeX delimiters left in the text: {raw}"


@pytest.mark.browser
def test_mathjax_is_served_by_the_site(server: str, reports: dict[str, PageReport]) -> None:
    lesson = next(r for page, r in sorted(reports.items()) if is_lesson(page))
    mathjax = [u for u in lesson.requests if "mathjax" in u.lower()]
    assert mathjax, "no MathJax request on a lesson page"
    assert all(u.startswith(server + "_static/mathjax/") for u in mathjax), mathjax
    assert any(u.endswith(".woff") for u in mathjax), "MathJax fonts were not loaded"


@pytest.mark.browser
@pytest.mark.parametrize(("query", "lesson"), sorted(SEARCHES.items()))
def test_search_finds_the_lesson(
    server: str, browser_context: Any, query: str, lesson: str
) -> None:
    page = browser_context.new_page()
    try:
        page.goto(f"{server}search.html?q={query.replace(' ', '+')}", wait_until="load")
        page.wait_for_function(
            "() => { const s = document.querySelector('#search-results .search-summary');"
            " return s && /found|did not match/i.test(s.textContent); }"
        )
        hrefs = page.eval_on_selector_all(
            "#search-results ul.search li a", "els => els.map(a => a.getAttribute('href'))"
        )
    finally:
        page.close()
    hits = {re.sub(r"[?#].*$", "", h) for h in hrefs}
    assert lesson in hits, f"search for {query!r} did not list {lesson}; hits: {sorted(hits)}"


@pytest.mark.browser
def test_screenshots(server: str, browser_context: Any, reports: dict[str, PageReport]) -> None:
    lesson = min(page for page in reports if is_lesson(page))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, path in (("landing", "docs/index.html"), ("lesson", lesson)):
        page = browser_context.new_page()
        try:
            page.goto(server + path, wait_until="load")
            if page.locator("script[src*='mathjax']").count():
                page.wait_for_function(
                    "() => window.MathJax && MathJax.startup && MathJax.startup.promise"
                )
                page.evaluate(_WAIT_MATHJAX_JS)
            assert page.viewport_size == {"width": WIDTH, "height": HEIGHT}
            out = SCREENSHOTS / f"{name}.png"
            page.screenshot(path=str(out), full_page=True)
        finally:
            page.close()
        assert out.stat().st_size > 10_000, f"{out} looks empty"


@pytest.mark.browser
def test_lessons_offer_notebook_and_source(site: Path, reports: dict[str, PageReport]) -> None:
    for page in (p for p in reports if is_lesson(p)):
        stem = page.removesuffix(".html")
        notebook = site / "_sources" / f"{stem}.ipynb"
        source = site / "_sources" / f"{stem}.md"
        assert notebook.is_file() and source.is_file(), page
        assert '"outputs": [' in notebook.read_text(encoding="utf-8")
        html = (site / page).read_text(encoding="utf-8")
        depth = "../" * page.count("/")
        assert f'href="{depth}_sources/{stem}.ipynb"' in html, page
        assert f'href="{depth}_sources/{stem}.md"' in html, page


@pytest.mark.browser
def test_lessons_offer_a_readers_notebook_and_the_wheel(
    site: Path, reports: dict[str, PageReport]
) -> None:
    """The .ipynb is for plain Jupyter (no MyST, no myst-nb import), and each lesson page
    links the library's wheel, which the site holds, in its two lines on running it."""
    wheels = sorted((site / "wheel").glob("bnlessons-*-py3-none-any.whl"))
    assert len(wheels) == 1, wheels
    for page in (p for p in reports if is_lesson(p)):
        stem = page.removesuffix(".html")
        text = (site / "_sources" / f"{stem}.ipynb").read_text(encoding="utf-8")
        for myst in ("{glue:", "{claim}", "{cite:", "{class}", "{func}", "```{", "myst_nb"):
            assert myst not in text, (page, myst)
        html = (site / page).read_text(encoding="utf-8")
        depth = "../" * page.count("/")
        assert f'href="{depth}wheel/{wheels[0].name}"' in html, page
        assert f"pip install {wheels[0].name} jupyterlab" in re.sub(r"<[^>]+>", "", html), page


# ------------------------------------------------------------------------------ exercises

#: Each exercise block of a page: its anchor, its title, and the solution that follows it.
_EXERCISES_JS = """
() => {
  const text = el => el ? el.textContent.replace(/\\s+/g, " ").trim() : null;
  return Array.from(document.querySelectorAll("div.exercise")).map(ex => {
    const next = ex.nextElementSibling;
    const solution = next && next.classList.contains("solution") ? next : null;
    return {
      id: ex.id, title: text(ex.querySelector(".admonition-title")),
      solution: solution && {tag: solution.tagName.toLowerCase(), open: solution.open,
                             summary: text(solution.querySelector(":scope > summary"))},
    };
  });
}
"""

#: The text of an element without its typeset math, whitespace collapsed (math aside, what
#: the page says): of every paragraph and code block of the solutions, or of the whole page.
_PLAIN_JS = """
(selector) => {
  const plain = el => {
    const copy = el.cloneNode(true);
    copy.querySelectorAll("mjx-container, .math, script, style").forEach(m => m.remove());
    return copy.textContent.replace(/\\s+/g, " ").trim();
  };
  return Array.from(document.querySelectorAll(selector)).map(plain).filter(s => s.length > 0);
}
"""

#: Links to an exercise, and what they read.
_EXERCISE_LINKS_JS = """
() => Array.from(document.querySelectorAll("a[href*='#ex-']")).map(a => ({
  href: a.getAttribute("href"), text: a.textContent.trim()
}))
"""


@dataclass
class ExercisePage:
    """What a lesson page shows of its exercises (in one edition)."""

    exercises: list[dict[str, Any]]
    links: list[dict[str, str]] = field(default_factory=list)
    solution_texts: list[str] = field(default_factory=list)  # the solutions' prose and code
    text: str = ""  # the whole page, math aside
    hidden_before: list[bool] = field(default_factory=list)  # each solution's body, as loaded
    visible_after: list[bool] = field(default_factory=list)  # ... after a click on its summary
    axe_violations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # per mode


def _typeset(page: Any) -> None:
    if page.locator("script[src*='mathjax']").count():
        page.wait_for_function(
            "() => window.MathJax && MathJax.startup && MathJax.startup.promise"
        )
        page.evaluate(_WAIT_MATHJAX_JS)


def _exercise_page(
    context: Any, url: str, *, open_solutions: bool, modes: tuple[str, ...] = MODES
) -> ExercisePage:
    """Load a lesson, read its exercises, open every solution with a click (``open_solutions``)
    and run axe-core with them open, in each colour mode of ``modes``."""
    result = None
    for mode in modes:
        page = context.new_page()
        page.emulate_media(color_scheme=mode)
        try:
            page.goto(url, wait_until="load")
            _typeset(page)
            if result is None:
                result = ExercisePage(page.evaluate(_EXERCISES_JS))
                result.links = page.evaluate(_EXERCISE_LINKS_JS)
                result.solution_texts = page.evaluate(
                    _PLAIN_JS, ".solution .solution-content p, .solution .solution-content pre"
                )
                result.text = page.evaluate(_PLAIN_JS, "body")[0]
            summaries = page.locator("details.solution > summary")
            for k in range(summaries.count() if open_solutions else 0):
                body = page.locator("details.solution > .solution-content").nth(k)
                if mode == MODES[0]:
                    result.hidden_before.append(body.is_hidden())
                summaries.nth(k).click()
                if mode == MODES[0]:
                    result.visible_after.append(body.is_visible())
            page.add_script_tag(path=str(AXE))
            result.axe_violations[mode] = page.evaluate(_AXE_JS)
        finally:
            page.close()
    assert result is not None
    return result


def _lesson_number(page: str) -> int:
    return int(Path(page).name[:2])


def _check_numbering(page: str, exercises: list[dict[str, Any]]) -> None:
    """Exercise N.k, k = 1, 2, ... in order (N the lesson), anchored at ex-NN-k."""
    n = _lesson_number(page)
    assert exercises, f"{page}: no exercise"
    for k, exercise in enumerate(exercises, 1):
        assert re.fullmatch(rf"Exercise {n}\.{k}( \(.+\))?", exercise["title"]), (page, exercise)
        assert exercise["id"] == f"ex-{n:02d}-{k}", (page, exercise)


def _serious(violations: list[dict[str, Any]]) -> list[str]:
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {v['targets'][:3]}"
        for v in violations
        if v["impact"] in FAILING_IMPACTS
    ]


@pytest.fixture(scope="session")
def exercise_pages(
    site: Path, server: str, browser_context: Any, axe_script: Path
) -> dict[str, ExercisePage]:
    """Every lesson of the site with solutions, its solutions opened one by one."""
    lessons = [page for page in html_pages(site) if is_lesson(page)]
    return {
        page: _exercise_page(browser_context, server + page, open_solutions=True)
        for page in lessons
    }


@pytest.mark.browser
def test_exercises_have_collapsed_solutions(exercise_pages: dict[str, ExercisePage]) -> None:
    """Numbered exercises, each followed by its solution: collapsed as loaded, opened by a
    click, accessible open (axe-core, light and dark mode)."""
    for page, found in exercise_pages.items():
        _check_numbering(page, found.exercises)
        for exercise in found.exercises:
            solution = exercise["solution"]
            assert solution is not None, (page, exercise, "no solution after it")
            assert solution["tag"] == "details" and not solution["open"], (page, exercise)
            number = exercise["title"].split(" (")[0]
            assert solution["summary"].startswith(f"Solution to {number}"), (page, solution)
        count = len(found.exercises)
        assert found.hidden_before == [True] * count, (page, found.hidden_before)
        assert found.visible_after == [True] * count, (page, found.visible_after)
        assert found.solution_texts, page
        for mode, violations in found.axe_violations.items():
            assert not _serious(violations), (page, mode, _serious(violations))


@pytest.mark.browser
def test_the_text_refers_to_exercises(exercise_pages: dict[str, ExercisePage]) -> None:
    """A reference to an exercise reads "Exercise N.k" and leads to its block."""
    links = [(page, link) for page, found in exercise_pages.items() for link in found.links]
    assert len({page for page, _ in links}) >= 3, links
    for page, link in links:
        target = re.search(r"(?:(\d\d)_[\w]+\.html)?#ex-(\d\d)-(\d+)$", link["href"])
        assert target is not None, (page, link)
        lesson = int(target.group(2))
        assert target.group(1) in (None, target.group(2)), (page, link)
        assert link["text"] == f"Exercise {lesson}.{target.group(3)}", (page, link)


@pytest.mark.browser
def test_edition_without_solutions(
    browser_context: Any, axe_script: Path, exercise_pages: dict[str, ExercisePage]
) -> None:
    """``make html SOLUTIONS=0``: the same numbered exercises, and no solution, neither its
    prose nor its code, nor a download that holds it; axe-core passes (light mode: the blocks
    and their styles are those of the edition with solutions, checked in both modes)."""
    if not (EXERCISES_SITE / "docs" / "index.html").is_file():
        pytest.fail("the exercises edition is not built: run `make html SOLUTIONS=0`")
    assert not list(EXERCISES_SITE.rglob("*.ipynb")), "a notebook (with solutions) is offered"
    assert not (EXERCISES_SITE / "_sources" / "lessons").exists(), "sources hold solutions"
    with _serve(EXERCISES_SITE) as base:
        landing = _exercise_page(
            browser_context, base + "docs/index.html", open_solutions=False, modes=MODES[:1]
        )
        assert "This is the exercises edition" in landing.text
        for page, with_solutions in exercise_pages.items():
            found = _exercise_page(
                browser_context, base + page, open_solutions=False, modes=MODES[:1]
            )
            _check_numbering(page, found.exercises)
            assert [e["title"] for e in found.exercises] == [
                e["title"] for e in with_solutions.exercises
            ], page
            assert all(e["solution"] is None for e in found.exercises), page
            assert "Solution to" not in found.text, page
            shown = [s for s in with_solutions.solution_texts if s in found.text]
            assert not shown, (page, shown[:3])
            for mode, violations in found.axe_violations.items():
                assert not _serious(violations), (page, mode, _serious(violations))
    assert "This is the exercises edition" not in (SITE / "docs" / "index.html").read_text()


# ------------------------------------------------------------------------------ source checks


def _library_modules() -> set[str]:
    package = ROOT / "src" / "bnlessons"
    return {
        f"bnlessons.{p.stem}"
        for p in package.glob("*.py")
        if p.stem == "__main__" or not p.stem.startswith("_")
    }


def test_api_page_documents_every_module() -> None:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\.\. automodule:: (\S+)", text, flags=re.MULTILINE))
    expected = {
        f"bnlessons.{m}"
        for m in (
            "gradients",
            "random_matrices",
            "batchnorm",
            "running_stats",
            "mnist",
            "checks",
            "symbolic",
            "mlp",
            "training",
            "figures",
            "__main__",
        )
    }
    assert expected <= listed
    undocumented = _library_modules() - listed
    assert not undocumented, f"modules missing from docs/api.md: {sorted(undocumented)}"
    unwritten = listed - _library_modules()
    assert not unwritten, f"docs/api.md lists modules that do not exist: {sorted(unwritten)}"


def test_lessons_have_jupytext_front_matter() -> None:
    lessons = sorted((ROOT / "lessons").glob("*.md"))
    assert lessons
    for lesson in lessons:
        head = lesson.read_text(encoding="utf-8").split("---", 2)[1]
        assert "format_name: myst" in head, lesson.name
        assert "kernelspec:" in head, lesson.name


#: The skeleton of docs/guides/writing-a-lesson.md: the fixed box and the fixed headings.
BOX_TITLE = "What the notes say, what the numbers say"
BOX_CLASS = "tip"


def _skeleton_part(heading: str) -> str:
    """The part of the skeleton a ``##`` heading belongs to ("check" for the free titles)."""
    if heading.endswith(", as the notes give it"):
        return "notes"
    fixed = {"The derivation": "derivation", "Summary": "summary", "Exercises": "exercises"}
    return fixed.get(heading, "next" if heading == "Next" else "check")


def _check_exercises(name: str, section: str) -> None:
    """Exercise blocks labelled ex-NN-k (lesson NN, k-th exercise), each followed by its
    solution, collapsed, in sphinx-exercise's gated syntax (section 7 of the guide)."""
    labels = re.findall(r"^```\{exercise-start\}.*\n:label: (\S+)$", section, flags=re.M)
    assert labels == [f"ex-{name[:2]}-{k}" for k in range(1, len(labels) + 1)], (name, labels)
    assert labels, name
    solutions = re.findall(r"^```\{solution-start\} (\S+)\n:class: dropdown$", section, re.M)
    assert solutions == labels, (name, solutions)
    gates = re.findall(r"^```\{(exercise|solution)-(start|end)\}", section, flags=re.M)
    one = [("exercise", "start"), ("exercise", "end"), ("solution", "start"), ("solution", "end")]
    assert gates == one * len(labels), (name, gates)
    assert "**Exercise" not in section and "{dropdown}" not in section, name


def test_lessons_follow_the_skeleton() -> None:
    """Notes, derivation (optional), checks, one box, Summary, Exercises, Next: in this order."""
    order = ["notes", "derivation", "check", "box", "summary", "exercises", "next"]
    lessons = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.md"))
    assert len(lessons) >= 7
    for lesson in lessons:
        text = lesson.read_text(encoding="utf-8")
        body = re.sub(r"```\{code-cell\}.*?\n```\n", "", text, flags=re.DOTALL)  # no # comments
        assert len(re.findall(r"^# ", body, flags=re.MULTILINE)) == 1, lesson.name
        parts = []
        for match in re.finditer(r"^## (.+)$|^:::\{admonition\} (.+)\n:class: (\S+)", body, re.M):
            heading, title, cls = match.groups()
            if heading is None:
                assert (title, cls) == (BOX_TITLE, BOX_CLASS), (lesson.name, title, cls)
                parts.append("box")
            else:
                parts.append(_skeleton_part(heading))
        assert parts.count("box") == 1 and parts.count("notes") == 1, (lesson.name, parts)
        assert parts.count("derivation") <= 1 and "check" in parts, (lesson.name, parts)
        assert parts[-4:] == ["box", "summary", "exercises", "next"], (lesson.name, parts)
        ranks = [order.index(p) for p in parts]
        assert ranks == sorted(ranks), (lesson.name, parts)
        _check_exercises(lesson.name, body.split("\n## Exercises\n", 1)[1].split("\n## Next\n")[0])
        assert "{doc}`" in body.split("\n## Next\n", 1)[1], lesson.name


@pytest.mark.browser
def test_tooltip_shows_on_hover_and_focus(server: str, browser_context: Any, site: Path) -> None:
    """A claim's tooltip (tests/test_checks_page.py holds the rest of the claims contract)."""
    checks = json.loads((site / "checks.json").read_text(encoding="utf-8"))
    docname, entry = min(checks["lessons"].items())
    claim = entry["claims"][0]
    page = browser_context.new_page()
    try:
        page.goto(f"{server}{docname}.html")
        mark = page.locator(f'[data-claim$="/{claim["id"]}"]')
        tip = mark.locator('[role="tooltip"]')
        assert not tip.is_visible()
        mark.locator("button").focus()  # keyboard
        assert tip.is_visible()
        assert claim["statement"] in tip.inner_text()
        described = mark.locator("button").get_attribute("aria-describedby")
        assert described == tip.get_attribute("id")
        page.evaluate("document.activeElement.blur()")
        page.mouse.move(0, 0)
        assert not tip.is_visible()
        mark.locator(".claim-value").hover()  # pointer
        assert tip.is_visible()
    finally:
        page.close()
