"""MyST Markdown as plain Markdown, for the reader's notebook (:mod:`bnsite.reader`).

:class:`Converter` rewrites the Markdown cells of a lesson's executed notebook: glued values
(myst-nb's ``glue:*`` roles and directives, the site's ``{claim}``) become their text, table,
math or attached image; references and citations become links to the hosted site and
author--year text; admonitions, dropdowns, tables, math and exercise blocks become Markdown
(``<details>`` for dropdowns and solutions). A role or directive it does not know is a
:class:`ReaderError`, so the build stops rather than offer raw MyST. What it needs from the
site comes in a :class:`Site`.
"""

from __future__ import annotations

import re
from ast import literal_eval
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHECK = "✓"

ROLE = re.compile(r"\{(?P<name>[a-zA-Z][\w:-]*)\}`(?P<body>[^`]+)`")
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|:{3,})(?P<info>.*)$")
DIRECTIVE = re.compile(r"^\{(?P<name>[\w:-]+)\}\s*(?P<arg>.*)$")
OPTION = re.compile(r"^:(?P<key>[\w-]+):\s*(?P<value>.*)$")
TARGET = re.compile(r"^\((?P<label>[\w.:-]+)\)=\s*$")
SCAN = re.compile(rf"{ROLE.pattern}|(?P<code>`+)[^`].*?(?P=code)|\$\$.+?\$\$|\$[^$]+\$", re.DOTALL)
EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.DOTALL)

API_ROLES = frozenset(
    {"class", "func", "meth", "mod", "data", "attr", "obj", "exc", "const", "any"}
)
CITE_ROLES = frozenset({"cite", "cite:p", "cite:t", "cite:ps", "cite:ts", "cite:ct", "cite:cp"})
ADMONITIONS = frozenset(
    {
        "admonition",
        "note",
        "tip",
        "hint",
        "important",
        "warning",
        "caution",
        "attention",
        "danger",
        "error",
        "seealso",
    }
)
#: Directives the page does not show as content.
DROPPED = frozenset({"contents", "tableofcontents", "bibliography", "exercise-end"})


class ReaderError(ValueError):
    """A lesson cannot become a reader's notebook (unknown MyST, missing glue, bad import)."""


@dataclass(frozen=True)
class Target:
    """Where a reference points (``uri`` relative to the site root) and its default text."""

    uri: str
    text: str


@dataclass(frozen=True)
class Reference:
    """A bibliography entry: ``authors`` and ``year`` for the citation, ``entry`` as Markdown
    for the list at the end."""

    authors: str
    year: str
    entry: str


@dataclass(frozen=True)
class Site:
    """What the conversion needs to know about the site.

    Attributes
    ----------
    baseurl : str
        The hosted site's address, ending in ``/``; links are ``baseurl + uri``.
    docname : str
        The lesson's document name (``lessons/01_chain_gradients``), for relative ``{doc}``.
    objects : mapping
        Python names (``bnlessons.mlp.SigmoidMLP``, modules too) to their API page URIs.
    labels : mapping
        ``{ref}`` labels to targets (text: the section or figure title).
    numbers : mapping
        ``{numref}`` labels to targets (text: ``Fig. 3``, ``Table 2``).
    equations : mapping
        ``{eq}`` labels to targets (text: the number, ``1``).
    documents : mapping
        Document names to titles, for ``{doc}``.
    bibliography : mapping
        Citation keys to :class:`Reference`.
    """

    baseurl: str
    docname: str
    objects: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, Target] = field(default_factory=dict)
    numbers: Mapping[str, Target] = field(default_factory=dict)
    equations: Mapping[str, Target] = field(default_factory=dict)
    documents: Mapping[str, str] = field(default_factory=dict)
    bibliography: Mapping[str, Reference] = field(default_factory=dict)

    def url(self, uri: str) -> str:
        return self.baseurl.rstrip("/") + "/" + uri.lstrip("/")


# ------------------------------------------------------------------ glued values


def format_text(text: str, fmt: str) -> str:
    """A glued ``text/plain`` value as ``{glue:text}`key:fmt``` shows it (myst-nb's rule:
    the literal's value, converted to what the format's type letter needs).

    >>> format_text("0.0500001", ".2f"), format_text("'-0.40, 2.15'", ""), format_text("8000", ",")
    ('0.05', '-0.40, 2.15', '8,000')
    """
    try:
        value: Any = literal_eval(text)
    except (SyntaxError, ValueError):
        value = text
    if not fmt:
        return str(value)
    kind = fmt[-1]
    if kind == "s":
        value = str(value)
    elif kind in "bcdoxX":
        value = int(value)
    elif kind in "eEfFgGn%":
        value = float(value)
    return format(value, fmt)


