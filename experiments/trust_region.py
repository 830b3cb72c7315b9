"""theory, check ``trust-region``: the PC weight update against the gradient step and the trust-region step.

Innocenti, Singh & Buckley (arXiv 2305.18188, "Understanding predictive coding as an adaptive
trust-region method") expand the energy around the feedforward values ẑ,
F(ẑ + Δz) ≈ L + gᵀΔz + ½ Δzᵀ I(ẑ) Δz with g = ∂F/∂z at ẑ and I the Fisher information of the activities,
so PC inference approximately solves a trust-region problem on the loss in activity space, with an
adaptive geometry I(ẑ); its solution Δz_TR = −I(ẑ)⁻¹ g (:func:`pchw.second_order.trust_region_step`)
carries second-order information that the weight update then uses. On one network and batch this
check computes, in float64:

- ΔW_BP ∝ −∇_W L, the gradient step (backprop);
- ΔW_TR ∝ −∂F/∂W at ẑ + Δz_TR, the update the trust-region step predicts;
- ΔW_PC ∝ −∂F/∂W at the activities PC reaches: at the exact equilibrium (T = ∞), and after
  ``tr_steps`` steps of plain gradient-descent inference from ẑ with activity lr β, for β over a
  log grid of fractions of the stability bound 2B/λ_max(I(ẑ)) (above it inference diverges);

and reports cosines between them, the PC/BP step-size ratio ‖ΔW_PC‖/‖ΔW_BP‖ at equal learning rate
and the inference residual ‖∇_z F‖ after T steps relative to its value at ẑ (``diverged``: it grew).

For a linear network the energy is quadratic in z and I = H_z, so ẑ + Δz_TR is the equilibrium and
ΔW_TR = ΔW_PC(T = ∞) exactly. ReLU/tanh make it an approximation (the pattern of φ' changes on the
way; tanh's Hessian has a φ'' term the Fisher drops), and a finite T makes PC's own update one: with
βT small the activities take a first-order step (ΔW_PC → the last layer's gradient only), and the
directions of small Fisher eigenvalue, whose number grows with the depth (κ(H_z) grows like depth²,
the ``conditioning`` check), converge last.
"""

from __future__ import annotations

import json
import math
import statistics

import numpy as np


def _flat(ws) -> np.ndarray:
    return np.concatenate([np.asarray(v).ravel() for v in ws])


def _cos(a, b) -> float:
    a, b = _flat(a), _flat(b)
    den = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / den if den > 0 and math.isfinite(den) else math.nan


def _ratio(a, b) -> float:
    den = float(np.linalg.norm(_flat(b)))
    return float(np.linalg.norm(_flat(a))) / den if den > 0 else math.nan


def beta_fractions(config) -> np.ndarray:
    """The activity learning rates as fractions of the stability bound 2B/λ_max(I(ẑ))."""
    return np.geomspace(config.beta_min_frac, config.beta_max_frac, config.n_betas)


