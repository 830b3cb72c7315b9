"""The physical forward pass of a circuit: one sweep, each crossbar read once with its input held.

    μ_1 = a_1 W_1 x,   z_1 = μ_1
    z_ℓ = z_{ℓ−1}·skip + a_ℓ W_ℓ g·φ(z_{ℓ−1})       ℓ = 2..H   (sample-and-hold between layers)
    out = a_L W_L g·φ(z_H)

Every MVM goes through the circuit's converter and noise model (:mod:`simulators.mvm`), with its
own draws (the input crossbar at the counters of μ_1, which the PC phase then holds and reuses;
the others at ``SWEEP_EVAL``). On a neuromorphic profile with a rate code (``rate_code_bits``)
every crossbar input is the rate code: p ← s·rint(p/s · (2^b − 1))/(2^b − 1) with s = max|p| per
sample, and each of its |rint(·)| spikes is one synaptic event at every synapse of its column
(graded messages, ``rate_code_bits`` = 0: one event per synapse of every non-zero input).

This is what a prediction costs and computes on a circuit (and what backprop's inference is);
the emulated alternative — integrating the forward cascade of lags for hundreds of steps — stays
available as ``init="cascade"`` of :func:`simulators.simulate`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pchw.circuit_events import forward_sweep_counts, with_reference_reads
from pchw.events import EventCounts
from pchw.oracle import phi
from pchw.profiles import Substrate

from .circuit import Circuit
from .noise import MU_FIRST_EVAL, SWEEP_EVAL, TEST_EVALS, corr_shape, corr_start_np
from .reference import mvm


@dataclass
class Sweep:
    """A forward sweep's result: z (H, B, N) the hidden activities as held, output (B, d_y),
    mu_first (B, N) the input crossbar's read, synaptic_events the messages' synaptic events
    (neuromorphic sweeps; 0 otherwise), all samples together."""

    z: np.ndarray
    output: np.ndarray
    mu_first: np.ndarray
    synaptic_events: float = 0.0


def _rate_code(p: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(the rate-coded input, the spikes each input fires) for p (B, n_in)."""
    levels = 2**bits - 1
    scale = np.max(np.abs(p), axis=1, keepdims=True)
    safe = np.where(scale > 0, scale, 1.0)
    q = np.rint(p / safe * levels)
    return q / levels * safe, np.abs(q)


def forward_sweep(circuit: Circuit, x: np.ndarray, samples: np.ndarray, *,
                  evals: tuple[int, int] = (MU_FIRST_EVAL, SWEEP_EVAL), corr: np.ndarray | None = None) -> Sweep:
    """The prediction of ``circuit`` for inputs x (B, D); ``samples`` (B,) index the noise counters and
    ``evals`` the evaluation indices of the input crossbar's read and of the others'; ``corr`` the
    correlated read noise at the sweep's time (:mod:`simulators.noise`), when the profile has it."""
    spec, noise = circuit.spec, circuit.noise
    spiking = circuit.profile.substrate is Substrate.NEUROMORPHIC
    rate_bits = int(circuit.profile.rate_code_bits) if spiking else 0
    events = 0.0

    def read(w, p, crossbar: int, eval_index: int):
        nonlocal events
        if rate_bits:
            p, spikes = _rate_code(p, rate_bits)
            events += float(spikes.sum()) * w.shape[0]
        elif spiking:  # graded messages: one event per synapse of every non-zero input
            events += float(np.count_nonzero(p)) * w.shape[0]
        return mvm(circuit, noise, w, p, crossbar, 0, eval_index, samples, corr)

    mu_first = circuit.a_in * read(circuit.w_in, x, 0, evals[0])
    z = np.empty((spec.n_hidden, x.shape[0], spec.width))
    z[0] = mu_first
    for l in range(1, spec.n_hidden):
        mu = circuit.a_hid * read(circuit.w_hid[l - 1], circuit.gains[l - 1] * phi(spec.act, z[l - 1]), l, evals[1])
        z[l] = z[l - 1] + mu if spec.skip else mu
    output = circuit.a_out * read(circuit.w_out, circuit.gains[-1] * phi(spec.act, z[-1]), spec.depth - 1, evals[1])
    return Sweep(z=z, output=output, mu_first=mu_first, synaptic_events=events)


def predict(circuit: Circuit, x: np.ndarray, *, sample_offset: int = 0, chunk: int = 2000
            ) -> tuple[np.ndarray, EventCounts]:
    """A trained chip's predicted classes for test inputs x (B, D) by forward sweeps in chunks (their
    noise drawn apart from training's), and their events."""
    labels = np.empty(len(x), dtype=np.int64)
    events = 0.0
    for start in range(0, len(x), chunk):
        xb = x[start : start + chunk]
        samples = sample_offset + start + np.arange(len(xb))
        corr = start_correlated_noise(circuit, samples)[1]
        sweep = forward_sweep(circuit, xb, samples, evals=TEST_EVALS, corr=corr)
        labels[start : start + chunk] = np.argmax(sweep.output, axis=1)
        events += sweep.synaptic_events
    neuromorphic = circuit.profile.substrate is Substrate.NEUROMORPHIC
    counts = forward_sweep_counts(circuit.spec, circuit.profile, n_samples=len(x),
                                  synaptic_events=events if neuromorphic else None)
    return labels, with_reference_reads(counts) if circuit.has_reference else counts


def start_correlated_noise(circuit: Circuit, samples: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(state, sum) of the circuit's correlated read noise at the start of these samples' runs, each
    process at its stationary law; (None, None) without correlated noise."""
    noise = circuit.noise
    if noise is None or not noise.correlated:
        return None, None
    return corr_start_np(noise, corr_shape(circuit.spec, noise, len(samples)), samples)