def _latex(text: str) -> str:
    """The LaTeX of a glued ``text/latex`` without its ``$`` delimiters."""
    text = text.strip()
    for delim in ("$$", "$"):
        if text.startswith(delim) and text.endswith(delim) and len(text) > 2 * len(delim):
            return text[len(delim) : -len(delim)].strip()
    return text


class Converter:
    """Converts the Markdown of one lesson; holds its glue data, its site and what it cited."""

    def __init__(
        self, glue: Mapping[str, Mapping[str, Any]], site: Site, *, solutions: bool = True
    ) -> None:
        self.glue = glue
        self.site = site
        self.solutions = solutions
        self.cited: dict[str, Reference] = {}
        self.exercises = 0
        self.exercise_numbers: dict[str, str] = {}
        self.in_solution: str | None = None

    def glued(self, key: str) -> Mapping[str, Any]:
        try:
            return self.glue[key]
        except KeyError:
            raise ReaderError(f"{self.site.docname}: nothing is glued as {key!r}") from None

    def data(self, key: str) -> Mapping[str, Any]:
        return dict(self.glued(key).get("data", {}))

    # -------------------------------------------------------------- inline roles

    def inline(self, text: str) -> str:
        """Markdown with every role replaced (code spans and math are left alone)."""
        return _outside_code(text, self._role)

    def _role(self, match: re.Match[str]) -> str:
        name, body = match["name"], match["body"]
        name = name.removeprefix("py:").removeprefix("std:")
        if name == "claim":
            record = self.glued(body.strip()).get("metadata", {}).get("bnlessons", {})
            claim = record.get("claim")
            if claim is None:
                raise ReaderError(f"{self.site.docname}: {body!r} is glued but is not a claim")
            text = claim["text"] if claim["text"] not in ("figure", "table") else ""
            return f"{text} {CHECK}".strip()
        if name in ("glue", "glue:text", "glue:any"):
            key, _, fmt = body.rpartition(":") if ":" in body else (body, "", "")
            data = self.data(key.strip())
            if "text/plain" not in data:
                raise ReaderError(f"{self.site.docname}: {key!r} has no text value")
            return format_text(str(data["text/plain"]), fmt)
        if name == "glue:md":
            return self.inline(str(self.data(body.strip()).get("text/markdown", ""))).strip()
        if name == "glue:math":
            return f"${_latex(str(self.data(body.strip()).get('text/latex', '')))}$"
        if name == "math":
            return f"${body}$"
        if name in ("sub", "sup"):
            return f"<{name}>{body}</{name}>"
        if name in ("abbr", "term", "kbd", "samp", "file", "command", "program", "dfn"):
            text, _ = _explicit(body)
            return text
        if name in API_ROLES:
            return self._api(name, body)
        if name in CITE_ROLES:
            return self._cite(name, body)
        if name in ("doc", "ref", "numref", "eq"):
            return self._reference(name, body)
        raise ReaderError(f"{self.site.docname}: the role {{{name}}} has no Markdown form")

    def _api(self, role: str, body: str) -> str:
        text, target = _explicit(body)
        name = target.lstrip("~.!")
        if text == target:  # no explicit text: the name as Sphinx shows it
            text = name.rsplit(".", 1)[-1] if target.startswith("~") else name
            if role in ("func", "meth"):
                text += "()"
        uri = self.site.objects.get(name)
        if uri is None:
            raise ReaderError(f"{self.site.docname}: {{{role}}}`{body}`: no API entry {name!r}")
        return f"[`{text}`]({self.site.url(uri)})"

    def _cite(self, role: str, body: str) -> str:
        refs = []
        for key in (k.strip() for k in body.split(",")):
            if key not in self.site.bibliography:
                raise ReaderError(f"{self.site.docname}: no reference {key!r} in the bibliography")
            refs.append(self.site.bibliography[key])
            self.cited.setdefault(key, self.site.bibliography[key])
        if role in ("cite:t", "cite:ts", "cite:ct"):
            return "; ".join(f"{r.authors} ({r.year})" for r in refs)
        return "(" + "; ".join(f"{r.authors}, {r.year}" for r in refs) + ")"

    def _reference(self, role: str, body: str) -> str:
        text, target = _explicit(body)
        explicit = text != target
        if role == "doc":
            docname = _resolve_doc(self.site.docname, target)
            if docname not in self.site.documents:
                raise ReaderError(f"{self.site.docname}: {{doc}}`{body}`: no document {docname!r}")
            shown = text if explicit else self.site.documents[docname]
            return f"[{self.inline(shown)}]({self.site.url(docname + '.html')})"
        table = {"ref": self.site.labels, "numref": self.site.numbers, "eq": self.site.equations}
        found = table[role].get(target)
        if found is None and role == "ref":  # a numbered block without a title of its own
            found = self.site.numbers.get(target)
        if found is None:
            raise ReaderError(f"{self.site.docname}: {{{role}}}`{body}`: unknown label")
        if role == "numref" and explicit:
            number = found.text.rsplit(" ", 1)[-1]
            shown = text.replace("%s", number).replace("{number}", number)
        elif role == "eq":
            shown = f"({found.text})"
        else:
            shown = text if explicit else found.text
        return f"[{self.inline(shown)}]({self.site.url(found.uri)})"

    # -------------------------------------------------------------- blocks

    def markdown(self, source: str, attachments: dict[str, Any]) -> str:
        """A Markdown cell's MyST as Markdown; glued images go into ``attachments``."""
        out: list[str] = []
        lines = source.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            fence = FENCE.match(line)
            if fence is None:
                if TARGET.match(line) or line.startswith("% ") or line.strip() == "%":
                    i += 1
                    continue
                j = i
                while j < len(lines) and FENCE.match(lines[j]) is None:
                    j += 1
                paragraph = [ln for ln in lines[i:j] if not TARGET.match(ln)]
                paragraph = [ln for ln in paragraph if not (ln.startswith("% ") or ln == "%")]
                if not self.skipping:
                    out.append(self.inline(_dollar_labels("\n".join(paragraph), self.site)))
                i = j
                continue
            end = _closing(lines, i, fence["fence"])
            body = lines[i + 1 : end]
            info = fence["info"].strip()
            directive = DIRECTIVE.match(info)
            if directive is None:  # a plain code block stays as it is
                if not self.skipping:
                    out.append("\n".join(lines[i : end + 1]))
            elif not self.skipping or directive["name"] == "solution-end":
                out.append(self.directive(directive["name"], directive["arg"], body, attachments))
            i = end + 1
        return _tidy("\n\n".join(out))

    @property
    def skipping(self) -> bool:
        """Inside a solution of an edition without solutions."""
        return self.in_solution is not None and not self.solutions

    def directive(self, name: str, arg: str, lines: list[str], attachments: dict[str, Any]) -> str:
        options, body = _options(lines)
        text = "\n".join(body)
        if name in DROPPED:
            return ""
        if name in ("code", "code-block", "sourcecode", "code-cell"):
            return f"```{arg}\n{text}\n```"
        if name == "glue:figure":
            return self._figure(arg.strip(), options, text, attachments)
        if name in ("glue:md", "glue:markdown"):
            return self.markdown(str(self.data(arg.strip()).get("text/markdown", "")), attachments)
        if name == "glue:math":
            latex = _latex(str(self.data(arg.strip()).get("text/latex", "")))
            return _math_block(latex, options.get("label", ""), self.site)
        if name in ("glue", "glue:any"):
            return self._any(arg.strip(), attachments)
        if name == "math":
            return _math_block(text, options.get("label", ""), self.site)
        if name == "table":
            label = options.get("name", "")
            number = self.site.numbers.get(label)
            prefix = f"**{number.text}.** " if number else ""
            caption = f"{prefix}{self.inline(arg)}".strip()
            return f"{caption}\n\n{self.markdown(text, attachments)}"
        if name in ADMONITIONS:
            title = arg if name == "admonition" else (arg or name.capitalize())
            inner = self.markdown(text, attachments)
            return f"> **{self.inline(title)}**\n>\n{_quote(inner)}"
        if name == "dropdown":
            return _details(self.inline(arg or "Details"), self.markdown(text, attachments))
        if name == "exercise-start" or name == "exercise":
            self.exercises += 1
            label = options.get("label", "")
            found = self.site.numbers.get(label)  # as the page numbers it
            heading = found.text if found else f"Exercise {self.exercises}"
            if label:
                self.exercise_numbers[label] = heading
            title = f" ({self.inline(arg)})" if arg.strip() else ""
            head = f"**{heading}{title}.**"
            rest = self.markdown(text, attachments) if text.strip() else ""
            return f"{head}\n\n{rest}".rstrip()
        if name == "solution-start":
            self.in_solution = arg.strip()
            return _details_open(self._solution_title(self.in_solution)) if self.solutions else ""
        if name == "solution-end":
            self.in_solution = None
            return "</details>" if self.solutions else ""
        if name == "solution" and not self.solutions:
            return ""
        if name == "solution":
            title = self._solution_title(arg.strip())
            return _details(title, self.markdown(text, attachments))
        raise ReaderError(f"{self.site.docname}: the directive {{{name}}} has no Markdown form")

    def _solution_title(self, label: str) -> str:
        number = self.exercise_numbers.get(label)
        return f"Solution to {number}" if number else "Solution"

    def solution_cell(self, text: str, continued: str | None) -> str:
        """A Markdown cell's text with its ``<details>`` balanced: a cell that continues a
        solution opens one, a cell that leaves a solution open closes it (a notebook renders
        each cell on its own)."""
        if not self.solutions:
            return text
        if continued is not None:
            if text.startswith("</details>"):
                text = text.removeprefix("</details>").lstrip()
            else:
                summary = f"{self._solution_title(continued)} (continued)"
                text = f"{_details_open(summary)}\n{text}"
        if self.in_solution is not None:
            text = f"{text}\n\n</details>"
        return text

    def _figure(
        self, key: str, options: Mapping[str, str], caption: str, attachments: dict[str, Any]
    ) -> str:
        text = self.inline(" ".join(caption.split()))
        image = self._image(key, attachments, alt=options.get("alt", "") or _plain_text(text))
        number = self.site.numbers.get(options.get("name", ""))
        prefix = f"**{number.text}.** " if number else ""
        return f"{image}\n\n{prefix}{text}".rstrip()

    def _image(self, key: str, attachments: dict[str, Any], *, alt: str) -> str:
        data = self.data(key)
        for mime, suffix in (
            ("image/png", "png"),
            ("image/jpeg", "jpg"),
            ("image/svg+xml", "svg"),
        ):
            if mime in data:
                name = f"{key}.{suffix}"
                attachments[name] = {mime: data[mime]}
                return f"![{alt or key}](attachment:{name})"
        raise ReaderError(f"{self.site.docname}: {key!r} is glued but is not an image")

    def _any(self, key: str, attachments: dict[str, Any]) -> str:
        data = self.data(key)
        if "text/markdown" in data:
            return self.markdown(str(data["text/markdown"]), attachments)
        if "text/latex" in data:
            return _math_block(_latex(str(data["text/latex"])), "", self.site)
        if any(m.startswith("image/") for m in data):
            return self._image(key, attachments, alt="")
        return format_text(str(data.get("text/plain", "")), "")

    def references(self) -> str:
        entries = sorted(self.cited.values(), key=lambda r: (r.authors, r.year))
        return "## References\n\n" + "\n\n".join(f"- {r.entry}" for r in entries)


