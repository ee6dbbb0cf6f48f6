"""Print the built site to PDF with Chromium: the whole site as one file, and each lesson alone.

``make pdf`` runs it after ``make html``::

    python tools/make_pdf.py _build/html

It serves the site on a free port of 127.0.0.1 and drives Debian's Chromium through
Playwright (the browser of ``tests/test_site.py``; Playwright never downloads one), then
writes ``pdf/bnlessons.pdf`` (every page of the table of contents, in its order) and
``pdf/<lesson>.pdf`` for each lesson into the site, where the landing page and the lessons'
download menus link them.

Each PDF starts with a title page naming the commit and the library digest the site was
built from (as its pages state them, from the build's ``checks.json``), and numbers its
pages in the footer. The pages are printed as they are read, with the site's navigation
hidden: MathJax typesets the math first, every image is loaded, hidden plotting code stays
hidden and solutions are shown. Links between the printed pages become links inside the PDF;
links to pages that are not in it are kept as text.
"""

from __future__ import annotations

import argparse
import html
import http.server
import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
#: The launch arguments (tests/test_site.py launches the browser test with these too).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 120_000
#: Where the PDFs go, relative to the site root (conf.py links the same names).
PDF_DIR = "pdf"
WHOLE = "bnlessons.pdf"
LANDING = "docs/index.html"

PRINT_CSS = """
@page { size: A4; }
.bd-header, .bd-header-article, .bd-sidebar-primary, .bd-sidebar-secondary, .bd-footer,
.bd-footer-article, .bd-footer-content, .prev-next-area, .skip-link, #pst-back-to-top,
.header-article, button, a.headerlink, .copybtn, details.hide > summary,
#pst-skip-link, .search-button-field, .theme-switch-button, .onlyprint {
  display: none !important;
}
.bd-main .bd-content .bd-article h1:first-of-type { display: block !important; }
html, body { background: white !important; }
.bd-page-width, .bd-main, .bd-main .bd-content, .bd-article-container, .bd-content {
  max-width: none !important; width: 100% !important; margin: 0 !important;
  padding: 0 !important;
}
.bd-main .bd-content .bd-article-container .bd-article { padding: 0 !important; }
pre { white-space: pre-wrap !important; overflow: visible !important; word-break: break-word; }
figure, img, table, .cell_input, .cell_output, .admonition, .sd-card,
mjx-container[display="true"] {
  break-inside: avoid;
}
h1, h2, h3, h4 { break-after: avoid; }
.bnpdf-part + .bnpdf-part { break-before: page; }
.bnpdf-title { break-after: page; padding-top: 35%; text-align: center; }
.bnpdf-title .bnpdf-site { font-size: 1.1rem; color: #555; }
.bnpdf-title h1 { font-size: 2.2rem; margin: 0.6em 0 1.4em; }
.bnpdf-title dl { display: inline-grid; grid-template-columns: auto auto; gap: 0.3em 1.2em;
  text-align: left; font-size: 0.95rem; }
.bnpdf-title dt { font-weight: bold; }
.bnpdf-title dd { margin: 0; font-family: monospace; }
.bnpdf-title .bnpdf-note { margin-top: 3em; font-size: 0.85rem; color: #555; }
"""

