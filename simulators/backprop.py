"""Backprop trained in situ on the same analog arrays as PC (analog SGD: Gokmen & Vlasov 2016,
Front. Neurosci. 10:333; IBM aihwkit's AnalogSGD).

One learning step of a batch, every MVM through the same converters and noise as PC's:

1. the forward sweep (:mod:`simulators.forward`): z_1..z_H and the output, each crossbar read once;
2. in the digital periphery, the negative loss gradient of ½‖y − out‖²: d_L = y − out;
3. the backward sweep through the same arrays read along their columns (transposed MVMs):
       d_H = φ'(z_H) ⊙ a_L W_Lᵀ d_L
       d_ℓ = d_{ℓ+1}·skip + φ'(z_ℓ) ⊙ a_{ℓ+1} W_{ℓ+1}ᵀ d_{ℓ+1}        ℓ = H−1..1
   (φ'(z) and the skip sums in the periphery, the activations kept there since the sweep);
4. every crossbar takes ΔW_ℓ = η_ℓ (a_ℓ/B) Σ_b d_ℓ,b p_ℓ,bᵀ = −η_ℓ ∂L̄/∂W_ℓ (L̄ the batch-mean loss) with
   the same pulsed device model as PC's update (:mod:`simulators.learning`).

So PC and BP on a substrate differ only in the algorithm: PC's learning signals are its error
neurons after a relaxation, BP's the deltas of one backward sweep. Events: the sweep, the backward
sweep and the update (:mod:`pchw.circuit_events`), priced by the profile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pchw.circuit_events import backward_sweep_counts, forward_sweep_counts, with_reference_reads
from pchw.events import EnergyReport, EventCounts, price
from pchw.oracle import dphi, phi
from pchw.profiles import HardwareProfile
from pchw.spec import NetworkSpec

from .circuit import Circuit, prepare_circuit
from .forward import forward_sweep
from .learning import Learning, apply_update
from .noise import BACKWARD_EVAL
from .reference import mvm


@dataclass(frozen=True)
class BackpropStep:
    """One in-situ backprop step: new device states, the batch's loss before the update (mean of
    ½‖y − out‖² over the batch, as the circuit computed out), its events and their price."""

    weights: list[np.ndarray]
    loss: float
    output: np.ndarray
    write_pulses: float
    counts: EventCounts
    energy: EnergyReport


def backward_sweep(circuit: Circuit, z: np.ndarray, d_out: np.ndarray, samples: np.ndarray) -> list[np.ndarray]:
    """The deltas d_1..d_L (B, n_ℓ) from d_L = ``d_out`` through the transposed arrays (see above)."""
    spec, noise = circuit.spec, circuit.noise
    last = spec.depth - 1
    dz = circuit.gains[:, None, :] * dphi(spec.act, z)
    deltas = [None] * spec.depth
    deltas[last] = d_out
    w_hid, w_out = circuit.w_fb if circuit.w_fb is not None else (circuit.w_hid, circuit.w_out)
    back = circuit.a_out * mvm(circuit, noise, w_out.T, d_out, last, 1, BACKWARD_EVAL, samples)
    deltas[last - 1] = dz[-1] * back
    for l in range(spec.n_hidden - 2, -1, -1):  # d_ℓ from d_{ℓ+1} through crossbar ℓ+1
        back = circuit.a_hid * mvm(circuit, noise, w_hid[l].T, deltas[l + 1], l + 1, 1, BACKWARD_EVAL, samples)
        deltas[l] = dz[l] * back + (deltas[l + 1] if spec.skip else 0.0)
    return deltas


def backprop_step(spec: NetworkSpec, states: list[np.ndarray], x: np.ndarray, y: np.ndarray, *,
                  profile: HardwareProfile, w_max: np.ndarray, learning: Learning, seed: int = 0,
                  sample_offset: int = 0, reference: np.ndarray | None = None) -> BackpropStep:
    """One in-situ backprop step of the batch (x (B, D), one-hot y (B, d_y)) on ``profile``'s arrays,
    whose device states are ``states`` with conductance ranges ``w_max`` (and optional references)."""
    circuit = prepare_circuit(spec, states, profile, dt_s=profile.dt_s, seed=seed, w_max=w_max, reference=reference)
    batch = x.shape[0]
    samples = sample_offset + np.arange(batch)
    sweep = forward_sweep(circuit, x, samples)
    d_out = y - sweep.output
    deltas = backward_sweep(circuit, sweep.z, d_out, samples)
    pre = [x] + list(circuit.gains[:, None, :] * phi(spec.act, sweep.z))
    update = apply_update(spec, states, deltas, pre, learning=learning, w_max=w_max, profile=profile, seed=seed)
    events = sweep.synaptic_events if profile.substrate.value == "neuromorphic" else None
    counts = forward_sweep_counts(spec, profile, n_samples=batch, synaptic_events=events)
    counts = counts + backward_sweep_counts(spec, profile, n_samples=batch)
    if circuit.has_reference:
        counts = with_reference_reads(counts)
    counts = counts + update.counts
    return BackpropStep(weights=update.states, loss=0.5 * float(np.sum(d_out * d_out)) / batch, output=sweep.output,
                        write_pulses=update.write_pulses, counts=counts, energy=price(counts, profile))