# ------------------------------------------------------------------ helpers


def _outside_code(text: str, replace: Callable[[re.Match[str]], str]) -> str:
    """Roles replaced by ``replace``; code spans and ``$`` math left as they are.

    One scan from the left: whichever starts first wins, so a role's backquoted content is
    not taken for a code span, nor a role inside a code span for a role.
    """

    def one(match: re.Match[str]) -> str:
        return replace(match) if match["name"] else match[0]

    return SCAN.sub(one, text)


def _plain_text(markdown: str) -> str:
    """Markdown as text for an image's alt text: links as their text, no emphasis or code."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    return re.sub(r"[*`\[\]]", "", text)


def _explicit(body: str) -> tuple[str, str]:
    """``text <target>`` as (text, target); a bare target as (target, target)."""
    match = EXPLICIT.match(body.strip())
    if match and match["text"]:
        return match["text"], match["target"].strip()
    return body.strip(), body.strip()


def _resolve_doc(current: str, target: str) -> str:
    target = target.removesuffix(".md").removesuffix(".ipynb")
    if target.startswith("/"):
        return target.lstrip("/")
    base = current.rsplit("/", 1)[0] if "/" in current else ""
    parts = [p for p in f"{base}/{target}".split("/") if p and p != "."]
    resolved: list[str] = []
    for part in parts:
        if part == "..":
            if resolved:
                resolved.pop()
        else:
            resolved.append(part)
    return "/".join(resolved)


def _closing(lines: list[str], start: int, fence: str) -> int:
    """The index of the line that closes the fence opened at ``start`` (or the last line)."""
    char, width = fence[0], len(fence)
    for k in range(start + 1, len(lines)):
        stripped = lines[k].strip()
        if stripped and set(stripped) == {char} and len(stripped) >= width:
            return k
    return len(lines)


def _options(lines: list[str]) -> tuple[dict[str, str], list[str]]:
    """A directive's ``:key: value`` options (or YAML block) and the body after them."""
    options: dict[str, str] = {}
    k = 0
    if lines and lines[0].strip() == "---":
        end = next((j for j in range(1, len(lines)) if lines[j].strip() == "---"), len(lines))
        for line in lines[1:end]:
            key, _, value = line.partition(":")
            options[key.strip()] = value.strip()
        k = end + 1
    else:
        while k < len(lines) and (match := OPTION.match(lines[k])):
            options[match["key"]] = match["value"].strip()
            k += 1
    return options, lines[k:]