def one_seed(config, spec, samples: int, seed: int) -> dict:
    """Every comparison on one network (init × ``init_scale``) and one teacher–student batch."""
    from experiments.theory_escape import teacher_data
    from pchw import oracle
    from pchw.second_order import equilibrium, fisher_blocks, trust_region_step
    from pchw.spec import init_weights

    x, y = teacher_data(spec, samples, seed)
    w = [config.init_scale * v for v in init_weights(spec, seed=seed)]
    g_bp = oracle.mse_weight_grad(spec, w, x, y)
    z_hat, dz_tr = trust_region_step(spec, w, x, y)
    g_tr = oracle.weight_grad(spec, w, x, y, [z + d for z, d in zip(z_hat, dz_tr)])
    eq = equilibrium(spec, w, x, y)
    g_eq = oracle.weight_grad(spec, w, x, y, eq.zs)
    diag, upper = fisher_blocks(spec, w, z_hat)
    eig = _fisher_extremes(diag, upper)
    beta_max = 2.0 * samples / eig[1]  # batch-mean F: each sample moves by β/B · ∂F_b/∂z_b
    out = {"eq_cos_tr": _cos(g_eq, g_tr), "eq_cos_bp": _cos(g_eq, g_bp), "tr_cos_bp": _cos(g_tr, g_bp),
           "eq_step_ratio": _ratio(g_eq, g_bp), "tr_step_ratio": _ratio(g_tr, g_bp),
           "eq_dz_cos": _cos([z - zh for z, zh in zip(eq.zs, z_hat)], dz_tr), "eq_converged": eq.converged,
           "kappa": eig[1] / eig[0], "beta_max": beta_max, "curve": []}
    start_res = float(np.linalg.norm(_flat(oracle.activity_grad(spec, w, x, y, z_hat))))
    for frac in beta_fractions(config):
        with np.errstate(all="ignore"):
            zs = oracle.inference(spec, w, x, y, z_hat, n_steps=config.tr_steps, activity_lr=frac * beta_max)
            g = oracle.weight_grad(spec, w, x, y, zs)
            res = float(np.linalg.norm(_flat(oracle.activity_grad(spec, w, x, y, zs)))) / start_res
        finite = math.isfinite(res)
        out["curve"].append({
            "beta_frac": float(frac), "cos_tr": _cos(g, g_tr) if finite else math.nan,
            "cos_bp": _cos(g, g_bp) if finite else math.nan, "step_ratio": _ratio(g, g_bp) if finite else math.nan,
            "dz_cos": _cos([z - zh for z, zh in zip(zs, z_hat)], dz_tr) if finite else math.nan,
            "rel_residual": res if finite else math.nan, "diverged": not (finite and res <= 1.0)})
    return out


def _fisher_extremes(diag: np.ndarray, upper: np.ndarray) -> tuple[float, float]:
    """(smallest λ_min, largest λ_max) of the per-sample Fisher matrices."""
    from pchw.second_order import dense_block_tridiagonal

    eig = [np.linalg.eigvalsh(dense_block_tridiagonal(diag, upper, b)) for b in range(diag.shape[1])]
    return min(float(e[0]) for e in eig), max(float(e[-1]) for e in eig)


def _median(values) -> float:
    vals = [v for v in values if math.isfinite(v)]
    return float(statistics.median(vals)) if vals else math.nan


def run_trust_region(config, spec, samples: int) -> dict:
    """The ``trust-region`` row: ``config.seeds`` seeds from ``config.seed``, medians (and worst cosines)."""
    seeds = [one_seed(config, spec, samples, config.seed + k) for k in range(config.seeds)]
    row: dict = {"seeds_used": len(seeds), "tr_steps_used": config.tr_steps,
                 "eq_converged": all(s["eq_converged"] for s in seeds)}
    for key in ("eq_cos_tr", "eq_cos_bp", "tr_cos_bp", "eq_step_ratio", "tr_step_ratio", "eq_dz_cos", "kappa",
                "beta_max"):
        row[key] = _median([s[key] for s in seeds])
    row["eq_cos_tr_worst"] = min(s["eq_cos_tr"] for s in seeds)
    curve = []
    for i, frac in enumerate(beta_fractions(config)):
        points = [s["curve"][i] for s in seeds]
        entry = {"beta_frac": float(frac), "diverged_seeds": sum(p["diverged"] for p in points)}
        for key in ("cos_tr", "cos_bp", "step_ratio", "dz_cos", "rel_residual"):
            entry[key] = _median([p[key] for p in points])
        entry["cos_tr_worst"] = min((p["cos_tr"] for p in points if math.isfinite(p["cos_tr"])), default=math.nan)
        curve.append(entry)
    best = max((c for c in curve if math.isfinite(c["cos_tr"])), key=lambda c: c["cos_tr"], default=None)
    row["best_beta_frac"] = best["beta_frac"] if best else math.nan
    row["best_cos_tr"] = best["cos_tr"] if best else math.nan
    row["beta_curve"] = json.dumps([{k: (v if not isinstance(v, float) or math.isfinite(v) else None)
                                     for k, v in c.items()} for c in curve])
    return row
