"""Shared test helpers."""

import pytest

from pchw import runlog


@pytest.fixture
def ctrl_c_after(monkeypatch):
    """``ctrl_c_after(n)``: the training loop sees a Ctrl-C once it has finished iteration n
    (``monkeypatch.undo()`` restores the real guard)."""

    def install(n: int) -> None:
        class FakeGuard(runlog.InterruptGuard):
            checks = 0

            @property
            def requested(self):
                FakeGuard.checks += 1
                return FakeGuard.checks >= n

            @requested.setter
            def requested(self, value):
                pass

        monkeypatch.setattr(runlog, "InterruptGuard", FakeGuard)

    return install


@pytest.fixture
def axis_labels(monkeypatch):
    """Record the axis labels of every figure saved while the test runs: {file name: [label, ...]}."""
    from pathlib import Path

    from matplotlib.figure import Figure

    seen: dict[str, list[str]] = {}
    real_savefig = Figure.savefig

    def savefig(self, fname, *args, **kwargs):
        labels = [t for ax in self.axes for t in (ax.get_xlabel(), ax.get_ylabel()) if t]
        seen[Path(str(fname)).name] = labels
        return real_savefig(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return seen


@pytest.fixture
def assert_reported(axis_labels):
    """``assert_reported(module, rows, paths)``: every figure the module drew (while the test ran) has a
    unit on each axis label and a sentence with numbers from the module's ``describe(rows)``."""

    def check(module, rows: list[dict], paths: list) -> None:
        captions = module.describe(rows)
        for path in paths:
            assert axis_labels[path.name], f"{path.name} has no axis labels"
            for label in axis_labels[path.name]:
                assert "(" in label and ")" in label, f"{path.name}: axis label {label!r} names no unit"
            sentence = captions.get(path.name, "")
            assert sentence.endswith(".") and any(c.isdigit() for c in sentence), f"{path.name}: {sentence!r}"

    return check