def _math_block(latex: str, label: str, site: Site) -> str:
    number = site.equations.get(label) if label else None
    tag = f" \\tag{{{number.text}}}" if number else ""
    return f"$$\n{latex.strip()}{tag}\n$$"


def _dollar_labels(text: str, site: Site) -> str:
    """MyST's labelled display math, ``$$ ... $$ (label)``, as ``$$ ... \\tag{n} $$``."""

    def tag(match: re.Match[str]) -> str:
        number = site.equations.get(match["label"])
        suffix = f" \\tag{{{number.text}}}" if number else ""
        return f"$${match['math'].rstrip()}{suffix}\n$$"

    return re.sub(r"\$\$(?P<math>.*?)\$\$\s*\((?P<label>[\w:-]+)\)", tag, text, flags=re.S)


def _quote(markdown: str) -> str:
    """``markdown`` as a block quote whose paragraphs continue lazily: only a block's first
    line (and code) carries ``>``, so math that wraps a line keeps no ``>`` in its TeX
    (JupyterLab takes the math out before it parses the Markdown).

    >>> print(_quote("a $x\\n= 1$ b\\n\\n- c"))
    > a $x
    = 1$ b
    >
    > - c
    """
    out, first, fenced = [], True, False
    for line in markdown.splitlines():
        if FENCE.match(line):  # a code block's opening or closing fence
            fenced = not fenced
            out.append(f"> {line}")
        elif not line.strip():
            out.append(">")
            first = True
            continue
        elif first or fenced:
            out.append(f"> {line}")
        else:
            out.append(line)
        first = False
    return "\n".join(out)