#: Puts ``parts`` (URLs of built pages) into this page's article, one section each, typesets
#: the math, and turns links between them into links inside the document. The first part is
#: the page itself.
_ASSEMBLE_JS = """
async ({parts, titleHtml}) => {
  const host = document.querySelector("article.bd-article");
  if (!host) throw new Error("no article.bd-article on " + location.href);
  const sections = [];
  for (const [i, url] of parts.entries()) {
    let article = host;
    if (i > 0) {
      const response = await fetch(url);
      if (!response.ok) throw new Error(url + ": HTTP " + response.status);
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      article = doc.querySelector("article.bd-article");
      if (!article) throw new Error("no article.bd-article on " + url);
    }
    const section = document.createElement("section");
    section.className = "bnpdf-part";
    section.id = "bnpdf-" + i;
    section.dataset.url = new URL(url, location.href).href;
    for (const el of article.querySelectorAll("[src]"))
      el.setAttribute("src", new URL(el.getAttribute("src"), url).href);
    for (const el of article.querySelectorAll("[id]")) el.id = "bnpdf-" + i + "-" + el.id;
    section.append(...Array.from(article.childNodes));
    sections.push(section);
  }
  host.replaceChildren(...sections);
  host.insertAdjacentHTML("afterbegin", titleHtml);
  const index = new Map(sections.map((s, i) => [s.dataset.url.split("#")[0], i]));
  for (const section of sections) {
    for (const a of section.querySelectorAll("a[href]")) {
      const href = a.getAttribute("href");
      const target = new URL(href, section.dataset.url);
      if (target.origin !== location.origin) continue;
      const i = index.get(target.href.split("#")[0]);
      if (i === undefined) { a.removeAttribute("href"); continue; }
      const frag = target.hash ? "-" + decodeURIComponent(target.hash.slice(1)) : "";
      const id = "bnpdf-" + i + frag;
      a.setAttribute("href", "#" + (document.getElementById(id) ? id : "bnpdf-" + i));
    }
  }
  for (const d of document.querySelectorAll("details:not(.hide)")) d.open = true;
  for (const img of document.images) img.loading = "eager";
  const math = document.querySelectorAll(".math, .eqno, mjx-container").length;
  if (math) {
    const mj = window.MathJax;
    if (!mj || !mj.startup || !mj.startup.promise) throw new Error("MathJax did not load");
    await mj.startup.promise;
    await mj.typesetPromise();
  }
  await Promise.all(Array.from(document.images).map(img => img.decode()));
  await document.fonts.ready;
  return {
    math,
    mathjax: document.querySelectorAll("mjx-container").length,
    errors: document.querySelectorAll("mjx-merror").length,
    images: document.images.length,
  };
}
"""


#: The width of the printed text (A4 less the margins) in CSS pixels, and a script that shrinks
#: display math wider than that (which the page would clip) until it fits.
TEXT_WIDTH_PX = round((210 - 30) / 25.4 * 96)
_FIT_MATH_JS = """
() => {
  let shrunk = 0;
  for (const m of document.querySelectorAll('mjx-container[display="true"]')) {
    const [full, room] = [m.scrollWidth, m.clientWidth];
    if (room > 0 && full > room + 1) {
      m.style.fontSize = (100 * room / full).toFixed(1) + "%";
      shrunk++;
    }
  }
  return shrunk;
}
"""


def pdf_name(page: str) -> str:
    """Return the PDF file name of a built lesson page (relative to the site root).

    >>> pdf_name("lessons/01_chain_gradients.html")
    '01_chain_gradients.pdf'
    """
    return Path(page).with_suffix(".pdf").name


def build_stamp(site: Path) -> dict[str, str]:
    """The commit and library digest the site was built from, as its pages state them
    (``checks.json``, written by the build; see docs/_ext/bnsite/claims.py)."""
    facts = json.loads((site / "checks.json").read_text(encoding="utf-8"))["build"]
    return {"commit": str(facts["commit"]), "digest": str(facts["library"])}


def title_page(site_title: str, title: str, *, commit: str, digest: str) -> str:
    """Return the HTML of a title page."""
    e = html.escape
    return (
        '<section class="bnpdf-title">'
        f'<p class="bnpdf-site">{e(site_title)}</p><h1>{e(title)}</h1>'
        f"<dl><dt>Commit</dt><dd>{e(commit)}</dd>"
        f"<dt>Library digest</dt><dd>{e(digest)}</dd></dl>"
        '<p class="bnpdf-note">Printed from the built site: every number, figure and table '
        "was computed when the site was built from this commit.</p></section>"
    )


@contextmanager
def serve(site: Path) -> Iterator[str]:
    """Serve ``site`` on a free port of 127.0.0.1; yield its base URL."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(site), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def footer(title: str) -> str:
    """Return Chromium's footer template: the title and ``page / pages``."""
    return (
        '<div style="font-size:8px;font-family:sans-serif;color:#555;width:100%;'
        'margin:0 15mm;display:flex;justify-content:space-between">'
        f'<span>{html.escape(title)}</span><span><span class="pageNumber"></span> / '
        '<span class="totalPages"></span></span></div>'
    )


