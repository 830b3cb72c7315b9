"""pchw.runlog: writes that never half-replace or silently replace, checkpoint integrity, readable errors."""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import cli
from models.training import load_checkpoint
from pchw.runlog import (
    CheckpointError,
    History,
    RunError,
    atomic_write_text,
    check_writable,
    payload_sha256,
    read_json,
    verify_payload,
    write_json,
)

SYN = ["--dataset", "synthetic", "--depth", "3", "--width", "8", "--quiet", "--device", "cpu"]


def invoke(*args):
    result = CliRunner().invoke(cli.main, list(args))
    return result.exit_code, result.output


# ------------------------------------------------------------------------------ write targets
def test_a_symlink_is_written_through_and_kept(tmp_path):
    target = tmp_path / "real" / "out.json"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    write_json(link, {"a": 1})
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert json.loads(target.read_text()) == {"a": 1}
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.json"]  # no temp file left


def test_a_fifo_is_written_through_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    atomic_write_text(fifo, "through the pipe\n")
    reader.join(timeout=30)
    assert received == [b"through the pipe\n"]
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_folders_and_unwritable_places_are_refused_in_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    for path, fragment in ((tmp_path, "it is a folder"), (tmp_path / "file" / "x.json", "Not a directory"),
                           ("/proc/pchw-test.json", "cannot write /proc/pchw-test.json")):
        with pytest.raises(RunError, match=fragment):
            write_json(path, {})
    with pytest.raises(RunError, match="Not a directory"):
        check_writable(tmp_path / "file" / "x.json")
    with pytest.raises(RunError, match="cannot write /proc"):
        check_writable("/proc/pchw-test.json")
    check_writable(tmp_path / "new" / "deeper" / "x.json")  # creatable: fine, and nothing is created
    assert not (tmp_path / "new").exists()


def test_simulate_json_through_a_symlink_keeps_the_link(tmp_path):
    code, text = invoke("train", *SYN, "--iters", "5", "--out", str(tmp_path / "run"))
    assert code == 0, text
    real = tmp_path / "results.json"
    link = tmp_path / "latest.json"
    link.symlink_to(real)
    code, text = invoke("simulate", "--checkpoint", str(tmp_path / "run"), "--samples", "5", "--quiet",
                        "--json", str(link))
    assert code == 0, text
    assert link.is_symlink() and json.loads(real.read_text())["n_samples"] == 5


