"""The experiment cache: expensive deterministic runs memoized on disk, when asked for.

A training run is a function of its inputs (its config with the seed, and the data), of the
library's code and of the numerical configuration (the BLAS kernel and its thread count, see
:mod:`bnlessons.provenance`). Setting the environment variable ``BNLESSONS_CACHE_DIR`` to a
directory stores the result of every :func:`cached` call under

``<dir>/<code digest>-<kernel>-<threads>t/``

(the code digest covers the function's module, its arguments' modules and the library
modules they import) with
`joblib.Memory <https://joblib.readthedocs.io/en/stable/memory.html>`_, keyed on the full
arguments; a second call with the same inputs loads the result instead of computing it.
Without the variable (the default, and what a reader's notebook gets) nothing is cached.
``make html`` sets it to ``_build/experiment-cache`` (``make clean`` removes it).

joblib writes each entry to a temporary name and renames it, so worker processes can share
the cache; an entry that cannot be loaded (a truncated file) is recomputed and rewritten,
never used. Every call appends one line to ``<dir>/log.jsonl``: the function, its store,
whether it was a hit, and the process id; the site build reports the lines per lesson, and
at its end :func:`prune` removes the stores of older code once all take more than
:data:`KEEP_BYTES`.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from bnlessons.provenance import blas_info

ENV = "BNLESSONS_CACHE_DIR"
#: How much the stores may take before :func:`prune` removes the least recently used ones.
KEEP_BYTES = 2 << 30
PACKAGE = Path(__file__).resolve().parent

P = ParamSpec("P")
R = TypeVar("R")


@functools.cache
def library_digest(*modules: str) -> str:
    """A short digest of the code ``modules`` run: the files of these library modules and of
    those they import, directly or through others (``__init__`` and the data files always),
    names and bytes; with no module, of every file of the package.

    A run of :func:`bnlessons.training.train` is keyed on the training code and on the modules
    of its arguments' classes, so editing a module that neither imports (the figures, the
    claims) keeps its cache entries.
    """
    if not modules:
        files = [p for p in PACKAGE.rglob("*") if p.is_file()]
    else:
        names = set().union(*(_imported_modules(m.removeprefix("bnlessons.")) for m in modules))
        files = [PACKAGE / "__init__.py", *(PACKAGE / f"{m}.py" for m in names)]
        files += [p for p in (PACKAGE / "data").rglob("*") if p.is_file()]
    digest = hashlib.sha256()
    for path in sorted(set(files)):
        if "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        digest.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _ours(module: str) -> bool:
    return module == "bnlessons" or module.startswith("bnlessons.")


def _imported_modules(name: str) -> set[str]:
    """``name`` and the library modules it imports, transitively (read from their source)."""
    found: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        path = PACKAGE / f"{current}.py"
        if current in found or not path.is_file():
            continue
        found.add(current)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                base = node.module.removeprefix("bnlessons").lstrip(".")
                if node.module.startswith("bnlessons") or node.level:
                    todo += [base] if base else [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                todo += [
                    a.name.split(".")[1] for a in node.names if a.name.startswith("bnlessons.")
                ]
    return found


def cache_location(*modules: str) -> Path | None:
    """The directory of this code (:func:`library_digest` of ``modules``) and BLAS
    configuration, or None if caching is off."""
    root = os.environ.get(ENV, "").strip()
    if not root:
        return None
    info = blas_info()
    return Path(root) / f"{library_digest(*sorted(set(modules)))}-{info.kernel}-{info.threads}t"


def _log(root: Path, record: dict[str, Any]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, sort_keys=True) + "\n"
    with open(root / "log.jsonl", "a", encoding="utf-8") as log:  # one short append: atomic
        log.write(line)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _joblib_messages() -> Iterator[list[str]]:
    """Collect joblib's warnings instead of printing them (into a lesson's output)."""
    logger = logging.getLogger("joblib")
    handler, propagate = _Collect(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def cached(func: Callable[P, R]) -> Callable[P, R]:
    """Return ``func`` memoized in the experiment cache when ``BNLESSONS_CACHE_DIR`` is set.

    The result must be a deterministic function of the arguments (and of the library and
    the BLAS configuration, which key the cache directory).
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        classes = {type(a).__module__ for a in (*args, *kwargs.values())}
        location = cache_location(func.__module__, *(m for m in classes if _ours(m)))
        if location is None:
            return func(*args, **kwargs)
        import joblib  # only when caching: a reader's notebook does not need it

        memory = joblib.Memory(location, verbose=0)
        memorized = memory.cache(func)
        hit = bool(memorized.check_call_in_cache(*args, **kwargs))
        with _joblib_messages() as messages:  # joblib logs a bad entry, then recomputes
            result: R = memorized(*args, **kwargs)
        corrupt = any("Exception while loading results" in m for m in messages)
        _log(
            location.parent,
            {
                "function": func.__qualname__,
                "hit": hit and not corrupt,
                "recomputed_corrupt_entry": corrupt,
                "pid": os.getpid(),
                "store": location.name,
            },
        )
        return result

    return wrapper


def read_log(root: Path, start: int = 0) -> tuple[int, int, int]:
    """Count the hits and misses logged under ``root`` from byte ``start`` on.

    Returns ``(hits, misses, end)``; pass ``end`` as the next ``start`` to read only the calls
    made since (the site build does so after each lesson).
    """
    path = root / "log.jsonl"
    if not path.is_file():
        return 0, 0, start
    with open(path, "rb") as log:
        log.seek(start)
        records = [json.loads(line) for line in log.read().splitlines() if line.strip()]
        end = log.tell()
    hits = sum(1 for record in records if record["hit"])
    return hits, len(records) - hits, end


def prune(root: Path, keep_bytes: int = KEEP_BYTES, *, since: int | None = None) -> list[str]:
    """Remove the least recently used stores under ``root`` while they take more than
    ``keep_bytes``; return the names of those removed.

    A store's last use is its last line in the log (a store the log never names counts as
    the oldest); a store used from byte ``since`` of the log on (the site build passes where
    the log stood when it started) is never removed. A store is one code digest: editing the
    library leaves the stores of the old code unused, and only ``make clean`` would remove
    them otherwise.
    """
    stores = [d for d in root.iterdir() if d.is_dir()] if root.is_dir() else []
    last_use: dict[str, int] = {}
    recent: set[str] = set()
    path = root / "log.jsonl"
    if path.is_file():
        start = 0  # the byte where each line starts
        for number, line in enumerate(path.read_bytes().splitlines(keepends=True)):
            store = json.loads(line).get("store") if line.strip() else None
            if store is not None:
                last_use[store] = number
                if since is not None and start >= since:
                    recent.add(store)
            start += len(line)
    sizes = {d.name: sum(f.stat().st_size for f in d.rglob("*") if f.is_file()) for d in stores}
    total = sum(sizes.values())
    removed: list[str] = []
    for store in sorted(stores, key=lambda d: (last_use.get(d.name, -1), d.name)):
        if total <= keep_bytes:
            break
        if store.name in recent:
            continue
        shutil.rmtree(store, ignore_errors=True)
        total -= sizes[store.name]
        removed.append(store.name)
    return removed