def print_pdf(
    context: Any, base: str, parts: list[str], out: Path, *, title: str, title_html: str
) -> int:
    """Print ``parts`` (pages relative to ``base``) into one PDF at ``out``; return its size."""
    page = context.new_page()
    errors: list[str] = []
    in_flight: set[Any] = set()

    def failed(request: Any) -> None:
        in_flight.discard(request)
        errors.append(f"{request.url} ({request.failure})")

    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: in_flight.add(request))
    page.on("requestfinished", lambda request: in_flight.discard(request))
    page.on("requestfailed", failed)
    try:
        page.goto(base + parts[0], wait_until="load")
        page.add_style_tag(content=PRINT_CSS)
        page.evaluate("title => { document.title = title; }", title)  # the PDF's metadata
        found = page.evaluate(
            _ASSEMBLE_JS, {"parts": [base + p for p in parts], "titleHtml": title_html}
        )
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < 0.5:  # no request for half a second
            page.wait_for_timeout(100)
            if in_flight:
                quiet_since = time.monotonic()
        if found["errors"] or (found["math"] and not found["mathjax"]):
            errors.append(f"MathJax did not typeset the math: {found}")
        if errors:
            raise SystemExit(f"make_pdf: {out.name}: {'; '.join(errors)}")
        page.emulate_media(media="print")
        page.set_viewport_size({"width": TEXT_WIDTH_PX, "height": 1000})
        page.evaluate(_FIT_MATH_JS)
        tmp = out.with_suffix(".pdf.part")
        page.pdf(
            path=tmp,
            format="A4",
            margin={
                "top": "15mm",
                "bottom": "18mm",
                "left": "15mm",
                "right": "15mm",
            },  # TEXT_WIDTH_PX
            print_background=True,
            display_header_footer=True,
            header_template="<span></span>",
            footer_template=footer(title),
            outline=True,
            tagged=True,
        )
        tmp.replace(out)
    finally:
        page.close()
    return out.stat().st_size


def table_of_contents(context: Any, base: str) -> tuple[str, dict[str, str]]:
    """Return the site's title and its pages with their titles, in reading order.

    The landing page comes first, then the pages of its navigation sidebar.
    """
    page = context.new_page()
    try:
        page.goto(base + LANDING, wait_until="domcontentloaded")
        site_title = str(page.eval_on_selector("h1", "h => h.firstChild.textContent.trim()"))
        links: list[list[str]] = page.eval_on_selector_all(
            ".bd-docs-nav a.reference.internal",
            "els => els.map(a => [a.href, a.textContent.trim()])",
        )
    finally:
        page.close()
    pages = {LANDING: site_title}
    for href, text in links:
        pages.setdefault(href.removeprefix(base).split("#")[0], text)
    return site_title, pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("site", type=Path, nargs="?", default=ROOT / "_build" / "html")
    args = parser.parse_args(argv)
    site: Path = args.site
    if not (site / LANDING).is_file():
        raise SystemExit(f"make_pdf: {site / LANDING} missing: run `make html` first")
    if not CHROMIUM.is_file():
        raise SystemExit(f"make_pdf: Chromium not found at {CHROMIUM} (`make chromium`)")
    from playwright.sync_api import sync_playwright

    out_dir = site / PDF_DIR
    out_dir.mkdir(exist_ok=True)
    stamp = build_stamp(site)
    started = time.perf_counter()
    with serve(site) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        context = browser.new_context(service_workers="block", color_scheme="light")
        context.set_default_timeout(TIMEOUT_MS)
        try:
            site_title, pages = table_of_contents(context, base)
            jobs = [(list(pages), WHOLE, "All lessons, guides and the API reference")]
            jobs += [([p], pdf_name(p), pages[p]) for p in pages if p.startswith("lessons/")]
            for parts, name, heading in jobs:
                t0 = time.perf_counter()
                title = site_title if name == WHOLE else f"{heading} — {site_title}"
                size = print_pdf(
                    context,
                    base,
                    parts,
                    out_dir / name,
                    title=title,
                    title_html=title_page(site_title, heading, **stamp),
                )
                print(
                    f"make_pdf: {PDF_DIR}/{name}: {len(parts)} page(s) of the site, "
                    f"{size // 1024} KiB, {time.perf_counter() - t0:.1f} s"
                )
        finally:
            context.close()
            browser.close()
    print(f"make_pdf: done in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
