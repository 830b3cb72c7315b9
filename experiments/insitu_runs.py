"""In-situ training runs shared by experiment points: run once per configuration, kept on disk.

``get_insitu(config)`` trains ``config`` into ``$PCHW_CACHE/insitu/<hash>/`` (a normal in-situ run
folder) unless a finished run is there. A run is finished only when ``complete.json`` exists,
written atomically after training ends; an interrupted one (Ctrl-C, kill -9) is resumed from its
checkpoint by the next caller, or restarted when it has none. A file lock keeps two workers from
training the same run at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from pchw import smoke
from pchw.data import cache_dir
from pchw.events import EventCounts
from pchw.profiles import HardwareProfile, load_profile
from pchw.runlog import History, read_json, write_json
from simulators.insitu import CHECKPOINT, InsituConfig, load_insitu, train_insitu

COMPLETE = "complete.json"


@dataclass(frozen=True)
class InsituRun:
    """A finished in-situ run: its resolved config, run folder and final measurements."""

    config: InsituConfig
    run_dir: Path
    test_acc: float
    n_test: int
    examples: int
    energy_j: float
    energy_components_j: dict
    inference_energy_j: float
    write_pulses: float
    wall_s: float
    counts: EventCounts

    @property
    def energy_per_example_j(self) -> float:
        return self.energy_j / self.examples


PRICE_ONLY = {"e_mac_j", "e_op_j", "e_sram_bit_j", "e_dram_bit_j", "e_cell_read_j", "t_cell_read_s", "e_dac_j",
              "e_adc_j", "e_neuron_update_j", "e_write_pulse_j", "e_synaptic_event_j", "p_static_w", "name",
              "description"}


def run_key(config: InsituConfig, profile: HardwareProfile | None = None) -> str:
    """A stable hash of everything that decides the run: its config (backend and device only change the
    speed) and the profile's physics — not its prices, which re-price the run's counts exactly."""
    profile = load_profile(config.profile) if profile is None else profile
    d = config.resolved(profile).to_dict()  # the recipe as it runs: a changed default recipe is another run
    for speed_only in ("backend", "device", "test_every"):
        d.pop(speed_only, None)
    physics = {k: v for k, v in profile.values().items() if k not in PRICE_ONLY}
    return hashlib.sha256(json.dumps({"config": d, "physics": physics}, sort_keys=True).encode()).hexdigest()[:16]


def get_insitu(config: InsituConfig, *, profile: HardwareProfile | None = None,
               show_progress: bool = False) -> InsituRun:
    """The finished run of ``config`` (training it first, or finishing an interrupted one); ``profile``
    a variant built in code, instead of ``config.profile``."""
    name = Path(config.profile).stem if profile is None else profile.name.replace("/", "_")
    root = cache_dir() / ("insitu-smoke" if smoke.enabled() else "insitu")  # smoke runs never mix with real ones
    run_dir = root / f"{config.algorithm}-{name}-d{config.depth}-w{config.width}-{run_key(config, profile)}"
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (run_dir / COMPLETE).exists():
                resume = (run_dir / CHECKPOINT).exists()
                if not resume:
                    for stale in ("history.csv", "config.json"):
                        (run_dir / stale).unlink(missing_ok=True)
                r = train_insitu(config, out_dir=run_dir, resume=resume, show_progress=show_progress, profile=profile)
                write_json(run_dir / COMPLETE, {
                    "test_acc": r.test_acc, "n_test": r.n_test, "examples": r.examples, "energy_j": r.energy_j,
                    "energy_components_j": r.energy_components_j, "inference_energy_j": r.inference_energy_j,
                    "write_pulses": r.write_pulses, "wall_s": r.wall_s})
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    done = read_json(run_dir / COMPLETE)
    _, _, saved, meta = load_insitu(run_dir)
    return InsituRun(config=saved, run_dir=run_dir, counts=EventCounts.from_dict(meta["counts"]), **done)


def history(run: InsituRun) -> History:
    """The run's per-iteration history (accuracy and the cumulative ledger at every test point)."""
    return History.read(run.run_dir / "history.csv")
