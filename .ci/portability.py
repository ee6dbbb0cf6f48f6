"""Run every lesson cold, and the test suite, under several BLAS configurations.

OpenBLAS picks a compute kernel per CPU, and the thread count changes the order of its sums,
so the same seed gives numbers that agree only to rounding across machines (and a chaotic run,
such as a diverging network, can end anywhere). Every checked claim must hold on every machine,
so this script executes the lessons and the tests under the configurations that reproduce the
hosts readers and CI use:

* ``native-1``: the kernel OpenBLAS picks for this CPU, 1 thread (what ``make html`` uses);
* ``haswell-2``: ``OPENBLAS_CORETYPE=Haswell`` (AVX2, also what AMD Zen gets), 2 threads,
  numpy's AVX-512 loops off;
* ``sandybridge-1``: ``OPENBLAS_CORETYPE=Sandybridge`` (AVX), 1 thread, numpy's AVX2 and
  AVX-512 loops off;
* ``skylakex-1``: ``OPENBLAS_CORETYPE=SkylakeX`` (AVX-512), where the CPU has AVX-512
  (forcing a kernel the CPU lacks crashes the process) and the native kernel is another.

The lessons run with nbclient straight from their MyST source (no Sphinx, no execution cache).
A failed cell or test fails the run, naming the lesson, the configuration and the error. The
glued values of every configuration are written to ``_build/portability/<config>.json``, and
the values that differ between configurations are listed with their range, so a bound can be
set clear of every observed value.

Usage: ``python .ci/portability.py [--config NAME ...] [--lesson GLOB ...] [--no-tests]``
(``make portability`` runs all of it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "_ext"))
from bnsite import IpcKernelManager  # noqa: E402  (kernels on IPC sockets, as in the site build)

OUT = ROOT / "_build" / "portability"
GLUE_PREFIX = "application/papermill.record/"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
AVX512 = {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}


def cpu_flags() -> set[str]:
    """The CPU's feature flags, from /proc/cpuinfo (empty where it does not exist)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def numpy_features_off(*wanted: str) -> str:
    """NPY_DISABLE_CPU_FEATURES for numpy's own SIMD loops: the wanted ones this CPU has."""
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    return " ".join(f for f in wanted if f in __cpu_dispatch__ and __cpu_features__.get(f))


