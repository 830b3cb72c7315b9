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
