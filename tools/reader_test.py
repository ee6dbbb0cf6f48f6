"""Run every reader's notebook of the built site as a reader would, and compare its claims.

A fresh virtual environment gets only the site's wheel of the library, ``ipykernel`` and
``nbclient`` (from PyPI; no myst-nb, no Sphinx). Each lesson's reader's notebook
(``_sources/lessons/*.ipynb``) is executed top to bottom there, and every claim it prints
(``✓ id: ...``, the record in the output's metadata) must equal, as printed, the claim the
site shows (``checks.json``), with none missing and none extra. The time is reported against
the lessons' own execution time in the build (the sum of ``seconds`` in ``checks.json``).

The experiment cache of the build (``_build/experiment-cache``) is used when it exists and the
installed wheel has the library digest of the source tree: a copy of it, so the run does not
change it.

Usage: ``python tools/reader_test.py [_build/html]`` (``make reader-test``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: What the fresh environment gets besides the wheel.
RUNNER = ("ipykernel", "nbclient")
MAX_RATIO = 1.5

#: Executed inside the fresh environment: runs one notebook, prints its claims as JSON.
EXECUTE = """
import json, sys, time
import nbformat
from nbclient import NotebookClient

path, out = sys.argv[1], sys.argv[2]
nb = nbformat.read(path, as_version=4)
start = time.perf_counter()
resources = {"metadata": {"path": out}}
NotebookClient(nb, timeout=1200, kernel_name="python3", resources=resources).execute()
seconds = time.perf_counter() - start
records = [
    o.get("metadata", {}).get("bnlessons", {}).get("claim")
    for cell in nb.cells if cell.cell_type == "code"
    for o in cell.outputs if o.get("output_type") == "display_data"
]
claims = [r for r in records if r is not None]
nbformat.write(nb, f"{out}/executed.ipynb")
print(json.dumps({"seconds": seconds, "claims": claims}))
"""


def make_env(where: Path, wheel: Path) -> Path:
    """A fresh virtual environment with the wheel and :data:`RUNNER`; its Python."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    python = where / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    # --no-compile: no byte-code for the packages (sympy's alone takes a minute); Python
    # compiles what the notebooks import.
    done = subprocess.run(
        [*pip, "--no-compile", str(wheel), *RUNNER], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"pip could not install {wheel.name}:\n{done.stderr[-3000:]}")
    return python


def digest_of(python: Path) -> str:
    code = "from bnlessons import _cache; print(_cache.library_digest())"
    done = subprocess.run(
        [str(python), "-c", code], check=True, capture_output=True, text=True, cwd="/"
    )
    return done.stdout.strip()


def compare(lesson: str, site: list[dict[str, Any]], run: list[dict[str, Any]]) -> list[str]:
    """What differs between the site's claims and a run's, as messages (none: all equal)."""
    problems = []
    by_id = {c["id"]: c for c in run}
    for claim in site:
        got = by_id.get(claim["id"])
        if got is None:
            problems.append(f"{lesson}: claim {claim['id']!r} was not printed by the notebook")
        elif got["text"] != claim["text"] or not got["holds"]:
            problems.append(
                f"{lesson}: claim {claim['id']!r} is {got['text']!r} in the notebook, "
                f"{claim['text']!r} on the site"
            )
    extra = set(by_id) - {c["id"] for c in site}
    problems += [f"{lesson}: claim {k!r} is not on the site" for k in sorted(extra)]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", nargs="?", default=str(ROOT / "_build" / "html"), type=Path)
    parser.add_argument("--no-cache", action="store_true", help="ignore the experiment cache")
    parser.add_argument("--only", default="", help="run only lessons whose name contains this")
    args = parser.parse_args(argv)
    site: Path = args.site.resolve()
    checks = json.loads((site / "checks.json").read_text(encoding="utf-8"))["lessons"]
    wheels = sorted((site / "wheel").glob("bnlessons-*.whl"))
    if len(wheels) != 1:
        print(f"reader-test: expected one wheel in {site / 'wheel'}, found {wheels}")
        return 1
    notebooks = sorted(p for p in (site / "_sources" / "lessons").glob("*.ipynb"))
    notebooks = [p for p in notebooks if args.only in p.stem]
    if not notebooks:
        print(f"reader-test: no reader's notebooks in {site / '_sources' / 'lessons'}")
        return 1
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="reader-test-", dir=ROOT / "_build") as tmp:
        work = Path(tmp)
        python = make_env(work / "venv", wheels[0])
        setup = time.perf_counter() - started
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BNLESSONS_", "PYTHON"))}
        env.pop("VIRTUAL_ENV", None)
        env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        env.setdefault("OMP_NUM_THREADS", "1")
        env["MPLBACKEND"] = "Agg"
        cache = ROOT / "_build" / "experiment-cache"
        sys.path.insert(0, str(ROOT / "src"))
        from bnlessons import _cache

        source_digest, wheel_digest = _cache.library_digest(), digest_of(python)
        if wheel_digest != source_digest:
            print(
                f"reader-test: the wheel's library digest {wheel_digest} is not the source "
                f"tree's {source_digest}: the experiment cache would miss"
            )
        elif cache.is_dir() and not args.no_cache:
            # linked, not copied: joblib writes an entry to a new file and renames it, so
            # the build's files are never changed (a store's name is the digest of the code
            # a run imports, see bnlessons._cache, so every store may be read)
            for entry in cache.glob("*-*t"):
                shutil.copytree(
                    entry, work / "experiment-cache" / entry.name, copy_function=os.link
                )
            (work / "experiment-cache").mkdir(exist_ok=True)
            env["BNLESSONS_CACHE_DIR"] = str(work / "experiment-cache")
        problems: list[str] = []
        own = ran = 0.0
        for notebook in notebooks:
            lesson = notebook.stem
            entry = checks.get(f"lessons/{lesson}")
            if entry is None:
                problems.append(f"{lesson}: not in checks.json")
                continue
            out = work / lesson
            out.mkdir()
            done = subprocess.run(
                [str(python), "-c", EXECUTE, str(notebook), str(out)],
                env=env,
                cwd=out,
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                problems.append(f"{lesson}: the notebook failed:\n{done.stderr[-3000:]}")
                print(f"reader-test: {lesson}: FAILED")
                continue
            result = json.loads(done.stdout.strip().splitlines()[-1])
            found = compare(lesson, entry["claims"], result["claims"])
            problems += found
            own += entry["seconds"] or 0.0
            ran += result["seconds"]
            print(
                f"reader-test: {lesson}: {len(result['claims'])} claims, "
                f"{'all equal to the site' if not found else f'{len(found)} differ'}; "
                f"{result['seconds']:.1f} s (site build {entry['seconds']} s)"
            )
        total = time.perf_counter() - started
        hits, misses, _ = _cache.read_log(work / "experiment-cache")
    ratio = ran / own if own else float("inf")
    cached = (
        f"with the experiment cache ({hits} hits, {misses} misses)"
        if "BNLESSONS_CACHE_DIR" in env
        else "without the experiment cache"
    )
    print(
        f"reader-test: notebooks ran in {ran:.1f} s {cached}, the lessons "
        f"in the site build {own:.1f} s: {ratio:.2f}x (goal <= {MAX_RATIO}x); environment "
        f"{setup:.1f} s, total {total:.1f} s"
    )
    for problem in problems:
        print(f"reader-test: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
