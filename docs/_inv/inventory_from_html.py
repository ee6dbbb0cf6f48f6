"""Write a Sphinx ``objects.inv`` for a documentation tree that ships its HTML but no inventory.

Debian's ``python-sympy-doc`` installs SymPy's HTML manual without ``objects.inv``; this reads
the Python object descriptions (``<dl class="py ROLE"><dt ... id="NAME">``) from the HTML and
writes an inventory with the same relative URIs, so intersphinx can link to the public manual:

    apt-get download python-sympy-doc && dpkg -x python-sympy-doc_*.deb /tmp/sympy-doc
    python docs/_inv/inventory_from_html.py /tmp/sympy-doc/usr/share/doc/python-sympy-doc/html \\
        SymPy 1.13 docs/_inv/sympy.inv
"""

from __future__ import annotations

import re
import sys
import zlib
from pathlib import Path

_ENTRY = re.compile(
    r'<dl class="py (?P<role>[a-z]+)">\s*<dt class="sig sig-object py" id="(?P<name>[^"]+)"'
)


def collect(html_root: Path) -> list[tuple[str, str, str]]:
    """Return sorted ``(name, role, uri)`` triples found under ``html_root``."""
    found: dict[tuple[str, str], str] = {}
    for page in sorted(html_root.rglob("*.html")):
        rel = page.relative_to(html_root).as_posix()
        for match in _ENTRY.finditer(page.read_text(encoding="utf-8", errors="replace")):
            name, role = match["name"], match["role"]
            found.setdefault((name, role), f"{rel}#{name}")
    return sorted((name, role, uri) for (name, role), uri in found.items())


def write_inventory(
    entries: list[tuple[str, str, str]], project: str, version: str, out: Path
) -> None:
    """Write ``entries`` as a version-2 Sphinx inventory to ``out``."""
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n"
        f"# Version: {version}\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    body = "".join(
        f"{name} py:{role} 1 {uri.replace('#' + name, '#$')} -\n" for name, role, uri in entries
    )
    out.write_bytes(header.encode() + zlib.compress(body.encode(), 9))


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    html_root, project, version, out = Path(argv[1]), argv[2], argv[3], Path(argv[4])
    entries = collect(html_root)
    if not entries:
        print(f"no Python object descriptions found under {html_root}", file=sys.stderr)
        return 1
    write_inventory(entries, project, version, out)
    print(f"{out}: {len(entries)} objects")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