def _details_open(summary: str) -> str:
    return f"<details>\n<summary>{summary}</summary>\n"


def _details(summary: str, body: str) -> str:
    return f"{_details_open(summary)}\n{body}\n\n</details>"


def _tidy(text: str) -> str:
    """At most one blank line between blocks, none at the ends."""
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# ------------------------------------------------------------------ the bibliography


def _authors(persons: list[Any]) -> str:
    last = [" ".join(p.last_names) for p in persons]
    if len(last) == 1:
        return _plain(last[0])
    if len(last) == 2:
        return f"{_plain(last[0])} and {_plain(last[1])}"
    return f"{_plain(last[0])} et al."


def _plain(text: str) -> str:
    return text.replace("{", "").replace("}", "")


def _unescape(markdown: str) -> str:
    """pybtex's Markdown without the escapes that only punctuation needs mid-line."""
    return re.sub(r"\\([.\-:()])", r"\1", markdown)


def read_bibliography(path: Path) -> dict[str, Reference]:
    """The entries of a BibTeX file: author--year labels and Markdown entries (pybtex's plain
    style)."""
    from pybtex.database import parse_file  # type: ignore[import-untyped]
    from pybtex.plugin import find_plugin  # type: ignore[import-untyped]

    data = parse_file(str(path))
    style = find_plugin("pybtex.style.formatting", "plain")()
    formatted = {e.key: e for e in style.format_entries(data.entries.values())}
    refs = {}
    for key, entry in data.entries.items():
        persons = entry.persons.get("author") or entry.persons.get("editor") or []
        authors = _authors(persons) if persons else _plain(entry.fields.get("title", key))
        text = _unescape(" ".join(formatted[key].text.render_as("markdown").split()))
        refs[key] = Reference(authors, entry.fields.get("year", "n.d."), text)
    return refs
