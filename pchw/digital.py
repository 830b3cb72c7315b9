"""Analytic event counts of BP and PC on digital hardware (GPU, ASIC), from the network shape.

Notation: D input, N width, H = L − 1 hidden layers, d_y outputs, B batch, T inference steps.
    M_f = D·N + (H−1)·N² + N·d_y   MACs of one sample's full forward pass (= number of weights P)
    M_h = (H−1)·N² + N·d_y         the same without the input layer (x needs no error)

Per batch:
    BP   forward B·M_f, backward B·(M_h + M_f) (activation grads + weight grads), Adam.
    PC   feedforward init B·M_f; T inference steps of 2·B·M_h (predictions + feedback);
         learning B·M_f (final errors) + B·M_f (weight grads), Adam.
    inference (both): one forward pass B·M_f.

Elementwise ops per sample, counted from the update equations (DESIGN.md §2):
    activation φ: H·N per pass; BP backward φ'⊙: H·N; loss: 2·d_y;
    one PC inference step: φ (H·N), errors (H·N + d_y), φ'⊙feedback (H·N), and the update
        z ← z − c(ε − fb − ε_next) (3·H·N) plus the output error's square (d_y) → 6·H·N + 2·d_y;
    Adam: 12 ops per weight (m: 3, v: 4, √v̂ + ε and the division: 3, step and subtract: 2).

Memory traffic at the profile's precision (``b`` bits per value):
    weights: P·b bits read per pass over the layers (a batch reuses each weight read); passes are
        BP 2 (+ Adam's read-modify-write), PC 1 + 2T + 2 (+ Adam), inference 1. They come from
        SRAM when all weights fit in ``sram_bytes``, else from DRAM (the one-off load of
        weights that fit is not counted).
    activations: every value written once and read once per use (BP stores H·N per sample for
        the backward pass; PC reads and writes z and ε every step); on chip when weights plus
        the activations of a batch fit in ``sram_bytes``, else off chip.
    Adam: the gradient, m and v (3·P values) read and m, v, W (3·P) written per update.
"""

from __future__ import annotations

from dataclasses import dataclass

from .events import EventCounts
from .profiles import HardwareProfile
from .spec import NetworkSpec

ADAM_OPS_PER_WEIGHT = 12


@dataclass(frozen=True)
class _Shape:
    macs_full: int  # M_f
    macs_hidden: int  # M_h
    hidden_neurons: int  # H·N
    outputs: int  # d_y

    @classmethod
    def of(cls, spec: NetworkSpec) -> _Shape:
        n, h = spec.width, spec.n_hidden
        m_h = (h - 1) * n * n + n * spec.output_dim
        return cls(spec.input_dim * n + m_h, m_h, h * n, spec.output_dim)


def _traffic(profile: HardwareProfile, *, weights: int, weight_passes: float, act_values: float,
             act_footprint: float, adam_values: float) -> dict:
    """SRAM/DRAM bits for given weight passes and activation values (reads + writes split evenly)."""
    bits = profile.precision.bits
    weight_bits = weights * bits
    weights_fit = weights * bits / 8 <= profile.sram_bytes
    acts_fit = (weights + act_footprint) * bits / 8 <= profile.sram_bytes
    sram_r = sram_w = dram_r = dram_w = 0.0
    if weights_fit:
        sram_r += weight_passes * weight_bits + adam_values * bits
        sram_w += adam_values * bits
    else:
        dram_r += weight_passes * weight_bits + adam_values * bits
        dram_w += adam_values * bits
    act_bits = act_values * bits
    if acts_fit:
        sram_r += act_bits
        sram_w += act_bits
    else:
        dram_r += act_bits
        dram_w += act_bits
    return {"sram_read_bits": sram_r, "sram_write_bits": sram_w, "dram_read_bits": dram_r,
            "dram_write_bits": dram_w}


def digital_training_counts(spec: NetworkSpec, profile: HardwareProfile, *, algorithm: str,
                            batch_size: int, n_steps: int | None = None) -> EventCounts:
    """Events of one training step (one batch) of ``algorithm`` (``bp`` or ``pc``)."""
    s, b, p = _Shape.of(spec), batch_size, profile.precision.value
    if algorithm == "bp":
        macs = b * (s.macs_full + s.macs_hidden + s.macs_full)
        ops = b * (2 * s.hidden_neurons + 2 * s.outputs) + ADAM_OPS_PER_WEIGHT * s.macs_full
        passes = 2.0
        act_values = 2.0 * b * s.hidden_neurons  # stored in the forward pass, read in the backward pass
        footprint = b * s.hidden_neurons
    elif algorithm == "pc":
        t = spec.n_hidden if n_steps is None else n_steps
        step_ops = 6 * s.hidden_neurons + 2 * s.outputs
        macs = b * (s.macs_full + t * 2 * s.macs_hidden + 2 * s.macs_full)
        ops = b * (s.hidden_neurons + t * step_ops + 2 * s.hidden_neurons) + ADAM_OPS_PER_WEIGHT * s.macs_full
        passes = 1.0 + 2.0 * t + 2.0
        act_values = b * s.hidden_neurons * (1 + 4 * t + 4)  # write z; per step read/write z and ε; learning
        footprint = 2 * b * s.hidden_neurons  # z and ε
    else:
        raise ValueError(f"algorithm={algorithm!r} must be 'bp' or 'pc'")
    traffic = _traffic(profile, weights=s.macs_full, weight_passes=passes, act_values=act_values,
                       act_footprint=footprint, adam_values=3.0 * s.macs_full)
    return EventCounts(macs={p: float(macs)}, ops={p: float(ops)}, **traffic)


def digital_inference_counts(spec: NetworkSpec, profile: HardwareProfile, *, batch_size: int = 1) -> EventCounts:
    """Events of a feedforward prediction for ``batch_size`` samples."""
    s, b, p = _Shape.of(spec), batch_size, profile.precision.value
    traffic = _traffic(profile, weights=s.macs_full, weight_passes=1.0, act_values=2.0 * b * s.hidden_neurons,
                       act_footprint=b * spec.width, adam_values=0.0)
    return EventCounts(macs={p: float(b * s.macs_full)}, ops={p: float(b * s.hidden_neurons)}, **traffic)
