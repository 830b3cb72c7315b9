"""Default in-situ training recipes: what ``pchw train --on PROFILE`` does with no recipe flags.

A recipe is the part of an in-situ run that is a choice rather than hardware: relaxation length
and update window, dt/τ, learning rates and their schedule, zero shifting. The default depends on
the algorithm and on what the profile's circuit does to a learning signal; every default below
was chosen by measurement, recorded in ``why`` (and in the README's in-situ section):

- PC on a circuit whose MVMs are noisy or quantised (``analog-rram-clocked``): μPC's hidden errors
  (1e-4…1e-3 RMS) sit far below the per-step MVM noise, so a snapshot update is noise; the errors
  are averaged over a long window of the relaxation, reads are zero-shifted to the devices'
  symmetry point (soft-bounded asymmetric devices), the rate decays (cosine).
- PC on a circuit with exact MVMs (continuous RRAM, switched-capacitor): the short snapshot recipe
  of the ideal circuit. On a rate-coded neuromorphic chip (Loihi preset, 5-bit rates) the forward
  sweep's quantised messages leave errors the snapshot's hidden ×100 update amplifies until the
  network falls silent; a gentler hidden rate (×30) and a cosine decay learn.
- BP (analog SGD): one backward sweep per batch; its deltas are read through arrays whose noise
  scales with the deltas themselves, so no window is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from pchw.profiles import HardwareProfile, Substrate


class Algorithm(StrEnum):
    """What learns in situ."""

    PC = "pc"  # predictive coding: relaxation of the clamped circuit, update from its error neurons
    BP = "bp"  # backprop: forward sweep, backward sweep through the transposed arrays, update from the deltas


@dataclass(frozen=True)
class Recipe:
    """The recipe fields of an in-situ run (see :class:`simulators.insitu.InsituConfig`) and why."""

    name: str
    n_steps: int
    update_window: int
    h: float | None
    param_lr: float
    hidden_lr_mult: float
    lr_schedule: str
    zero_shift: bool
    why: str


def has_symmetry_point(profile: HardwareProfile) -> bool:
    """Soft-bounded asymmetric devices drift to a symmetry point that zero shifting can aim at."""
    return bool(profile.soft_bounds) and profile.up_down_asym != 0 and profile.dw_min_frac > 0


def noisy_reads(profile: HardwareProfile) -> bool:
    """MVMs whose outputs carry read or output noise or pass through converters."""
    return bool(profile.read_noise_frac or profile.out_noise_frac or profile.quantize_io)


PC_WINDOW = Recipe(
    name="pc-window", n_steps=420, update_window=400, h=None, param_lr=0.03, hidden_lr_mult=30.0,
    lr_schedule="cosine", zero_shift=True,
    why="analog-rram-clocked, depth 5, width 128, one MNIST epoch, 10,000 test images: 89.7 % on 256 × 256 "
        "bit-serial tiles (90.9 % on the earlier one-read layout, where a 20-step snapshot gave 60.4 %, "
        "no zero shift 20.0 %, a constant rate 87.7 %)")
PC_SNAPSHOT = Recipe(
    name="pc-snapshot", n_steps=20, update_window=0, h=None, param_lr=0.03, hidden_lr_mult=100.0,
    lr_schedule="constant", zero_shift=False,
    why="exact MVMs: the errors after a 20-step relaxation are the learning signal of the ideal circuit")
PC_RATE_CODED = replace(
    PC_SNAPSHOT, name="pc-rate-coded", hidden_lr_mult=30.0, lr_schedule="cosine",
    why="neuromorphic-loihi (5-bit rate code), depth 5, width 128, one MNIST epoch (2000 test images): "
        "86.5 %; the ideal circuit's snapshot recipe (hidden ×100, constant rate) silences the network "
        "(8.8 %), as do hidden ×30 at a constant rate, ×100 with a cosine decay, lr 0.01, and a 40-step window")
BP_SGD = Recipe(
    name="bp-sgd", n_steps=0, update_window=0, h=None, param_lr=0.01, hidden_lr_mult=100.0,
    lr_schedule="cosine", zero_shift=True,
    why="analog-rram-clocked, depth 5, width 128, one MNIST epoch (2000 test images): 90.2 %; lr 0.03 88.0 %, "
        "0.1 diverges; hidden ×1 learns slowly (μP's hidden deltas are ~1/√N of the output's); constant rate 63 %")


def rate_coded(profile: HardwareProfile) -> bool:
    """A neuromorphic profile whose forward sweep sends rate codes (quantised messages)."""
    return profile.substrate is Substrate.NEUROMORPHIC and int(profile.rate_code_bits) > 0


def default_recipe(profile: HardwareProfile, algorithm: Algorithm | str) -> Recipe:
    """The recipe ``pchw train --on profile`` uses for ``algorithm`` when no recipe flag is given."""
    algorithm = Algorithm(algorithm)
    if algorithm is Algorithm.BP:
        base = BP_SGD
    elif noisy_reads(profile):
        base = PC_WINDOW
    else:
        base = PC_RATE_CODED if rate_coded(profile) else PC_SNAPSHOT
    if base.zero_shift and not has_symmetry_point(profile):
        base = replace(base, zero_shift=False)
    return base
