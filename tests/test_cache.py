"""Tests for bnlessons._cache: memoized runs equal fresh ones, bad entries are recomputed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bnlessons import _cache, training
from bnlessons.mnist import MnistData, load_mnist
from bnlessons.training import TrainingConfig, TrainingResult, train, train_many

CONFIG = TrainingConfig(batch_norm=True, steps=30, eval_every=10, seed=3)


@pytest.fixture(scope="module")
def data() -> MnistData:
    return load_mnist()


@pytest.fixture
def cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The experiment cache switched on, in a fresh directory."""
    monkeypatch.setenv(_cache.ENV, str(tmp_path))
    return tmp_path


def _log(root: Path) -> list[dict[str, object]]:
    path = root / "log.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _assert_next_call_hits(root: Path, expected: TrainingResult, data: MnistData) -> None:
    assert _same_run(train(CONFIG, data), expected)
    assert _log(root)[-1]["hit"] is True


def _same_run(a: TrainingResult, b: TrainingResult) -> bool:
    return (
        np.array_equal(a.test_accuracy, b.test_accuracy)
        and np.array_equal(a.sigmoid_input_percentiles, b.sigmoid_input_percentiles)
        and all(
            np.array_equal(x, y) for x, y in zip(a.network.weights, b.network.weights, strict=True)
        )
    )


def test_off_without_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_cache.ENV, raising=False)
    assert _cache.cache_location() is None
    calls: list[int] = []

    @_cache.cached
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    assert square(3) == 9 and square(3) == 9
    assert calls == [3, 3]


def test_second_call_is_a_hit_and_equal(cache_dir: Path, data: MnistData) -> None:
    fresh = training._train(CONFIG, data, None)
    first = train(CONFIG, data)
    second = train(CONFIG, data)
    assert _same_run(first, fresh) and _same_run(second, fresh)
    assert [r["hit"] for r in _log(cache_dir)] == [False, True]
    (record,) = _log(cache_dir)[1:]
    location = _cache.cache_location("bnlessons.training", "bnlessons.mnist")
    assert location is not None and location.parent == cache_dir
    assert record["store"] == location.name
    assert location.name.startswith(_cache.library_digest("bnlessons.training", "bnlessons.mnist"))


def test_the_key_covers_the_code_a_run_imports_and_only_that() -> None:
    training_code = _cache._imported_modules("training")
    assert {"training", "mlp", "batchnorm", "mnist", "_step"} <= training_code
    assert not {"figures", "claims", "tables", "symbolic", "norms"} & training_code
    # a NormConfig argument brings its own module (and the layers it builds) into the key
    assert {"norms", "layernorm"} <= _cache._imported_modules("norms")
    assert _cache.library_digest("bnlessons.training") != _cache.library_digest(
        "bnlessons.training", "bnlessons.norms"
    )
    assert _cache.library_digest("bnlessons.training") != _cache.library_digest()


def test_other_inputs_are_other_entries(cache_dir: Path, data: MnistData) -> None:
    a = train(CONFIG, data)
    b = train(TrainingConfig(batch_norm=True, steps=30, eval_every=10, seed=4), data)
    assert not np.array_equal(a.network.weights[0], b.network.weights[0])
    assert [r["hit"] for r in _log(cache_dir)] == [False, False]


def test_truncated_entry_is_recomputed(cache_dir: Path, data: MnistData) -> None:
    first = train(CONFIG, data)
    (entry,) = cache_dir.rglob("output.pkl")
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    again = train(CONFIG, data)
    assert _same_run(again, first)
    records = _log(cache_dir)
    assert records[-1]["hit"] is False and records[-1]["recomputed_corrupt_entry"] is True
    _assert_next_call_hits(cache_dir, first, data)  # the entry was rewritten whole


def test_workers_share_the_cache(cache_dir: Path, data: MnistData) -> None:
    # Two worker processes compute the same entry at the same time (with this process's
    # BLAS configuration, which they inherit, so their runs equal the one computed here).
    a, b = train_many([CONFIG, CONFIG], data, processes=2)
    fresh = training._train(CONFIG, data, None)
    assert _same_run(a, fresh) and _same_run(b, fresh)
    assert len(_log(cache_dir)) == 2
    _assert_next_call_hits(cache_dir, fresh, data)


def test_read_log_counts_from_an_offset(cache_dir: Path, data: MnistData) -> None:
    assert _cache.read_log(cache_dir) == (0, 0, 0)
    train(CONFIG, data)
    hits, misses, end = _cache.read_log(cache_dir)
    assert (hits, misses) == (0, 1) and end > 0
    train(CONFIG, data)
    train(CONFIG, data)
    assert _cache.read_log(cache_dir, end)[:2] == (2, 0)


def _fake_store(root: Path, name: str, size: int) -> None:
    (root / name / "entry").mkdir(parents=True)
    (root / name / "entry" / "output.pkl").write_bytes(b"x" * size)


def _use(root: Path, store: str) -> None:
    with open(root / "log.jsonl", "a") as log:
        log.write(json.dumps({"function": "f", "hit": True, "pid": 1, "store": store}) + "\n")


def test_prune_removes_the_least_recently_used_stores_past_the_limit(tmp_path: Path) -> None:
    for name in ("never", "old", "middle", "new"):
        _fake_store(tmp_path, name, 1000)
    for name in ("middle", "old", "new", "middle"):  # last uses: old, new, middle
        _use(tmp_path, name)
    assert _cache.prune(tmp_path, keep_bytes=4000) == []  # within the limit: nothing goes
    assert _cache.prune(tmp_path, keep_bytes=2500) == ["never", "old"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["middle", "new"]
    assert _cache.prune(tmp_path / "missing", keep_bytes=0) == []


def test_prune_keeps_the_stores_this_build_used(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        _fake_store(tmp_path, name, 1000)
    _use(tmp_path, "a")
    since = (tmp_path / "log.jsonl").stat().st_size  # the build starts here
    _use(tmp_path, "b")
    assert _cache.prune(tmp_path, keep_bytes=0, since=since) == ["c", "a"]
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == ["b"]
