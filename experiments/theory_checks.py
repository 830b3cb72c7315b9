"""theory: the thesis's checks on small networks, numerically against the float64 oracle.

One point is one ``check`` at one depth L (weight matrices; H = L − 1 hidden layers), parameterisation
and activation:

- ``energy``: the closed-form equilibrated energy F* (:func:`pchw.theory.equilibrated_energy`)
  against the free energy that the oracle's inference (:func:`pchw.oracle.inference`, plain
  gradient descent on the activities, from the feedforward pass) reaches when run to
  convergence on random x, y. The activity lr is the optimal fixed step 2B/(λ_min + λ_max) of
  H_z; inference stops once the certified gap ½ Σ_b g_bᵀH_z⁻¹g_b / B ≤ ½ Σ‖g_b‖²/(λ_min B) is below
  ``tol`` × F, or after ``max_steps`` (very ill-conditioned nets do not get there: the row says so).
- ``conditioning``: the activity Hessian H_z (:func:`pchw.theory.activity_hessian`), its
  λ_min, λ_max and condition number, for μPC and SP.
- ``saddle``: at the origin W = 0 the Hessian of F* (w.r.t. all weights) against the Hessian
  of the MSE loss, both by central differences of exact gradients (∇_W F* = ∇_W F at the
  equilibrium, by the envelope theorem; the MSE gradient by backprop). Without skips and with H ≥ 2
  the MSE Hessian at the origin is exactly zero (every gradient is a product of ≥ 2 zero matrices)
  while F*'s has the eigenvalue −a_L² λ_max(Σ_yy) from the output layer
  (F* ≈ ½ yᵀ(I + a_L² W_L W_Lᵀ)⁻¹y): a strict saddle.
- ``escape``: PC against BP from small initialisation, iterations to leave the origin saddle beside the
  prediction from its negative eigenvalue, and to learn the map (:mod:`experiments.theory_escape`).
- ``trust-region``: the PC weight update against the gradient step and the trust-region step over
  the activity learning rate (:mod:`experiments.trust_region`).

``energy``, ``conditioning`` and ``saddle`` are closed forms of linear networks: a Config for them has
``act`` set to ``linear`` (so the grid's ``act`` axis adds no duplicate points); ``escape`` and
``trust-region`` take ``linear``, ``relu`` or ``tanh``. Fields left at ``None`` take the check's default
(:data:`CHECK_DEFAULTS`); the row reports the values used.

The default grid (check × L ∈ {2, 4, 8, 16, 32} × μPC/SP × linear/ReLU: 70 points) runs in a few
minutes on two cores (README). Larger budgets, more seeds and wider nets go through ``--set``, e.g.
the escape comparison at the paper's per-layer gain with a longer budget and five seeds::

    pchw run theory --set check=escape --set param=sp --set max_iters=20000 --set seeds=5 --workers 2

and the trust-region sweep with more inference steps and a finer grid of activity learning rates::

    pchw run theory --set check=trust-region --set tr_steps=100 --set n_betas=16 --set act=linear,relu,tanh
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .framework.registry import ExperimentError

NAME = "theory"
TITLE = ("Theory checks: closed-form F*, H_z conditioning, the origin saddle, escaping it (PC vs BP), "
         "PC as a trust-region method")
CHECKS = ("energy", "conditioning", "saddle", "escape", "trust-region")
LINEAR_ONLY = ("energy", "conditioning", "saddle")
ACTS = ("linear", "relu", "tanh")
CHECK_DEFAULTS = {
    "energy": {"width": 8, "input_dim": 8, "output_dim": 4, "skip": True, "samples": 16, "init_scale": 1.0},
    "conditioning": {"width": 16, "input_dim": 16, "output_dim": 16, "skip": True, "samples": 1, "init_scale": 1.0},
    "saddle": {"width": 3, "input_dim": 3, "output_dim": 2, "skip": False, "samples": 8, "init_scale": 1.0},
    "escape": {"width": 8, "input_dim": 8, "output_dim": 4, "skip": False, "samples": 64, "init_scale": 0.2},
    "trust-region": {"width": 8, "input_dim": 8, "output_dim": 4, "skip": True, "samples": 32, "init_scale": 1.0},
}
profile_fields = ()


@dataclass(frozen=True)
class Config:
    """One theory check.

    Attributes:
        check: ``energy``, ``conditioning``, ``saddle``, ``escape`` or ``trust-region``.
        depth: L, weight matrices (H = L − 1 hidden layers).
        param: ``mupc`` or ``sp``.
        act: ``linear``, ``relu`` or ``tanh`` (``escape``, ``trust-region``; the other checks are linear).
        width, input_dim, output_dim: N, D, d_y (None: the check's default).
        skip: identity skips on hidden-to-hidden layers (None: the check's default — skips for
            ``energy``/``conditioning``/``trust-region`` as in μPC, none for ``saddle``/``escape``, the
            deep network of the saddle theory).
        samples: B, samples of the random (energy) or teacher–student (saddle, escape, trust-region) data.
        seed: seeds weights and data.
        seeds: ``escape``/``trust-region`` pool this many seeds (seed, seed + 1, …) in one row.
        init_scale: the parameterisation's initial weights are multiplied by it (None: 0.2 for
            ``escape`` — SP's per-layer gain 0.115, the paper's 0.112 — and 1 otherwise).
        max_steps, tol: energy — inference step cap and the certified relative gap to stop at.
        lr, max_iters, threshold_frac, saddle_drop: escape — the gradient-descent learning rate of PC
            and BP (None: half BP's edge of stability at the balanced solution), the iteration budget,
            the loss fraction that counts as having learnt the map, and the fraction of the origin's
            objective below which an algorithm has left the saddle.
        inference_steps: escape — gradient-descent inference steps of PC on ReLU/tanh networks (linear
            ones are solved exactly).
        tr_steps, n_betas, beta_min_frac, beta_max_frac: trust-region — inference steps T of the finite-T
            PC update and its activity learning rates, ``n_betas`` log-spaced fractions of the stability
            bound 2B/λ_max(I(ẑ)) from ``beta_min_frac`` to ``beta_max_frac``.
    """

    check: str = "conditioning"
    depth: int = 8
    param: str = "mupc"
    act: str = "linear"
    width: int | None = None
    input_dim: int | None = None
    output_dim: int | None = None
    skip: bool | None = None
    samples: int | None = None
    seed: int = 0
    seeds: int = 3
    init_scale: float | None = None
    max_steps: int = 20000
    tol: float = 1e-10
    lr: float | None = None
    max_iters: int = 300
    threshold_frac: float = 0.5
    saddle_drop: float = 0.1
    inference_steps: int = 50
    tr_steps: int = 20
    n_betas: int = 8
    beta_min_frac: float = 0.01
    beta_max_frac: float = 1.5

    def __post_init__(self) -> None:
        for name, allowed in (("check", CHECKS), ("act", ACTS), ("param", ("mupc", "sp"))):
            if getattr(self, name) not in allowed:
                raise ExperimentError(f"{name}={getattr(self, name)!r} is not one of: {', '.join(allowed)}")
        for name, ok, rule in (
                ("depth", self.depth >= 2, ">= 2"), ("seeds", self.seeds >= 1, ">= 1"),
                ("max_iters", self.max_iters >= 1, ">= 1"), ("tr_steps", self.tr_steps >= 1, ">= 1"),
                ("inference_steps", self.inference_steps >= 1, ">= 1"),
                ("n_betas", self.n_betas >= 2, ">= 2"), ("threshold_frac", 0 < self.threshold_frac < 1, "in (0, 1)"),
                ("saddle_drop", 0 < self.saddle_drop < 1, "in (0, 1)"),
                ("beta_min_frac", 0 < self.beta_min_frac < self.beta_max_frac, "in (0, beta_max_frac)"),
                ("lr", self.lr is None or self.lr > 0, "> 0 (or None)"),
                ("init_scale", self.init_scale is None or self.init_scale > 0, "> 0 (or None)")):
            if not ok:
                raise ExperimentError(f"{name}={getattr(self, name)!r} must be {rule}")
        if self.check in LINEAR_ONLY:  # closed forms of linear networks: one point, whatever the act axis
            object.__setattr__(self, "act", "linear")


GRID = {"check": list(CHECKS), "depth": [2, 4, 8, 16, 32], "param": ["mupc", "sp"], "act": ["linear", "relu"]}


def _resolved(config: Config) -> dict:
    out = dict(CHECK_DEFAULTS[config.check])
    for k in out:
        if getattr(config, k) is not None:
            out[k] = getattr(config, k)
    return out


def _spec(config: Config, r: dict):
    from pchw.spec import NetworkSpec

    return NetworkSpec(input_dim=r["input_dim"], width=r["width"], depth=config.depth, output_dim=r["output_dim"],
                       act=config.act, param=config.param, skip=r["skip"])


# ---------------------------------------------------------------------------------------------
# exact gradients


def pc_weight_grad(spec, weights, x, y) -> list[np.ndarray]:
    """∇_W F* = ∇_W F at the exact inference equilibrium (envelope theorem)."""
    from pchw.second_order import equilibrated_weight_grad

    return equilibrated_weight_grad(spec, weights, x, y)[0]


def mse_weight_grad(spec, weights, x, y) -> list[np.ndarray]:
    """∇_W of the MSE loss by backprop (:func:`pchw.oracle.mse_weight_grad`)."""
    from pchw.oracle import mse_weight_grad as grad

    return grad(spec, weights, x, y)


def _flat(ws: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([w.ravel() for w in ws])


def _unflat(v: np.ndarray, spec) -> list[np.ndarray]:
    out, i = [], 0
    for shape in spec.weight_shapes():
        n = shape[0] * shape[1]
        out.append(v[i:i + n].reshape(shape))
        i += n
    return out


def weight_hessian(grad_fn, spec, weights, x, y, *, h: float = 1e-5) -> np.ndarray:
    """Hessian w.r.t. all weights by central differences of an exact gradient, symmetrised."""
    w0 = _flat(weights)
    cols = []
    for i in range(w0.size):
        e = np.zeros_like(w0)
        e[i] = h
        gp = _flat(grad_fn(spec, _unflat(w0 + e, spec), x, y))
        gm = _flat(grad_fn(spec, _unflat(w0 - e, spec), x, y))
        cols.append((gp - gm) / (2 * h))
    hess = np.array(cols).T
    return 0.5 * (hess + hess.T)


# ---------------------------------------------------------------------------------------------
# the checks


def _energy(config: Config, spec, r: dict) -> dict:
    from pchw import oracle
    from pchw.spec import init_weights
    from pchw.theory import activity_hessian, equilibrated_energy

    w = init_weights(spec, seed=config.seed)
    rng = np.random.default_rng(config.seed + 7)
    b = r["samples"]
    x, y = rng.standard_normal((b, spec.input_dim)), rng.standard_normal((b, spec.output_dim))
    eig = np.linalg.eigvalsh(activity_hessian(spec, w))
    lmin, lmax = float(eig[0]), float(eig[-1])
    beta = b * 2.0 / (lmin + lmax)  # batch-mean F: each sample moves by β/B · (−∂F_b/∂z_b)
    zs, _ = oracle.feedforward(spec, w, x)
    steps, chunk, gap, f_sim = 0, 250, math.inf, math.nan
    while steps < config.max_steps:
        n = min(chunk, config.max_steps - steps)
        zs = oracle.inference(spec, w, x, y, zs, n_steps=n, activity_lr=beta)
        steps += n
        g = np.concatenate(oracle.activity_grad(spec, w, x, y, zs), axis=1) * b
        f_sim = oracle.free_energy(spec, w, x, y, zs)
        gap = 0.5 * float(np.sum(g * g)) / lmin / b  # ≥ F − F*
        if gap <= config.tol * f_sim:
            break
    f_closed = equilibrated_energy(spec, w, x, y)
    return {"f_closed_form": f_closed, "f_simulated": f_sim, "f_rel_diff": abs(f_sim - f_closed) / abs(f_closed),
            "inference_steps": steps, "activity_lr": beta, "certified_rel_gap": gap / f_sim,
            "converged": bool(gap <= config.tol * f_sim), "kappa": lmax / lmin,
            "f_feedforward": oracle.mse_loss(spec, w, x, y)}


def _conditioning(config: Config, spec, r: dict) -> dict:
    from pchw.spec import init_weights
    from pchw.theory import activity_hessian

    hess = activity_hessian(spec, init_weights(spec, seed=config.seed))
    eig = np.linalg.eigvalsh(hess)
    return {"kappa": float(eig[-1] / eig[0]), "lambda_min": float(eig[0]), "lambda_max": float(eig[-1]),
            "hessian_size": hess.shape[0]}


def _saddle(config: Config, spec, r: dict) -> dict:
    from experiments.theory_escape import teacher_data

    x, y = teacher_data(spec, r["samples"], config.seed, noise=0.1)
    zero = [np.zeros(s) for s in spec.weight_shapes()]
    h_f = weight_hessian(pc_weight_grad, spec, zero, x, y)
    h_mse = weight_hessian(mse_weight_grad, spec, zero, x, y)
    eig_f, eig_mse = np.linalg.eigvalsh(h_f), np.linalg.eigvalsh(h_mse)
    sigma_yy = y.T @ y / len(y)
    a_l = spec.scalings()[-1]
    scale = max(1.0, float(np.max(np.abs(eig_f))))
    predicted = -a_l ** 2 * float(np.linalg.eigvalsh(sigma_yy)[-1]) if (spec.n_hidden >= 2 and not spec.skip) \
        else math.nan
    return {"n_weights": int(h_f.shape[0]),
            "fstar_min_eig": float(eig_f[0]), "fstar_max_eig": float(eig_f[-1]),
            "fstar_n_negative": int(np.sum(eig_f < -1e-8 * scale)),
            "fstar_predicted_min_eig": predicted,
            "mse_min_eig": float(eig_mse[0]), "mse_max_eig": float(eig_mse[-1]),
            "mse_max_abs_eig": float(np.max(np.abs(eig_mse))),
            "strict_saddle": bool(eig_f[0] < -1e-8 * scale),
            "mse_degenerate": bool(np.max(np.abs(eig_mse)) < 1e-8),
            "sigma_xy_norm": float(np.linalg.norm(y.T @ x / len(x)))}


def _escape(config: Config, spec, r: dict) -> dict:
    from dataclasses import replace

    from experiments.theory_escape import run_escape

    return run_escape(replace(config, init_scale=r["init_scale"]), spec, r["samples"])


def _trust_region(config: Config, spec, r: dict) -> dict:
    from dataclasses import replace

    from experiments.trust_region import run_trust_region

    return run_trust_region(replace(config, init_scale=r["init_scale"]), spec, r["samples"])


def _smoke_sized(config: Config) -> Config:
    """In smoke mode (:mod:`pchw.smoke`) every iteration budget shrinks a hundredfold and one seed runs:
    the checks run end to end in seconds, their numbers are not results."""
    from pchw import smoke

    if not smoke.enabled():
        return config
    return dataclasses.replace(config, seeds=1, max_steps=max(20, smoke.iterations(config.max_steps)),
                               max_iters=max(5, smoke.iterations(config.max_iters)),
                               inference_steps=min(config.inference_steps, 10), tr_steps=min(config.tr_steps, 4),
                               n_betas=min(config.n_betas, 3))


def run(config: Config) -> dict:
    """One check's measurements (plus the network actually used)."""
    config = _smoke_sized(config)
    r = _resolved(config)
    spec = _spec(config, r)
    fn = {"energy": _energy, "conditioning": _conditioning, "saddle": _saddle, "escape": _escape,
          "trust-region": _trust_region}[config.check]
    row = {"check": config.check, "n_hidden": spec.n_hidden, "width_used": spec.width,
           "input_dim_used": spec.input_dim, "output_dim_used": spec.output_dim, "skip_used": spec.skip}
    if config.check != "conditioning":
        row["samples_used"] = r["samples"]
    if config.check in ("escape", "trust-region"):
        row["init_scale_used"] = r["init_scale"]
    row.update(fn(config, spec, r))
    return row


# ---------------------------------------------------------------------------------------------
# figures


def plot(table: list[dict], outdir: Path) -> list[Path]:
    """Every check's figures (:mod:`experiments.theory_plots`), each with its one-sentence result."""
    from experiments.theory_plots import plot_all

    return plot_all(table, Path(outdir))
