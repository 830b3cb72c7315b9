"""Brian2 backend of the PC circuit (DESIGN.md §3, §5): rate neurons and a rate-coded spiking mode.

Rate mode (:func:`integrate_brian2`) builds the circuit of :mod:`simulators.reference` out of
Brian2 objects and reproduces :func:`simulators.reference.integrate` step for step (float64,
agreement to rounding: ~1e-13 relative). One Brian2 time step (a "tick") is one Euler step, or
half a Heun step. All B samples share each group, as independent circuits (no synapse
crosses samples); neuron ``k`` of a hidden group is unit ``i`` of layer ``ℓ`` of sample ``b``
with k = (ℓ·B + b)·N + i, i.e. the (H, B, N) layout of ``z`` flattened.

Groups (``NeuronGroup``):
    pc_x    B·D        clamped input x
    pc_err  B·H·N      hidden error neurons ε_ℓ = z_ℓ − μ_ℓ (z linked from pc_val)
    pc_out  B·d_y      output unit: target y, free output value zout, output error ε_L
    pc_val  B·H·N      hidden value neurons z_ℓ (ε_ℓ linked from pc_err); φ(z), φ'(z), g are
                       subexpressions
    pc_fe   B          per-sample free energy F_b = ½(Σ‖ε_hidden‖² + ‖ε_L‖²)
Crossbars and wires (``Synapses`` with summed variables; w = W[post unit, pre unit] or its
transpose, the scaling a_ℓ a shared constant of each crossbar):
    pc_s_in      x → ε_1        mu_in  = Σ a_1 w x            (input crossbar W_1)
    pc_s_fwd     z_ℓ → ε_ℓ+1    mu_hid = Σ a w φ(z)            (rows of W_2..W_H)
    pc_s_skip    z_ℓ → ε_ℓ+1    zprev  = z                     (identity wires, skip on)
    pc_s_outfwd  z_H → ε_L      mu_out = Σ a_L w φ(z)          (rows of W_L)
    pc_s_fb      ε_ℓ+1 → z_ℓ    fb     = Σ a w ε               (columns of W_2..W_H)
    pc_s_outfb   ε_L → z_H      fbo    = Σ a_L w ε             (columns of W_L)
    pc_s_next    ε_ℓ+1 → z_ℓ    epsnext = ε                    (skip feedback wires)
    pc_s_feh, pc_s_feo          ε → F_b: Σ ε²
Brian2 runs a summed variable's updater in the ``groups`` slot at order (target order − 1),
so the group orders fix the data flow inside one tick (no one-step lag, DESIGN §8):
    groups  9  predictions mu_in, mu_hid, zprev → pc_err; mu_out → pc_out   (pc_err/pc_out order 10)
    groups 11  errors ε_ℓ = z − (mu_in + mu_hid + zprev)                      (run_regularly)
    groups 12  output error ε_L = zout − mu_out (free) or y − mu_out (clamped)
    groups 14  F_b sums → pc_fe (order 15)
    groups 19  feedback fb, fbo, epsnext → pc_val (order 20)
    groups 21  value update of pc_val; groups 22: of pc_out (free output)
    end        monitors (F_b; z is recorded at ``start``), then the Heun phase flag flips
Euler: z ← z − h·g with g = ε − φ'(z)⊙(fb + fbo) − skip·epsnext (g = ε in the forward phase,
``feedback=False``). Heun takes two ticks per step, selected by a phase flag p ∈ {0, 1} with
exact 0/1 masks: tick p=0 stores z₀ = z, g₁ = g(z) and moves z to z̃ = z − h·g₁; tick p=1 sets
z = z₀ − (h/2)(g₁ + g(z̃)). After the last step one more tick runs with the updates switched
off, to record the final F_b and z (as the reference does).

Spiking mode (:func:`integrate_spiking`): the errors are rate-coded spike trains (see
:class:`SpikeCoding`); predictions stay graded (value neurons broadcast φ(z) once per circuit
step through the forward crossbars), every error message — a neuron's own error, the feedback
through the crossbar columns, the skip wire — travels as spikes counted by ``on_pre``.

Brian2 is imported lazily: importing this module never needs it; calls raise
:class:`Brian2Unavailable` (one line saying how to install it) when it is missing.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pchw.errors import PchwError

from ..circuit import Circuit
from ..contracts import Method, PhaseTrace
from ..errors import SimulationError

__all__ = [
    "Brian2Unavailable",
    "SpikeCoding",
    "brian2_cache_dir",
    "brian2_target",
    "integrate_brian2",
    "integrate_spiking",
    "spiking_event_counts",
]

TARGETS = ("cython", "numpy")
_PHI = {"relu": "z*int(z > 0)", "tanh": "tanh(z)", "linear": "z"}
_DPHI = {"relu": "int(z > 0)", "tanh": "1 - tanh(z)**2", "linear": "1"}
_TARGET_CACHE: tuple[str, float] | None = None


class Brian2Unavailable(PchwError, RuntimeError):
    """Brian2 (or, for the cython target, a working C compiler) is missing."""


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:200]


def _brian2():
    """The configured ``brian2`` module, or :class:`Brian2Unavailable`."""
    try:
        import brian2
    except Exception as exc:  # ImportError, or brian2 failing on an incompatible numpy
        raise Brian2Unavailable(
            f"brian2 is not usable ({_one_line(exc)}); install it with: pip install 'brian2>=2.6' 'numpy<2.4'"
        ) from None
    brian2.prefs.core.default_float_dtype = np.float64
    brian2.prefs.codegen.runtime.cython.cache_dir = str(brian2_cache_dir())
    brian2.BrianLogger.log_level_error()
    return brian2


def brian2_cache_dir() -> Path:
    """Where compiled cython code objects live: ``$XDG_CACHE_HOME/pchw/brian2`` (default ~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(base) / "pchw" / "brian2"
    path.mkdir(parents=True, exist_ok=True)
    return path


def brian2_target() -> tuple[str, float]:
    """(``cython`` or ``numpy``, seconds the first cython build took here, or 0.0).

    Cython is chosen when a probe network compiles and runs (a C compiler works); the result is
    cached for the process. Raises :class:`Brian2Unavailable` without brian2.
    """
    global _TARGET_CACHE
    if _TARGET_CACHE is None:
        b2 = _brian2()
        t0 = time.perf_counter()
        try:
            b2.prefs.codegen.target = "cython"
            with _quiet():
                probe = b2.NeuronGroup(2, "v : 1", name="pc_probe")
                probe.run_regularly("v = v + 1", when="start")
                net = b2.Network(probe)
                net.run(2 * b2.defaultclock.dt, namespace={})
            ok = np.array_equal(np.asarray(probe.v[:]), [2.0, 2.0])
            _TARGET_CACHE = ("cython", time.perf_counter() - t0) if ok else ("numpy", 0.0)
        except Exception:  # no compiler, no Cython, a broken toolchain: fall back
            _TARGET_CACHE = ("numpy", 0.0)
    return _TARGET_CACHE


def _set_target(b2, target: str | None) -> str:
    if target is None:
        target = brian2_target()[0]
    if target not in TARGETS:
        raise ValueError(f"target={target!r} is not one of: {', '.join(TARGETS)}")
    if target == "cython" and brian2_target()[0] != "cython":
        raise Brian2Unavailable("brian2's cython target needs Cython and a working C compiler (e.g. apt install gcc); "
                                "use target='numpy'")
    b2.prefs.codegen.target = target
    return target


def _connect(b2, pre_group, post_group, model: str, pre, post, w=None, a=None, name="", on_pre=None, clock=None):
    """A ``Synapses`` object with the given (pre, post) pairs; ``w`` set per pair, ``a`` shared."""
    kwargs = {} if on_pre is None else {"on_pre": on_pre}
    if clock is not None:
        kwargs["dt"] = clock
    syn = b2.Synapses(pre_group, post_group, model=model, name=name, **kwargs)
    pre, post = np.asarray(pre, dtype=np.int64), np.asarray(post, dtype=np.int64)
    syn.connect(i=pre, j=post)
    if w is not None:  # match values to the synapses as Brian2 stored them
        n_post = len(post_group)
        given = pre * n_post + post
        actual = np.asarray(syn.i[:], dtype=np.int64) * n_post + np.asarray(syn.j[:], dtype=np.int64)
        order = np.argsort(given, kind="stable")
        pos = np.searchsorted(given[order], actual)
        syn.w = np.asarray(w, dtype=np.float64)[order[pos]]
    if a is not None:
        syn.a = float(a)
    return syn


def _wiring(cw: Circuit, batch: int):
    """Index arrays (pre, post, w) of each crossbar and wire for the (H, B, N) layout."""
    spec = cw.spec
    n, hidden, d, dy = spec.width, spec.n_hidden, spec.input_dim, spec.output_dim
    b = np.arange(batch)
    out = {}
    # input crossbar: x[b, j] -> eps_1[b, i], w = W_in[i, j]
    bi, ii, jj = np.meshgrid(b, np.arange(n), np.arange(d), indexing="ij")
    out["in"] = (bi * d + jj, bi * n + ii, cw.w_in[ii, jj])
    if hidden > 1:
        lb, bi, ii, jj = np.meshgrid(np.arange(hidden - 1), b, np.arange(n), np.arange(n), indexing="ij")
        lower = (lb * batch + bi) * n + jj  # unit j of layer l (0-based), pre of the forward pass
        upper = ((lb + 1) * batch + bi) * n + ii  # unit i of layer l+1
        w = cw.w_hid[lb, ii, jj]
        out["fwd"] = (lower, upper, w)  # mu_{l+1, i} += a W[i, j] phi(z_{l, j})
        out["fb"] = (upper, lower, w)  # fb_{l, j} += a W[i, j] eps_{l+1, i}
        lb, bi, ii = np.meshgrid(np.arange(hidden - 1), b, np.arange(n), indexing="ij")
        out["wire_up"] = ((lb * batch + bi) * n + ii, ((lb + 1) * batch + bi) * n + ii)
        out["wire_down"] = (out["wire_up"][1], out["wire_up"][0])
    bi, oo, jj = np.meshgrid(b, np.arange(dy), np.arange(n), indexing="ij")
    top = ((hidden - 1) * batch + bi) * n + jj
    out["outfwd"] = (top, bi * dy + oo, cw.w_out[oo, jj])
    out["outfb"] = (bi * dy + oo, top, cw.w_out[oo, jj])
    out = {k: tuple(np.ravel(a) for a in v) for k, v in out.items()}
    out["fe_hid"] = (np.arange(hidden * batch * n), np.tile(np.repeat(b, n), hidden))
    out["fe_out"] = (np.arange(batch * dy), np.repeat(b, dy))
    return out


@contextlib.contextmanager
def _quiet():
    """Silence pyparsing's deprecation warnings that brian2 2.9 triggers on every equation it parses."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"'\w+' (argument is )?deprecated", category=DeprecationWarning)
        yield


def _check_state(cw, x, y, z, zout):
    spec = cw.spec
    batch = x.shape[0]
    want = {"x": (batch, spec.input_dim), "y": (batch, spec.output_dim), "z": (spec.n_hidden, batch, spec.width),
            "zout": (batch, spec.output_dim)}
    for name, arr in (("x", x), ("y", y), ("z", z), ("zout", zout)):
        if np.shape(arr) != want[name]:
            raise ValueError(f"{name} has shape {np.shape(arr)}, expected {want[name]}")


def integrate_brian2(cw: Circuit, x, y, z, zout, *, h: float, n_steps: int, method: str, free_output: bool,
                     feedback: bool = True, record_energy: bool = False, record_states: bool = False,
                     target: str | None = None):
    """The reference stepper (:func:`simulators.reference.integrate`) run as a Brian2 network of rate neurons.

    Same arguments, shapes and returns: (z (H, B, N), zout (B, d_y), energy trace (n_steps + 1, B)
    or None, state trace (n_steps + 1, H, B, N) or None). ``target``: ``cython`` or ``numpy``
    (default: :func:`brian2_target`). Inputs are not modified.
    """
    if method not in ("euler", "heun"):
        raise ValueError(f"method={method!r} is not one of: euler, heun")
    if not isinstance(n_steps, (int, np.integer)) or n_steps < 0:
        raise ValueError(f"n_steps={n_steps!r} must be an integer >= 0")
    x, y, z, zout = (np.asarray(a, dtype=np.float64) for a in (x, y, z, zout))
    _check_state(cw, x, y, z, zout)
    b2 = _brian2()
    _set_target(b2, target)
    with _quiet():
        return _integrate_rate(b2, cw, x, y, z, zout, h, n_steps, method, free_output, feedback, record_energy,
                               record_states)


def _integrate_rate(b2, cw, x, y, z, zout, h, n_steps, method, free_output, feedback, record_energy,
                    record_states):
    spec = cw.spec
    hidden, batch, n = z.shape
    dy = spec.output_dim
    heun = method == "heun"
    wiring = _wiring(cw, batch)
    b2.start_scope()
    tick = 1 * b2.ms

    x_grp = b2.NeuronGroup(batch * spec.input_dim, "x : 1 (constant)", name="pc_x", dt=tick)
    x_grp.x = x.ravel()
    err = b2.NeuronGroup(hidden * batch * n, """z : 1 (linked)
        mu_in : 1
        mu_hid : 1
        zprev : 1
        mu : 1
        eps : 1""", name="pc_err", order=10, dt=tick)
    g_expr = "eps"
    if feedback:
        g_expr = "eps - dphz*(fb + fbo)" + (" - epsnext" if spec.skip else "")
    val = b2.NeuronGroup(hidden * batch * n, f"""z : 1
        z0 : 1
        g1 : 1
        eps : 1 (linked)
        fb : 1
        fbo : 1
        epsnext : 1
        h : 1 (shared, constant)
        par : 1 (shared)
        phz = {_PHI[spec.act.value]} : 1
        dphz = {_DPHI[spec.act.value]} : 1
        g = {g_expr} : 1""", name="pc_val", order=20, dt=tick)
    out = b2.NeuronGroup(batch * dy, """y : 1 (constant)
        zout : 1
        zout0 : 1
        gout1 : 1
        mu_out : 1
        eps : 1
        h : 1 (shared, constant)
        par : 1 (shared)""", name="pc_out", order=10, dt=tick)
    fe = b2.NeuronGroup(batch, "fh : 1\nfo : 1\nF = 0.5*(fh + fo) : 1", name="pc_fe", order=15, dt=tick)
    err.z = b2.linked_var(val, "z")
    val.eps = b2.linked_var(err, "eps")
    val.z = z.ravel()
    val.h = h
    out.h = h
    out.y = y.ravel()
    out.zout = zout.ravel()

    objs = [x_grp, err, val, out, fe]
    objs.append(_connect(b2, x_grp, err, "w : 1 (constant)\na : 1 (shared, constant)\n"
                         "mu_in_post = a*x_pre*w : 1 (summed)", *wiring["in"], a=cw.a_in, name="pc_s_in"))
    if hidden > 1:
        objs.append(_connect(b2, val, err, "w : 1 (constant)\na : 1 (shared, constant)\n"
                             "mu_hid_post = a*w*phz_pre : 1 (summed)", *wiring["fwd"], a=cw.a_hid, name="pc_s_fwd"))
        if spec.skip:
            objs.append(_connect(b2, val, err, "zprev_post = z_pre : 1 (summed)", *wiring["wire_up"],
                                 name="pc_s_skip"))
    objs.append(_connect(b2, val, out, "w : 1 (constant)\na : 1 (shared, constant)\n"
                         "mu_out_post = a*w*phz_pre : 1 (summed)", *wiring["outfwd"], a=cw.a_out, name="pc_s_outfwd"))
    if feedback:
        if hidden > 1:
            objs.append(_connect(b2, err, val, "w : 1 (constant)\na : 1 (shared, constant)\n"
                                 "fb_post = a*w*eps_pre : 1 (summed)", *wiring["fb"], a=cw.a_hid, name="pc_s_fb"))
            if spec.skip:
                objs.append(_connect(b2, err, val, "epsnext_post = eps_pre : 1 (summed)", *wiring["wire_down"],
                                     name="pc_s_next"))
        objs.append(_connect(b2, out, val, "w : 1 (constant)\na : 1 (shared, constant)\n"
                             "fbo_post = a*w*eps_pre : 1 (summed)", *wiring["outfb"], a=cw.a_out, name="pc_s_outfb"))
    objs.append(_connect(b2, err, fe, "fh_post = eps_pre*eps_pre : 1 (summed)", *wiring["fe_hid"], name="pc_s_feh"))
    objs.append(_connect(b2, out, fe, "fo_post = eps_pre*eps_pre : 1 (summed)", *wiring["fe_out"], name="pc_s_feo"))

    objs.append(err.run_regularly("mu = mu_in + mu_hid + zprev\neps = z - mu", when="groups", order=11,
                                  name="pc_err_update"))
    objs.append(out.run_regularly("eps = zout - mu_out" if free_output else "eps = y - mu_out", when="groups",
                                  order=12, name="pc_out_error"))
    if heun:  # exact 0/1 masks select the phase (finite values: v*1 + w*0 == v)
        val_code = """z0 = z*(1 - par) + z0*par
            g1 = g*(1 - par) + g1*par
            z = (z - h*g)*(1 - par) + (z0 - 0.5*h*(g1 + g))*par"""
        out_code = """zout0 = zout*(1 - par) + zout0*par
            gout1 = eps*(1 - par) + gout1*par
            zout = (zout - h*eps)*(1 - par) + (zout0 - 0.5*h*(gout1 + eps))*par"""
    else:
        val_code, out_code = "z = z - h*g", "zout = zout - h*eps"
    updates = [val.run_regularly(val_code, when="groups", order=21, name="pc_val_update")]
    if free_output:
        updates.append(out.run_regularly(out_code, when="groups", order=22, name="pc_out_update"))
    if heun:
        updates += [val.run_regularly("par = 1 - par", when="end", order=5, name="pc_val_phase"),
                    out.run_regularly("par = 1 - par", when="end", order=5, name="pc_out_phase")]
    objs += updates
    ticks_per_step = 2 if heun else 1
    mon_f = mon_z = None
    if record_energy:
        mon_f = b2.StateMonitor(fe, "F", record=True, when="end", dt=ticks_per_step * tick, name="pc_mon_fe")
        objs.append(mon_f)
    if record_states:
        mon_z = b2.StateMonitor(val, "z", record=True, when="start", dt=ticks_per_step * tick, name="pc_mon_z")
        objs.append(mon_z)

    net = b2.Network(*objs)
    if n_steps > 0:
        net.run(n_steps * ticks_per_step * tick, namespace={})
    if mon_f is not None or mon_z is not None:  # one more tick, updates off: the final F_b and z
        for obj in updates:
            obj.active = False
        net.run(tick, namespace={})

    z_new = np.asarray(val.z[:], dtype=np.float64).reshape(hidden, batch, n).copy()
    zout_new = np.asarray(out.zout[:], dtype=np.float64).reshape(batch, dy).copy() if free_output else zout.copy()
    energies = np.asarray(mon_f.F, dtype=np.float64).T.copy() if mon_f is not None else None
    states = (np.asarray(mon_z.z, dtype=np.float64).T.reshape(n_steps + 1, hidden, batch, n).copy()
              if mon_z is not None else None)
    return z_new, zout_new, energies, states


@dataclass(frozen=True)
class SpikeCoding:
    """Rate coding of the error messages in :func:`integrate_spiking`.

    Each error neuron fires, during the ``duration_s`` window of every circuit step, a train of
    spikes of the sign of ε at rate |ε|/full_scale · rate_hz (|ε| clipped to full_scale). The
    window is cut into M = ⌈rate_hz·duration_s⌉ Brian2 sub-steps and the neuron spikes in each with
    probability |ε|/full_scale · rate_hz·duration_s / M ≤ 1 (``threshold='rand() < p'``): a
    Bernoulli (discretised Poisson) train, so the count is Binomial with mean
    |ε|/full_scale · rate_hz·duration_s — unbiased below full scale, with relative noise
    ∝ 1/√(rate_hz·duration_s). Receivers reconstruct ε̂ = sign · count · full_scale / (rate_hz·duration_s).

    Attributes:
        rate_hz: peak rate at |ε| = full_scale (Hz).
        duration_s: spike-counting window per circuit step (s).
        full_scale: |ε| that maps to rate_hz; larger errors are clipped.
    """

    rate_hz: float
    duration_s: float
    full_scale: float = 1.0

    def __post_init__(self) -> None:
        for name in ("rate_hz", "duration_s", "full_scale"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name}={value!r} must be a finite number > 0")

    @property
    def budget(self) -> float:
        """Expected spikes per window at full scale, rate_hz · duration_s."""
        return self.rate_hz * self.duration_s

    @property
    def substeps(self) -> int:
        """Brian2 sub-steps per circuit step, M = ⌈rate_hz · duration_s⌉ (at least 1)."""
        return max(1, math.ceil(self.budget - 1e-9))


def integrate_spiking(cw: Circuit, x, y, z, zout, *, h: float, n_steps: int, free_output: bool,
                      coding: SpikeCoding, seed: int, record_energy: bool = False, target: str | None = None):
    """Euler PC inference with rate-coded spiking error messages, run in Brian2.

    Per circuit step (one ``coding.duration_s`` window of M sub-steps): value neurons broadcast
    φ(z) through the forward crossbars (graded, once per step), error neurons compute
    ε = z − μ exactly and fire signed spike trains (:class:`SpikeCoding`); every spike goes through
    each synapse of its crossbar column (feedback), its skip wire and the wire to its own value
    neuron, whose ``on_pre`` adds ±a·w (or ±1) to an accumulator. At the end of the window each
    value neuron applies z ← z − h·(ε̂_ℓ − φ'(z)⊙a W_{ℓ+1}ᵀ ε̂_{ℓ+1} − skip·ε̂_{ℓ+1}) (a free output:
    zout ← zout − h·ε̂_L). Seeded with brian2's ``seed(seed)``: same seed, same spikes.

    Returns (z, zout, energy trace (n_steps + 1, B) of the exact ε or None, counts) where counts
    holds ``spikes`` (from the spike monitors), ``synaptic_events`` (on_pre executions, counted
    by the synapses), ``forward_events`` (graded forward-crossbar synapse reads, once per step),
    ``neuron_updates`` (spiking error neurons every sub-step + value neurons every step),
    ``substeps`` (M) and ``steps``. :func:`spiking_event_counts` turns them into EventCounts.
    """
    if not isinstance(n_steps, (int, np.integer)) or n_steps < 0:
        raise ValueError(f"n_steps={n_steps!r} must be an integer >= 0")
    if not isinstance(coding, SpikeCoding):
        raise TypeError("coding must be a SpikeCoding")
    x, y, z, zout = (np.asarray(a, dtype=np.float64) for a in (x, y, z, zout))
    _check_state(cw, x, y, z, zout)
    b2 = _brian2()
    _set_target(b2, target)
    with _quiet():
        return _integrate_spiking(b2, cw, x, y, z, zout, h, n_steps, free_output, coding, seed, record_energy)


def _integrate_spiking(b2, cw, x, y, z, zout, h, n_steps, free_output, coding, seed, record_energy):
    spec = cw.spec
    hidden, batch, n = z.shape
    dy = spec.output_dim
    m = coding.substeps
    sub = coding.duration_s / m * b2.second
    window = coding.duration_s * b2.second
    wiring = _wiring(cw, batch)
    b2.start_scope()
    b2.seed(int(seed))

    x_grp = b2.NeuronGroup(batch * spec.input_dim, "x : 1 (constant)", name="pc_x", dt=window)
    x_grp.x = x.ravel()
    enc = """p = clip(abs(eps)/fs, 0, 1)*q
        sgn = sign(eps)"""
    err = b2.NeuronGroup(hidden * batch * n, """z : 1 (linked)
        mu_in : 1
        mu_hid : 1
        zprev : 1
        mu : 1
        eps : 1
        p : 1
        sgn : 1
        fs : 1 (shared, constant)
        q : 1 (shared, constant)""", name="pc_err", order=10, dt=window)
    out = b2.NeuronGroup(batch * dy, """y : 1 (constant)
        zout : 1
        own : 1
        mu_out : 1
        eps : 1
        p : 1
        sgn : 1
        h : 1 (shared, constant)
        sc : 1 (shared, constant)
        fs : 1 (shared, constant)
        q : 1 (shared, constant)""", name="pc_out", order=10, dt=window)
    val = b2.NeuronGroup(hidden * batch * n, f"""z : 1
        own : 1
        fb : 1
        fbo : 1
        nxt : 1
        h : 1 (shared, constant)
        sc : 1 (shared, constant)
        phz = {_PHI[spec.act.value]} : 1
        dphz = {_DPHI[spec.act.value]} : 1""", name="pc_val", order=20, dt=window)
    fe = b2.NeuronGroup(batch, "fh : 1\nfo : 1\nF = 0.5*(fh + fo) : 1", name="pc_fe", order=15, dt=window)
    spk_err = b2.NeuronGroup(hidden * batch * n, "p : 1 (linked)\nsgn : 1 (linked)", threshold="rand() < p",
                             name="pc_spk_err", dt=sub)
    spk_out = b2.NeuronGroup(batch * dy, "p : 1 (linked)\nsgn : 1 (linked)", threshold="rand() < p",
                             name="pc_spk_out", dt=sub)
    err.z = b2.linked_var(val, "z")
    spk_err.p, spk_err.sgn = b2.linked_var(err, "p"), b2.linked_var(err, "sgn")
    spk_out.p, spk_out.sgn = b2.linked_var(out, "p"), b2.linked_var(out, "sgn")
    scale = coding.full_scale / coding.budget
    for grp in (err, out):
        grp.fs, grp.q = coding.full_scale, coding.budget / m
    for grp in (val, out):
        grp.h, grp.sc = h, scale
    val.z = z.ravel()
    out.y = y.ravel()
    out.zout = zout.ravel()

    fwd = [_connect(b2, x_grp, err, "w : 1 (constant)\na : 1 (shared, constant)\n"
                    "mu_in_post = a*x_pre*w : 1 (summed)", *wiring["in"], a=cw.a_in, name="pc_s_in")]
    if hidden > 1:
        fwd.append(_connect(b2, val, err, "w : 1 (constant)\na : 1 (shared, constant)\n"
                            "mu_hid_post = a*w*phz_pre : 1 (summed)", *wiring["fwd"], a=cw.a_hid, name="pc_s_fwd"))
        if spec.skip:
            fwd.append(_connect(b2, val, err, "zprev_post = z_pre : 1 (summed)", *wiring["wire_up"],
                                name="pc_s_skip"))
    fwd.append(_connect(b2, val, out, "w : 1 (constant)\na : 1 (shared, constant)\n"
                        "mu_out_post = a*w*phz_pre : 1 (summed)", *wiring["outfwd"], a=cw.a_out, name="pc_s_outfwd"))
    fe_syn = [_connect(b2, err, fe, "fh_post = eps_pre*eps_pre : 1 (summed)", *wiring["fe_hid"], name="pc_s_feh"),
              _connect(b2, out, fe, "fo_post = eps_pre*eps_pre : 1 (summed)", *wiring["fe_out"], name="pc_s_feo")]
    own = np.arange(hidden * batch * n)
    spiking = [_connect(b2, spk_err, val, "nev : 1", own, own, name="pc_s_own", on_pre="own_post += sgn_pre\nnev += 1")]
    if hidden > 1:
        spiking.append(_connect(b2, spk_err, val, "w : 1 (constant)\na : 1 (shared, constant)\nnev : 1",
                                *wiring["fb"], a=cw.a_hid, name="pc_s_fb", on_pre="fb_post += a*w*sgn_pre\nnev += 1"))
        if spec.skip:
            spiking.append(_connect(b2, spk_err, val, "nev : 1", *wiring["wire_down"], name="pc_s_next",
                                    on_pre="nxt_post += sgn_pre\nnev += 1"))
    spiking.append(_connect(b2, spk_out, val, "w : 1 (constant)\na : 1 (shared, constant)\nnev : 1",
                            *wiring["outfb"], a=cw.a_out, name="pc_s_outfb",
                            on_pre="fbo_post += a*w*sgn_pre\nnev += 1"))
    if free_output:
        own_out = np.arange(batch * dy)
        spiking.append(_connect(b2, spk_out, out, "nev : 1", own_out, own_out, name="pc_s_outown",
                                on_pre="own_post += sgn_pre\nnev += 1"))

    ops = [err.run_regularly("mu = mu_in + mu_hid + zprev\neps = z - mu\n" + enc, when="groups", order=11,
                             name="pc_err_update"),
           out.run_regularly(("eps = zout - mu_out\n" if free_output else "eps = y - mu_out\n") + enc,
                             when="groups", order=12, name="pc_out_error")]
    skip_term = " - sc*nxt" if spec.skip else ""
    ops.append(val.run_regularly(f"z = z - h*(sc*own - dphz*(sc*(fb + fbo)){skip_term})\n"
                                 "own = 0\nfb = 0\nfbo = 0\nnxt = 0", when="start", order=0, name="pc_val_update"))
    if free_output:
        ops.append(out.run_regularly("zout = zout - h*(sc*own)\nown = 0", when="start", order=1,
                                     name="pc_out_update"))
    mon_spk = [b2.SpikeMonitor(spk_err, record=False, name="pc_mon_spk_err"),
               b2.SpikeMonitor(spk_out, record=False, name="pc_mon_spk_out")]
    mon_f = b2.StateMonitor(fe, "F", record=True, when="end", dt=window, name="pc_mon_fe") if record_energy else None
    objs = [x_grp, err, out, val, fe, spk_err, spk_out] + fwd + fe_syn + spiking + ops + mon_spk
    net = b2.Network(*objs, *([mon_f] if mon_f is not None else []))
    if n_steps > 0:
        net.run(n_steps * window, namespace={})
    for grp in (spk_err, spk_out):  # the last window's spikes are in; apply them without new ones
        for thr in grp.thresholder.values():
            thr.active = False
    net.run(sub, namespace={})

    z_new = np.asarray(val.z[:], dtype=np.float64).reshape(hidden, batch, n).copy()
    zout_new = np.asarray(out.zout[:], dtype=np.float64).reshape(batch, dy).copy() if free_output else zout.copy()
    energies = np.asarray(mon_f.F, dtype=np.float64).T.copy() if mon_f is not None else None
    value_neurons = len(val) + (len(out) if free_output else 0)
    counts = {
        "spikes": int(sum(int(mon.num_spikes) for mon in mon_spk)),
        "synaptic_events": int(sum(int(np.sum(s.nev[:])) for s in spiking)),
        "forward_events": int(n_steps * sum(len(s) for s in fwd)),
        "neuron_updates": int(n_steps * (m * (len(spk_err) + len(spk_out)) + value_neurons)),
        "substeps": int(m),
        "steps": int(n_steps),
    }
    return z_new, zout_new, energies, counts


def spiking_event_counts(counts: dict, *, include_forward: bool = True):
    """:class:`pchw.events.EventCounts` of a spiking run (price it with ``neuromorphic-loihi``).

    Synaptic events are the spike deliveries, plus (``include_forward``) the graded forward-crossbar
    messages; neuron updates as counted by :func:`integrate_spiking`.
    """
    from pchw.events import EventCounts

    syn = counts["synaptic_events"] + (counts["forward_events"] if include_forward else 0)
    return EventCounts(synaptic_events=float(syn), neuron_updates=float(counts["neuron_updates"]))


class Brian2Backend:
    """The registry entry: ideal circuits only (the non-idealities live in the numba and numpy
    steppers); with ``spiking`` (a :class:`SpikeCoding`) the PC phase's errors travel as spikes
    and the phase's events come from Brian2's own counters."""

    name = "brian2"
    supports_noise = False
    supports_window = False

    def __init__(self, spiking: SpikeCoding | None = None, target: str | None = None):
        if spiking is not None and not isinstance(spiking, SpikeCoding):
            raise SimulationError("spiking must be a SpikeCoding")
        if target is not None and target not in TARGETS:
            raise SimulationError(f"target={target!r} is not one of: {', '.join(TARGETS)}")
        self.spiking, self.target = spiking, target

    def integrate(self, circuit, state, drive, phase, *, record, window):
        t0_build = brian2_target()[1]
        counts = None
        if self.spiking is not None and phase.feedback:
            if phase.method is not Method.EULER:
                raise SimulationError("spiking mode needs method=euler")
            z, zout, e_trace, spikes = integrate_spiking(
                circuit, drive.x, drive.y, state.z, state.zout, h=phase.h, n_steps=phase.n_steps,
                free_output=phase.free_output, coding=self.spiking, seed=circuit.seed,
                record_energy=record.free_energy, target=self.target)
            s_trace, counts = None, spiking_event_counts(spikes, include_forward=True)
        else:
            z, zout, e_trace, s_trace = integrate_brian2(
                circuit, drive.x, drive.y, state.z, state.zout, h=phase.h, n_steps=phase.n_steps,
                method=phase.method.value, free_output=phase.free_output, feedback=phase.feedback,
                record_energy=record.free_energy, record_states=record.activities, target=self.target)
        state.z[...], state.zout[...] = z, zout
        return PhaseTrace(free_energy=e_trace, activities=s_trace, compile_s=t0_build, counts=counts)