# ------------------------------------------------------------------------------ readable errors
def test_read_json_and_history_errors_name_the_file_and_place(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text('{"config": {"depth": 3,}}')
    with pytest.raises(RunError, match=r"config.json is not valid JSON \(.* at line 1, column \d+\)"):
        read_json(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(RunError, match="holds a JSON list, expected an object"):
        read_json(bad)
    hist = tmp_path / "history.csv"
    hist.write_text("iteration,train_loss\n1,0.5\n2,oops\n")
    with pytest.raises(RunError, match=r"history.csv line 3: train_loss='oops' is not a number"):
        History.read(hist)
    hist.write_text("iteration,train_loss\n1,0.5,7\n")
    with pytest.raises(RunError, match="line 2 has a different number of cells"):
        History.read(hist)


# ------------------------------------------------------------------------------ integrity
def test_payload_digest_sees_every_change_and_nothing_else():
    payload = {"w": np.arange(6.0).reshape(2, 3), "it": 3, "name": "x", "nested": [1.5, None, b"\x00"]}
    digest = payload_sha256(payload)
    assert payload_sha256({**payload}) == digest  # key order does not matter
    changed = {**payload, "w": payload["w"].copy()}
    changed["w"][1, 2] = np.nextafter(changed["w"][1, 2], 10)  # one ulp
    for other in (changed, {**payload, "it": 4}, {**payload, "w": payload["w"].astype(np.float32)},
                  {**payload, "w": payload["w"].reshape(3, 2)}, {**payload, "nested": [1.5, None, b"\x01"]}):
        assert payload_sha256(other) != digest
    verify_payload(payload, digest, "p")
    with pytest.raises(CheckpointError, match="fails its integrity check"):
        verify_payload(changed, digest, "p")
    with pytest.raises(CheckpointError, match="carries no integrity digest"):
        verify_payload(payload, None, "p")


def test_a_resume_with_fewer_iterations_changes_nothing(tmp_path):
    out = tmp_path / "run"
    code, text = invoke("train", *SYN, "--iters", "20", "--test-every", "10", "--out", str(out))
    assert code == 0, text
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, text = invoke("train", *SYN, "--iters", "10", "--resume", "--out", str(out))
    assert code == 2 and "has done 20 iterations" in text
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    code, text = invoke("train", *SYN, "--iters", "20", "--resume", "--out", str(out))
    assert code == 0 and "after 20 iterations" in text  # the same budget: nothing to do, the same accuracy


def test_a_full_disk_while_checkpointing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    out = tmp_path / "run"
    code, text = invoke("train", *SYN, "--iters", "10", "--test-every", "5", "--out", str(out))
    assert code == 0, text
    kept = (out / "checkpoint.pt").read_bytes()
    real_replace = os.replace

    def disk_full(src, dst, *args, **kwargs):
        if str(dst).endswith("checkpoint.pt"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", disk_full)
    code, text = invoke("train", *SYN, "--iters", "20", "--test-every", "5", "--resume", "--out", str(out))
    monkeypatch.undo()
    lines = [line for line in text.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, text
    assert "checkpoint at iteration 15 not saved" in lines[0] and "No space left on device" in lines[0]
    assert "the previous checkpoint (iteration 10) is kept" in lines[0]
    assert (out / "checkpoint.pt").read_bytes() == kept
    assert load_checkpoint(out / "checkpoint.pt")["iteration"] == 10
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    code, text = invoke("train", *SYN, "--iters", "20", "--test-every", "5", "--resume", "--out", str(out))
    assert code == 0 and "after 20 iterations" in text  # space again: the run continues from iteration 10


def test_checkpoint_digest_covers_the_optimizer_and_rng_state(tmp_path):
    out = tmp_path / "run"
    code, text = invoke("train", *SYN, "--iters", "4", "--out", str(out))
    assert code == 0, text
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    state["torch_rng"][100] ^= 1  # a valid file whose RNG state changed after the digest was taken
    torch.save(state, out / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="fails its integrity check"):
        load_checkpoint(out / "checkpoint.pt")


def test_the_in_situ_checkpoint_is_verified_too(tmp_path):
    from simulators.insitu import load_insitu

    out = tmp_path / "insitu"
    code, text = invoke("train", "--on", "ideal", *SYN, "--iters", "4", "--out", str(out))
    assert code == 0, text
    spec, weights, _, meta = load_insitu(out)
    assert len(weights) == spec.depth and meta["iteration"] == 4
    with np.load(out / "checkpoint.npz") as f:
        contents = {k: f[k] for k in f.files}
    contents["meta"] = np.array(str(contents["meta"]).replace('"iteration": 4', '"iteration": 3'))
    np.savez(out / "checkpoint.npz", **contents)
    with pytest.raises(CheckpointError, match="fails its integrity check"):
        load_insitu(out)
    Path(out / "checkpoint.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_insitu(out)


def test_random_bytes_anywhere_in_a_checkpoint_never_pass_silently(tmp_path):
    """Flip a byte at random places: the load is refused with a CheckpointError, or (a byte the format
    never reads, e.g. zip padding) it returns exactly the original contents — never changed weights."""
    out = tmp_path / "run"
    code, text = invoke("train", *SYN, "--iters", "3", "--out", str(out))
    assert code == 0, text
    path = out / "checkpoint.pt"
    original = path.read_bytes()
    reference = load_checkpoint(path)
    rng = np.random.default_rng(0)
    refused = 0
    for at in rng.choice(len(original), size=30, replace=False):
        blob = bytearray(original)
        blob[at] ^= int(rng.integers(1, 256))
        path.write_bytes(bytes(blob))
        try:
            state = load_checkpoint(path)
        except CheckpointError:
            refused += 1
            continue
        for key in ("w_in", "w_hid", "w_out"):
            assert torch.equal(state["model"][key], reference["model"][key]), at
        assert state["iteration"] == reference["iteration"] and torch.equal(state["torch_rng"], reference["torch_rng"])
    assert refused >= 8