def config(coretype: str | None, threads: int, numpy_off: str = "") -> dict[str, str]:
    """Environment overrides for one configuration (None keeps the native kernel)."""
    env = {"OPENBLAS_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    if coretype is not None:
        env["OPENBLAS_CORETYPE"] = coretype
    if numpy_off:
        env["NPY_DISABLE_CPU_FEATURES"] = numpy_off
    return env


def configurations() -> dict[str, dict[str, str]]:
    """Name -> environment overrides. The native run keeps a preset OPENBLAS_CORETYPE.

    The forced kernels also turn off numpy's own AVX-512 (and, for Sandybridge, AVX2) loops,
    so that the elementwise functions and reductions run as on such a CPU too.
    """
    avx512 = ("X86_V4", "AVX512_ICL", "AVX512_SPR")
    configs = {
        "native-1": config(None, 1),
        "haswell-2": config("Haswell", 2, numpy_features_off(*avx512)),
        "sandybridge-1": config("Sandybridge", 1, numpy_features_off("X86_V3", *avx512)),
    }
    if cpu_flags() >= AVX512 and "kernel SkylakeX, 1 BLAS thread" not in blas_of(
        {**os.environ, **configs["native-1"]}
    ):
        configs["skylakex-1"] = config("SkylakeX", 1)
    return configs


def blas_of(env: dict[str, str]) -> str:
    """One line naming numpy, OpenBLAS, its kernel and threads, as a child process sees them."""
    code = "from bnlessons.provenance import blas_summary; print(blas_summary())"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def glued_values(nb: nbformat.NotebookNode) -> dict[str, str]:
    """Name -> text of every value a notebook glued (figures as their text stand-in)."""
    values: dict[str, str] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name is None:
                continue
            data = output.get("data", {})
            text = data.get(GLUE_PREFIX + "text/plain", data.get("text/plain", ""))
            if any("image/" in key for key in data):
                text = "<figure>"
            values[name] = text
    return values


def run_lesson(path: Path, env: dict[str, str]) -> tuple[dict[str, str], list[str], float]:
    """Execute one lesson to the end; return its glued values, its errors and the seconds.

    Every cell runs even after one fails, so one run names every failing check.
    """
    nb = jupytext.read(path)
    client = NotebookClient(
        nb,
        timeout=900,
        kernel_name="python3",
        kernel_manager_class=IpcKernelManager,
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    # The kernel inherits the environment of this process: set it for the duration.
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    seconds = time.perf_counter() - start
    errors = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                line = cell_line(cell.source, output.get("traceback", []))
                errors.append(f"cell {index}: {output.ename}: {output.evalue}\n      at: {line}")
    return glued_values(nb), errors, seconds


def cell_line(source: str, traceback: list[str]) -> str:
    """The source line a traceback points at ('---->' in IPython's), or the cell's first."""
    for frame in traceback:
        for raw in frame.splitlines():
            plain = ANSI.sub("", raw)
            if plain.lstrip().startswith("---->"):
                return plain.split("---->", 1)[1].strip()
    return source.strip().splitlines()[0] if source.strip() else ""


def last_lines(text: str, n: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", action="append", help="run only these configurations")
    parser.add_argument("--lesson", action="append", help="run only lessons matching the glob")
    parser.add_argument("--no-tests", action="store_true", help="lessons only")
    args = parser.parse_args(argv)

    configs = configurations()
    chosen = args.config or list(configs)
    unknown = [name for name in chosen if name not in configs]
    if unknown:
        parser.error(f"--config: expected one of {sorted(configs)}, got {unknown}")
    lessons = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.md"))
    if args.lesson:
        lessons = [p for p in lessons if any(p.match(g) for g in args.lesson)]
    OUT.mkdir(parents=True, exist_ok=True)

    failures: list[str] = []
    values: dict[str, dict[str, dict[str, str]]] = {}
    for name in chosen:
        env = {**os.environ, **configs[name]}
        env["MPLBACKEND"] = "Agg"
        env["BNLESSONS_SITE"] = "1"  # claims glued as in the site build, read back below
        env.pop("BNLESSONS_CACHE_DIR", None)  # cold: no experiment cache
        print(f"== {name}: {blas_of(env)}", flush=True)
        values[name] = {}
        for path in lessons:
            glued, errors, seconds = run_lesson(path, env)
            values[name][path.stem] = glued
            status = "ok" if not errors else f"FAILED ({len(errors)} cells)"
            print(f"   {path.stem}: {status} in {seconds:.1f} s, {len(glued)} values", flush=True)
            failures += [f"{name} / lesson {path.stem} / {error}" for error in errors]
        (OUT / f"{name}.json").write_text(json.dumps(values[name], indent=1, sort_keys=True))
        if not args.no_tests:
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                 "-m", "not browser", "tests"],
                cwd=ROOT, env=env, capture_output=True, text=True,
            )  # fmt: skip
            seconds = time.perf_counter() - start
            summary = last_lines(done.stdout, 1)
            print(f"   tests: {summary} ({seconds:.0f} s)", flush=True)
            if done.returncode != 0:
                failures.append(f"{name} / tests:\n{last_lines(done.stdout, 30)}")

    print(differences(values))
    if failures:
        print(f"\nportability: {len(failures)} failure(s)", file=sys.stderr)
        for failure in failures:
            print(f"\n--- {failure}", file=sys.stderr)
        return 1
    print(f"\nportability: every lesson and test passed under {', '.join(chosen)}")
    return 0


def differences(values: dict[str, dict[str, dict[str, str]]]) -> str:
    """A table of the glued values that differ between configurations."""
    names = list(values)
    if len(names) < 2:
        return ""
    lines = [f"\nglued values that differ between configurations ({' | '.join(names)}):"]
    same = total = 0
    lessons = sorted({lesson for config in values.values() for lesson in config})
    for lesson in lessons:
        keys = sorted({k for config in values.values() for k in config.get(lesson, {})})
        for key in keys:
            seen = [values[n].get(lesson, {}).get(key, "-") for n in names]
            total += 1
            if len(set(seen)) == 1:
                same += 1
                continue
            shown = " | ".join(s.replace("\n", " ")[:40] for s in seen)
            lines.append(f"  {lesson}/{key}: {shown}")
    lines.append(f"  ({total - same} of {total} differ)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
