"""Tests of the command line ``python -m bnlessons``."""

from __future__ import annotations

import dataclasses
import gzip
import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bnlessons.__main__ import _TUNABLE, _parser, main
from bnlessons.training import FIGURE1


def test_tiny_figure1_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "fig.png"
    status = main(["figure1", "--steps", "12", "--eval-every", "5", "--out", str(out)])
    assert status == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["config"] == {
        "hidden_sizes": [100, 100, 100],
        "init_std": 1.0,
        "learning_rate": 0.1,
        "batch_size": 60,
        "steps": 12,
        "eval_every": 5,
        "tracked_unit": 0,
        "seed": 0,
        "dtype": "float32",
    }
    assert record["data"]["source"] == "bundled"
    for key, batch_norm in (("without_bn", False), ("with_bn", True)):
        run = record[key]
        assert run["batch_norm"] is batch_norm
        assert run["steps"] == [0, 5, 10, 12]
        assert len(run["test_accuracy"]) == 4
        assert all(0 <= a <= 1 for a in run["test_accuracy"])
        bands = run["sigmoid_input_percentiles"]
        assert sorted(bands) == ["15", "50", "85"]
        assert all(
            lo <= mid <= hi
            for lo, mid, hi in zip(bands["15"], bands["50"], bands["85"], strict=True)
        )
    captured = capsys.readouterr()
    final = [line for line in captured.out.splitlines() if line.startswith("final test accuracy")]
    assert len(final) == 2
    assert f"{record['without_bn']['test_accuracy'][-1]:.4f}" in final[0]
    assert f"{record['with_bn']['test_accuracy'][-1]:.4f}" in final[1]
    assert "100%" in captured.err  # the progress bar went to stderr
    assert "8/8" in captured.err  # one tick per evaluation: (0, 5, 10, 12) for each run


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def test_data_dir_and_json_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    data_dir = tmp_path / "idx"
    data_dir.mkdir()
    write_idx(data_dir / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (40, 4, 4)))
    write_idx(data_dir / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, 40))
    write_idx(data_dir / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (10, 4, 4)))
    write_idx(data_dir / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, 10))
    out, curves = tmp_path / "f.svg", tmp_path / "curves.json"
    argv = ["figure1", "--steps", "3", "--batch-size", "8", "--out", str(out)]
    argv += ["--json", str(curves), "--data-dir", str(data_dir), "--no-progress"]
    assert main(argv) == 0
    record = json.loads(curves.read_text())
    assert record["data"]["train_examples"] == 40
    assert record["data"]["test_examples"] == 10
    assert out.read_text().startswith("<?xml")
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "required: COMMAND"),
        (["figure2", "--out", "x.png"], "invalid choice: 'figure2'"),
        (["figure1"], "required: --out"),
        (
            ["figure1", "--out", "x.png", "--steps", "0"],
            "--steps: expected an int >= 1, got 0",
        ),
        (["figure1", "--out", "x.png", "--steps", "ten"], "--steps: invalid int value: 'ten'"),
        (["figure1", "--out", "x.png", "--learning-rate", "-1"], "--learning-rate"),
        (["figure1", "--out", "x.png", "--init-std", "inf"], "--init-std"),
        (["figure1", "--out", "x.png", "--seed", "-2"], "--seed"),
        (
            ["figure1", "--out", "x.png", "--batch-size", "1"],
            "--batch-size: expected an int >= 2, got 1",
        ),
        (["figure1", "--out", "x.jpg"], "--out: expected a name ending in one of"),
        (["figure1", "--out", "missing-dir/x.png"], "--out: directory"),
        (["figure1", "--out", "x.png", "--data-dir", "no-such-dir"], "--data-dir: data_dir"),
        (["figure1", "--out", "x.png", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_give_usage_errors(
    argv: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err
    assert message in err
    assert "Traceback" not in err
    assert not list(tmp_path.iterdir())  # nothing written


def test_corrupt_idx_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03\x00")
    for name in ("train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / name).write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x00")
    with pytest.raises(SystemExit) as info:
        main(["figure1", "--out", str(tmp_path / "f.png"), "--data-dir", str(tmp_path)])
    assert info.value.code == 2
    assert "train-images-idx3-ubyte" in capsys.readouterr().err


def test_python_dash_m_entry_point() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bnlessons", "figure1", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert "--data-dir" in done.stdout and "--steps" in done.stdout


def test_defaults_are_the_figure1_preset() -> None:
    """Every option of figure1 defaults to the field of FIGURE1 it sets, none to a literal."""
    parser, _ = _parser()
    args = parser.parse_args(["figure1", "--out", "x.png"])
    for name, *_ in _TUNABLE:
        assert getattr(args, name) == getattr(FIGURE1, name), name
    assert {name for name, *_ in _TUNABLE} <= {f.name for f in dataclasses.fields(FIGURE1)}
    assert (FIGURE1.init_std, FIGURE1.learning_rate, FIGURE1.steps) == (1.0, 0.1, 50_000)
