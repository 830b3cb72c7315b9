"""``simulate``: deploy a network's weights on a hardware profile and integrate its PC circuit.

τ dz/dt = −∂F_b/∂z for every sample b with a fixed step (Euler or Heun), output clamped to y
(training-time inference) or free (prediction). With dt/τ = β/B one Euler step is exactly one
step of the reference's batch-mean inference, which is how backends are compared.

One call composes five stages: validate the request → prepare the circuit
(:func:`simulators.circuit.prepare_circuit`) → start the state (the physical forward sweep of
:mod:`simulators.forward`, or another :class:`Init`) → integrate the PC phase on a registered
backend (:mod:`simulators.backends`) → count the events (:mod:`pchw.circuit_events`), learn in place
(:mod:`simulators.learning`) and price.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from pchw.circuit_events import (
    forward_sweep_counts,
    free_output_read_counts,
    input_read_counts,
    pc_phase_counts,
    sweep_time_s,
    with_reference_reads,
)
from pchw.events import EnergyReport, EventCounts, price
from pchw.oracle import feedforward, phi
from pchw.profiles import HardwareProfile, load_profile
from pchw.spec import NetworkSpec, SpecError, check_weights

from . import reference as stepper
from .backends import CircuitBackend, make_backend
from .circuit import Circuit, prepare_circuit
from .contracts import CircuitState, Drive, Method, Phase, Record, WindowSums, as_enum
from .errors import SimulationError
from .forward import forward_sweep, start_correlated_noise
from .learning import Learning, apply_update, check_w_max

MAX_STABLE_H = 2.0  # explicit Euler and Heun diverge for dt/τ·λ_max > 2, and λ_max ≥ 1 (H_z = I + …)


class Init(StrEnum):
    """How the value neurons start."""

    SWEEP = "sweep"  # the physical forward pass: each crossbar read once, inputs held (counted)
    FEEDFORWARD = "feedforward"  # the exact float feedforward pass, not counted (the software reference's start)
    ZERO = "zero"  # discharged integrators
    CASCADE = "cascade"  # discharged, then ``ff_steps`` of the emulated forward cascade (counted)


RECORDABLE = ("free_energy", "activities")


def check_circuit_time(dt_s: float, tau_s: float) -> None:
    """Raise :class:`SimulationError` unless the step and time constant are finite and > 0 and the
    step is not past the stability bound of the explicit integrators."""
    for name, value in (("dt_s", dt_s), ("tau_s", tau_s)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise SimulationError(f"{name}={value!r} must be a finite number > 0")
    if dt_s / tau_s > MAX_STABLE_H:
        raise SimulationError(f"dt_s/tau_s={dt_s / tau_s:.4g} is past the stability bound: Euler and Heun diverge "
                              f"for dt/τ > 2/λ_max, and every PC circuit has λ_max ≥ 1 (use dt/τ <= 2, "
                              f"and <= 2/λ_max of the trained net, e.g. 0.1)")


def forward_settle_steps(n_hidden: int, h: float) -> int:
    """Steps of the emulated forward cascade (``init="cascade"``) for the prediction to settle.

    The cascade is H + 1 unit first-order lags: the output's delay is Gamma(H + 1)-distributed in
    units of τ, with mean H + 1 and standard deviation √(H + 1). We run to the mean plus six
    standard deviations (h = 1 is exact after H + 1 steps).
    """
    if h >= 1.0:
        return n_hidden + 1
    return int(math.ceil((n_hidden + 1 + 6.0 * math.sqrt(n_hidden + 1)) / h))


@dataclass
class SimResult:
    """What :func:`simulate` returns.

    Attributes:
        z: final hidden activities (H, B, N).
        output: final output (B, d_y): the free output neurons, or μ_L(z) when clamped.
        free_energy: final per-sample energies F_b (B,); their mean is the batch-mean F.
        errors: ε_1..ε_L at the end, (B, n_ℓ) each, as the error neurons hold them — with the
            circuit's own converter and noise errors — the learning signals of in-place updates.
        mean_errors: ε_1..ε_L averaged over the update window (``update_window`` > 0), else None.
        mean_activations: the activations φ(z_1..z_H) (with the activation circuits' gains)
            averaged over the update window, (B, N) each, else None.
        weights: with ``learn``, the device states after the update; else None.
        write_pulses: with ``learn``, the programming pulses of the update, as counted.
        free_energy_trace: (n_steps + 1, B) when recorded, else None.
        activity_trace: (n_steps + 1, H, B, N) when recorded, else None.
        counts: events of the whole run (all samples).
        energy: joules of the whole run under the profile.
        max_grad: largest |∂F_b/∂z| at the end (convergence measure).
        circuit_time_s: circuit time per sample: the sweep's plus (ff_steps + n_steps) · dt_s.
        compile_s: compilation (or network build) time of this call (0 when cached or numpy).
        run_s: wall time of the integration.
    """

    z: np.ndarray
    output: np.ndarray
    free_energy: np.ndarray
    errors: list[np.ndarray]
    free_energy_trace: np.ndarray | None
    activity_trace: np.ndarray | None
    counts: EventCounts
    energy: EnergyReport
    max_grad: float
    circuit_time_s: float
    compile_s: float
    run_s: float
    mean_errors: list[np.ndarray] | None = None
    mean_activations: list[np.ndarray] | None = None
    weights: list[np.ndarray] | None = None
    write_pulses: float = 0.0
    meta: dict = field(default_factory=dict)

    @property
    def energy_per_sample_j(self) -> float:
        return self.energy.total_j / self.z.shape[1]

    def predictions(self) -> np.ndarray:
        """Predicted classes, argmax of the output (B,)."""
        return np.argmax(self.output, axis=1)


@dataclass(frozen=True)
class _Request:
    """A validated :func:`simulate` call."""

    spec: NetworkSpec
    profile: HardwareProfile
    x: np.ndarray
    y: np.ndarray | None
    n_steps: int
    dt_s: float
    tau_s: float
    method: Method
    init: Init
    ff_steps: int
    ff_h: float
    window: int
    record: Record
    samples: np.ndarray

    @property
    def free_output(self) -> bool:
        return self.y is None

    @property
    def h(self) -> float:
        return self.dt_s / self.tau_s


def _check_count(name: str, value, *, upper: tuple[str, int] | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0 \
            or (upper is not None and value > upper[1]):
        allowed = f"an integer in 0..{upper[0]} ({upper[1]})" if upper is not None else "an integer >= 0"
        raise SimulationError(f"{name}={value!r} must be {allowed}")
    return int(value)


def _check_arrays(spec, weights, x, y) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        check_weights(spec, weights)
    except SpecError as exc:
        raise SimulationError(str(exc)) from None
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = None if y is None else np.ascontiguousarray(y, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != spec.input_dim:
        raise SimulationError(f"x has shape {x.shape}, expected (B, {spec.input_dim})")
    if y is not None and y.shape != (x.shape[0], spec.output_dim):
        raise SimulationError(f"y has shape {y.shape}, expected ({x.shape[0]}, {spec.output_dim})")
    if not (np.all(np.isfinite(x)) and (y is None or np.all(np.isfinite(y)))):
        raise SimulationError("x and y must be finite")
    return x, y


def _validate(spec, weights, x, y, *, profile, n_steps, dt_s, tau_s, method, init, ff_steps, ff_h, record,
              update_window, sample_offset) -> _Request:
    if isinstance(profile, str):
        profile = load_profile(profile)
    if not profile.is_circuit:
        raise SimulationError(f"profile {profile.name} is digital: price it with `pchw energy`, not simulate")
    x, y = _check_arrays(spec, weights, x, y)
    n_steps = _check_count("n_steps", n_steps)
    dt_s = profile.dt_s if dt_s is None else dt_s
    tau_s = profile.tau_s if tau_s is None else tau_s
    check_circuit_time(dt_s, tau_s)
    init_e = as_enum(Init, init, "init")
    ff_h = dt_s / tau_s if ff_h is None else ff_h
    if not (isinstance(ff_h, (int, float)) and math.isfinite(ff_h) and 0 < ff_h <= MAX_STABLE_H):
        raise SimulationError(f"ff_h={ff_h!r} must be a finite number in (0, {MAX_STABLE_H}]")
    if ff_steps is not None and init_e is not Init.CASCADE:
        raise SimulationError(f"ff_steps={ff_steps!r} sets the emulated forward cascade: it needs init='cascade'")
    ff = forward_settle_steps(spec.n_hidden, ff_h) if ff_steps is None and init_e is Init.CASCADE else ff_steps or 0
    for r in record:
        if r not in RECORDABLE:
            raise SimulationError(f"record={r!r} is not one of: {', '.join(RECORDABLE)}")
    return _Request(spec=spec, profile=profile, x=x, y=y, n_steps=n_steps, dt_s=dt_s, tau_s=tau_s,
                    method=as_enum(Method, method, "method"), init=init_e, ff_steps=_check_count("ff_steps", ff),
                    ff_h=float(ff_h), window=_check_count("update_window", update_window, upper=("n_steps", n_steps)),
                    record=Record(free_energy="free_energy" in record, activities="activities" in record),
                    samples=_check_count("sample_offset", sample_offset) + np.arange(x.shape[0]))


def _backend(name: str, *, spiking, device, req: _Request, circuit: Circuit) -> CircuitBackend:
    options: dict = {}
    if spiking is not None:
        if name != "brian2" or req.method is not Method.EULER:
            raise SimulationError("spiking mode needs backend=brian2 and method=euler")
        options["spiking"] = spiking
    if device is not None:
        if name != "torch":
            raise SimulationError(f"device={device!r} selects the torch backend's device: it needs backend=torch")
        options["device"] = device
    be = make_backend(name, **options)
    if not be.supports_noise and not circuit.ideal:
        raise SimulationError(f"backend={name} models the ideal circuit; profile {req.profile.name} switches on "
                              "non-idealities (use backend numba, numpy or torch)")
    if req.window and not be.supports_window:
        raise SimulationError(f"update_window needs a backend that accumulates it (numba, numpy or torch), not {name}")
    return be


def _start(circuit: Circuit, req: _Request, z0) -> tuple[CircuitState, Drive, EventCounts, float]:
    """The initial state, the drive of the PC phase, the events and circuit time of getting there."""
    spec, batch, x = req.spec, req.x.shape[0], req.x
    y_in = req.y if req.y is not None else np.zeros((batch, spec.output_dim))
    corr_state, corr = start_correlated_noise(circuit, req.samples)
    if z0 is None and req.init is Init.SWEEP:
        sweep = forward_sweep(circuit, x, req.samples, corr=corr)
        events = sweep.synaptic_events if req.profile.substrate.value == "neuromorphic" else None
        counts = forward_sweep_counts(spec, req.profile, n_samples=batch, synaptic_events=events)
        state = CircuitState(z=sweep.z, zout=sweep.output.copy(), corr_state=corr_state, corr_total=corr)
        return state, Drive(x, sweep.mu_first, y_in, req.samples), counts, sweep_time_s(spec, req.profile)
    mu_first = stepper.first_prediction(circuit, x, req.samples, corr=corr)
    counts = input_read_counts(spec, req.profile, n_samples=batch)
    if z0 is not None:
        z0 = np.asarray(z0, dtype=np.float64)
        if z0.shape != (spec.n_hidden, batch, spec.width):
            raise SimulationError(f"z0 has shape {z0.shape}, expected {(spec.n_hidden, batch, spec.width)}")
        z, zout = np.array(z0), np.zeros((batch, spec.output_dim))
    elif req.init is Init.FEEDFORWARD:
        zs, out = feedforward(spec, circuit.crossbars, x)
        z, zout = np.ascontiguousarray(np.stack(zs)), np.ascontiguousarray(out)
    else:
        z, zout = np.zeros((spec.n_hidden, batch, spec.width)), np.zeros((batch, spec.output_dim))
    state = CircuitState(z=z, zout=zout, corr_state=corr_state, corr_total=corr)
    return state, Drive(x, mu_first, y_in, req.samples), counts, 0.0


def _integrate(be: CircuitBackend, circuit: Circuit, state: CircuitState, drive: Drive, req: _Request,
               window: WindowSums | None):
    """Run the cascade (init='cascade') and the PC phase; returns (traces, PC-phase counts, compile_s)."""
    phases = []
    if req.ff_steps:
        phases.append(Phase(n_steps=req.ff_steps, h=req.ff_h, method=req.method, feedback=False,
                            free_output=req.free_output))
    phases.append(Phase(n_steps=req.n_steps, h=req.h, method=req.method, free_output=req.free_output,
                        step_offset=req.ff_steps, window=req.window))
    traces, compile_s, spiking_counts = [], 0.0, None
    for ph in phases:
        if ph.n_steps == 0 and not (req.record.free_energy or req.record.activities):
            continue  # nothing to integrate or record
        tr = be.integrate(circuit, state, drive, ph, record=req.record, window=window if ph.feedback else None)
        traces.append(tr)
        compile_s += tr.compile_s
        spiking_counts = tr.counts if ph.feedback else spiking_counts
    batch = req.x.shape[0]
    counts = pc_phase_counts(req.spec, req.profile, n_steps=req.ff_steps, dt_s=req.dt_s, n_samples=batch,
                             clamp_output=not req.free_output, feedback=False)
    if spiking_counts is not None:  # the PC phase's events come from Brian2's own spike and synapse counters
        counts = counts + spiking_counts
    else:
        counts = counts + pc_phase_counts(req.spec, req.profile, n_steps=req.n_steps, dt_s=req.dt_s,
                                          n_samples=batch, clamp_output=not req.free_output,
                                          window_steps=req.window)
    if req.free_output and (req.n_steps or req.init is not Init.SWEEP):  # a sweep reads its own output
        counts = counts + free_output_read_counts(req.spec, req.profile, n_samples=batch)
    return traces, counts, compile_s


def _joined(traces, name: str):
    """One trace across phases (a phase's last point is the next one's first: kept once)."""
    parts = [getattr(t, name) for t in traces]
    if not parts or parts[-1] is None:
        return None
    return np.concatenate([p[:-1] for p in parts[:-1]] + [parts[-1]])


def _end_errors(circuit: Circuit, state: CircuitState, drive: Drive, req: _Request):
    """(exact g, exact F_b, ε, ε_L as the noisy error neurons hold them at the end)."""
    free = req.free_output
    g, _, energies, eps, eps_out = stepper.gradient(circuit, drive.mu_first, drive.y, state.z, state.zout, free)
    if circuit.noise is not None:  # the error neurons' own values, with the noise of one more evaluation
        end = req.ff_steps + req.n_steps
        end = end if req.method is Method.EULER else 2 * end
        eps, eps_out = stepper.gradient(circuit, drive.mu_first, drive.y, state.z, state.zout, free, True,
                                          circuit.noise, end, drive.samples, state.corr_total)[3:]
    return g, energies, eps, eps_out


def simulate(spec: NetworkSpec, weights: list[np.ndarray], x: np.ndarray, y: np.ndarray | None = None, *,
             profile: HardwareProfile | str = "ideal", n_steps: int, dt_s: float | None = None,
             tau_s: float | None = None, method: str = "euler", backend: str = "numba", device: str | None = None,
             init: str = "sweep", ff_steps: int | None = None, ff_h: float | None = None, z0: np.ndarray | None = None,
             seed: int = 0, sample_offset: int = 0, w_max: np.ndarray | None = None,
             reference: np.ndarray | None = None, spiking=None, record: tuple[str, ...] = (),
             update_window: int = 0, learn: Learning | None = None) -> SimResult:
    """Integrate the PC circuit of ``spec`` with ``weights`` on ``profile`` for a batch x (B, D).

    Args:
        y: targets (B, d_y) to clamp the output to; ``None`` leaves the output free (prediction).
        profile: a :class:`HardwareProfile` or a preset name / TOML path.
        n_steps: fixed steps of PC dynamics after the start; n_steps · dt_s seconds per sample.
        dt_s, tau_s: step and integrator time constant (default: the profile's); h = dt_s / tau_s.
        method: ``euler`` (first order) or ``heun`` (second order).
        backend: a registered backend (:func:`simulators.backends.backend_names`): ``numba``,
            ``numpy``, ``brian2`` or ``torch``; ``device`` picks the torch backend's device.
        init: ``sweep`` — the physical forward pass, each crossbar read once with its input held
            (counted; a prediction with n_steps = 0 costs exactly backprop's inference); ``feedforward``
            — the exact float feedforward pass, not counted (the software reference's start); ``zero``
            — discharged; ``cascade`` — discharged, then ``ff_steps`` (default: enough to settle) of the
            emulated forward cascade at dt/τ = ``ff_h``, each neuron following only its own error.
        z0: explicit initial hidden activities (H, B, N) (overrides ``init``).
        seed: seeds device programming, mismatch and every noise draw (same seed, same bits).
        sample_offset: global index of the first sample (noise counters), so chunks draw independently.
        w_max: per-crossbar full scales (L,) when ``weights`` already are device states (in-situ
            training): used as they are, not programmed again.
        reference: per-crossbar reference conductances (L,) with ``w_max``: the circuit computes with
            ``weights − reference`` (zero shifting); every MVM also reads the reference array.
        spiking: a :class:`simulators.backends.brian2_backend.SpikeCoding` (backend brian2, Euler): the
            PC phase's errors travel as rate-coded spikes, counted by Brian2.
        record: any of ``free_energy`` (per-step F_b) and ``activities`` (per-step z).
        update_window: average the errors and activations of the last W PC steps (evaluated at each
            step's start) into ``mean_errors``/``mean_activations``: a per-neuron accumulator, counted.
        learn: a :class:`simulators.learning.Learning`: after the inference (needs y and w_max) every
            crossbar takes ΔW_ℓ = η_ℓ (a_ℓ/B) Σ_b ε_ℓ,b p_ℓ,bᵀ by the profile's pulsed device model (the
            window means when the window is on); new states in ``SimResult.weights``.
    """
    req = _validate(spec, weights, x, y, profile=profile, n_steps=n_steps, dt_s=dt_s, tau_s=tau_s, method=method,
                    init=init, ff_steps=ff_steps, ff_h=ff_h, record=record, update_window=update_window,
                    sample_offset=sample_offset)
    w_max = None if w_max is None else check_w_max(w_max, spec.depth)
    ref = _check_reference(reference, w_max, spec, req.profile, spiking)
    if learn is not None:
        if req.y is None or w_max is None:
            raise SimulationError("learn needs targets y (the clamped circuit's errors) and w_max "
                                  "(the devices' ranges)")
        if spiking is not None:
            raise SimulationError("learning with spiking errors is not modelled (learn on the rate circuit)")
        learn.rates(spec.depth)  # refuse bad rates before integrating
    circuit = prepare_circuit(spec, weights, req.profile, dt_s=req.dt_s, seed=seed, w_max=w_max, reference=ref)
    be = _backend(backend, spiking=spiking, device=device, req=req, circuit=circuit)
    t0 = time.perf_counter()
    state, drive, counts, start_s = _start(circuit, req, z0)
    window = WindowSums.zeros(spec.n_hidden, req.x.shape[0], spec.width, spec.output_dim) if req.window else None
    traces, phase_counts, compile_s = _integrate(be, circuit, state, drive, req, window)
    run_s = time.perf_counter() - t0 - compile_s
    counts = counts + phase_counts
    if circuit.has_reference:
        counts = with_reference_reads(counts)
    g, energies, eps, eps_out = _end_errors(circuit, state, drive, req)
    means = None if window is None else ([*(window.eps / req.window), window.eps_out / req.window],
                                         list(window.act / req.window))
    update = None
    if learn is not None:
        signals, acts = means if means is not None else ([*eps, eps_out], list(circuit.gains[:, None, :]
                                                                                 * phi(spec.act, state.z)))
        update = apply_update(spec, weights, signals, [req.x] + acts, learning=learn, w_max=w_max,
                              profile=req.profile, seed=seed)
        counts = counts + update.counts
    output = state.zout if req.free_output else circuit.a_out * phi(spec.act, state.z[-1]) @ circuit.w_out.T
    return SimResult(
        z=state.z, output=output, free_energy=energies, errors=[*eps, eps_out],
        free_energy_trace=_joined(traces, "free_energy"), activity_trace=_joined(traces, "activities"),
        counts=counts, energy=price(counts, req.profile), max_grad=float(np.abs(g).max()) if g.size else 0.0,
        circuit_time_s=start_s + (req.ff_steps + req.n_steps) * req.dt_s, compile_s=compile_s, run_s=run_s,
        mean_errors=None if means is None else means[0], mean_activations=None if means is None else means[1],
        weights=None if update is None else update.states, write_pulses=0.0 if update is None else update.write_pulses,
        meta={"profile": req.profile.name, "method": req.method.value, "backend": be.name, "h": req.h,
              "dt_s": req.dt_s, "tau_s": req.tau_s, "n_steps": req.n_steps, "ff_steps": req.ff_steps,
              "init": req.init.value, "free_output": req.free_output})


def _check_reference(reference, w_max, spec: NetworkSpec, profile: HardwareProfile, spiking) -> np.ndarray | None:
    if reference is None:
        return None
    if w_max is None:
        raise SimulationError("reference needs w_max: it offsets device states")
    ref = np.asarray(reference, dtype=np.float64)
    if ref.shape != (spec.depth,) or not np.all(np.isfinite(ref)):
        raise SimulationError(f"reference must hold {spec.depth} finite conductances, got shape {ref.shape}")
    if np.any(ref != 0) and (profile.substrate.value == "neuromorphic" or spiking is not None):
        raise SimulationError("reference conductances model a crossbar read: not on a neuromorphic profile")
    return ref
