"""Tests of bnlessons.mnist: IDX files built byte by byte in tmp_path, and the bundled subset."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from bnlessons.mnist import images_to_features, load_mnist, read_idx


def idx_bytes(array: NDArray[np.uint8], *, type_code: int = 0x08) -> bytes:
    """The IDX encoding written out from the format's definition (big-endian header)."""
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(
        struct.pack(">I", size) for size in array.shape
    )
    return header + array.astype(np.uint8).tobytes(order="C")


def write_idx_dir(
    directory: Path,
    *,
    n_train: int = 6,
    n_test: int = 4,
    side: int = 3,
    compress: bool = False,
) -> dict[str, NDArray[np.uint8]]:
    rng = np.random.default_rng(7)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in arrays.items():
        blob = idx_bytes(array)
        if compress:
            (directory / (name + ".gz")).write_bytes(gzip.compress(blob))
        else:
            (directory / name).write_bytes(blob)
    return arrays


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(tmp_path: Path, compress: bool) -> None:
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    blob = idx_bytes(array)
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(gzip.compress(blob) if compress else blob)
    got = read_idx(path)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, array)


def test_read_idx_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope-idx1-ubyte"):
        read_idx(tmp_path / "nope-idx1-ubyte")


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"", "empty file"),
        (b"\x00\x01\x08\x01\x00\x00\x00\x01\x05", "two zero bytes"),
        (b"\x00\x00\x0d\x01\x00\x00\x00\x01\x05", "element type 0x08"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x01", "3 dimensions"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02", "need 5 data bytes, got 2"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x01\x01\x02", "need 1 data bytes, got 2"),
        (b"\x1f\x8b\x08\x00garbage", "corrupt gzip"),
    ],
)
def test_read_idx_rejects_corrupt_files(tmp_path: Path, blob: bytes, message: str) -> None:
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(blob)
    with pytest.raises(ValueError, match=message) as info:
        read_idx(path)
    assert "bad-idx1-ubyte" in str(info.value)


def test_read_idx_truncated_gzip(tmp_path: Path) -> None:
    blob = gzip.compress(idx_bytes(np.zeros((50, 28, 28), dtype=np.uint8)))
    path = tmp_path / "cut-idx3-ubyte.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match=r"cut-idx3-ubyte\.gz"):
        read_idx(path)


@pytest.mark.parametrize("compress", [False, True])
def test_load_mnist_from_idx_directory(tmp_path: Path, compress: bool) -> None:
    arrays = write_idx_dir(tmp_path, compress=compress)
    data = load_mnist(tmp_path)
    np.testing.assert_array_equal(data.train_images, arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(data.train_labels, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(data.test_images, arrays["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(data.test_labels, arrays["t10k-labels-idx1-ubyte"])
    assert data.train_labels.dtype == np.int64


def test_load_mnist_missing_file_is_named(tmp_path: Path) -> None:
    write_idx_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path)


def test_load_mnist_data_dir_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="data_dir"):
        load_mnist(tmp_path / "absent")


def test_load_mnist_swapped_magic_numbers(tmp_path: Path) -> None:
    """Labels where images belong: the image file has 1 dimension (magic 0x801)."""
    arrays = write_idx_dir(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(
        idx_bytes(arrays["train-labels-idx1-ubyte"])
    )
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.*expected 3 dimensions"):
        load_mnist(tmp_path)


def test_load_mnist_count_mismatch(tmp_path: Path) -> None:
    write_idx_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(3, dtype=np.uint8)))
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        load_mnist(tmp_path)


def test_load_mnist_bad_labels(tmp_path: Path) -> None:
    write_idx_dir(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(
        idx_bytes(np.array([0, 1, 2, 3, 4, 12], dtype=np.uint8))
    )
    with pytest.raises(ValueError, match="labels 0-9, got 12"):
        load_mnist(tmp_path)


def test_load_mnist_train_test_dims_differ(tmp_path: Path) -> None:
    write_idx_dir(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((4, 2, 3), np.uint8)))
    with pytest.raises(ValueError, match=r"\(3, 3\).*\(2, 3\)"):
        load_mnist(tmp_path)


def test_bundled_split_is_stratified_disjoint_and_deterministic() -> None:
    data = load_mnist()
    assert data.train_images.shape == (8000, 28, 28)
    assert data.test_images.shape == (2000, 28, 28)
    assert data.train_images.dtype == np.uint8
    # Each class puts 20% of its digits, rounded, in the test set.
    total = np.bincount(data.train_labels, minlength=10) + np.bincount(
        data.test_labels, minlength=10
    )
    assert total.sum() == 10_000
    test_counts = np.bincount(data.test_labels, minlength=10)
    assert np.all(np.abs(test_counts - 0.2 * total) < 1)
    # Disjoint: no image appears in both sets (hash rows).
    train_keys = {row.tobytes() for row in data.train_images}
    assert not any(row.tobytes() in train_keys for row in data.test_images[:500])
    again = load_mnist()
    np.testing.assert_array_equal(again.test_images, data.test_images)
    np.testing.assert_array_equal(again.train_labels, data.train_labels)
    other = load_mnist(seed=1)
    assert not np.array_equal(other.test_labels, data.test_labels)


def test_bundled_digits_look_like_mnist() -> None:
    data = load_mnist()
    images = np.concatenate([data.train_images, data.test_images])
    # MNIST digits: background 0, ink up to 255, centred in a 20x20 box with a blank border.
    assert images.min() == 0 and images.max() == 255
    assert np.mean(images[:, :2, :] == 0) > 0.99
    mean_ink = images.reshape(len(images), -1).mean(axis=1)
    assert 10 < float(np.median(mean_ink)) < 60


@pytest.mark.parametrize("test_size", [0, 10_000, -5])
def test_load_mnist_bad_test_size(test_size: int) -> None:
    with pytest.raises(ValueError, match="test_size"):
        load_mnist(test_size=test_size)


def test_load_mnist_test_size_type() -> None:
    with pytest.raises(TypeError, match="test_size"):
        load_mnist(test_size=0.2)  # type: ignore[arg-type]


def test_images_to_features() -> None:
    images = np.array([[[0, 51], [102, 255]]], dtype=np.uint8)
    features = images_to_features(images)
    assert features.dtype == np.float32
    np.testing.assert_allclose(features, [[0.0, 0.2, 0.4, 1.0]], rtol=1e-7)
    with pytest.raises(ValueError, match="images"):
        images_to_features(images.astype(np.float64))  # type: ignore[arg-type]
