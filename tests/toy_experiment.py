"""A toy experiment for the runner tests: instant, optionally slow or failing.

``PCHW_TOY_CALLS=<file>`` makes every ``run()`` append ``a``, its OPENBLAS_NUM_THREADS and its
process id to that file, so tests can count
calls across worker processes; ``PCHW_TOY_FAIL=2,3`` makes those values of ``a`` fail without
changing the config (a transient failure: the retry has the same run id).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

NAME = "toy"
TITLE = "Toy experiment (runner tests)"
DESCRIPTION = "value = a * b; fails when a == fail_on; sleeps sleep_s."


@dataclass(frozen=True)
class Config:
    a: int = 1
    b: float = 0.5
    fail_on: int = -1
    sleep_s: float = 0.0


GRID: dict[str, list] = {"a": [1, 2, 3]}


def run(config: Config) -> dict:
    calls = os.environ.get("PCHW_TOY_CALLS")
    if calls:
        with open(calls, "a", encoding="utf-8") as f:
            f.write(f"{config.a} {os.environ.get('OPENBLAS_NUM_THREADS')} {os.getpid()}\n")
    if config.sleep_s:
        time.sleep(config.sleep_s)
    transient = {int(x) for x in os.environ.get("PCHW_TOY_FAIL", "").split(",") if x.strip()}
    if config.a == config.fail_on or config.a in transient:
        raise RuntimeError(f"toy failure at a={config.a}\nsecond line")
    return {"value": config.a * config.b, "energy_j": config.a * 1e-9}


def describe(table: list[dict]) -> dict[str, str]:
    """The sentence under value.png: what it shows, with the numbers of this table."""
    rows = sorted(table, key=lambda r: r["p_a"])
    first, last = rows[0], rows[-1]
    return {"value.png": f"value = a·b rises linearly with a, from {first['value']:g} at a={first['p_a']} to "
                         f"{last['value']:g} at a={last['p_a']} ({len(rows)} ok points)."}


def plot(table: list[dict], outdir: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    rows = sorted(table, key=lambda r: r["p_a"])
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([r["p_a"] for r in rows], [r["value"] for r in rows], marker="o")
    ax.set_xlabel("a")
    ax.set_ylabel("value")
    path = Path(outdir) / "value.png"
    fig.savefig(path, dpi=60)
    plt.close(fig)
    return [path]
