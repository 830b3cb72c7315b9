"""theory, check ``escape``: PC against BP leaving the origin saddle from small initialisation.

The comparison of Innocenti et al. (NeurIPS 2024, "Only strict saddles in the energy landscape of
predictive coding networks?"; their setup: github.com/francesco-innocenti/pc-saddles, notebook
``PC_vs_BP_Convergence_Experiments_on_DNNs``), written for pchw's oracle: a network without skips
from small initialisation (``init_scale`` × the parameterisation's init; 0.2 × SP's U(±1/√fan_in) gives
a per-layer gain of 0.115, the paper's N(0, 5e-3²) at width 500 gives 0.112) on teacher–student data
y = T x, trained by full-batch gradient descent with one learning rate for both algorithms:

- **PC**: W ← W − lr ∂F/∂W at the inference equilibrium — exact for linear networks
  (:func:`pchw.second_order.equilibrium`: gradient descent on the equilibrated energy F*); for ReLU and
  tanh, where the energy has many local minima in z and the one reached depends on the inference
  dynamics, PC's own: ``inference_steps`` steps of gradient descent from the feedforward pass
  (:func:`pc_update`). The inference residual is recorded at every update;
- **BP**: W ← W − lr ∇_W L on the MSE loss L (the paper's notebook scales PC's summed energy against
  BP's mean loss, a B·d_y/2 larger step for PC; here both objectives are batch means of ½‖·‖²).

``lr`` (None) is half the edge of stability of BP at the balanced zero-loss solution of the linear
network, 1/λ_max(∇²L) there (:func:`pchw.theory.balanced_factorisation`); F*'s Hessian is smaller
there (S⁻¹ ⪯ I), so the rate is stable for both once they have escaped.

Two escapes are measured, each against a prediction:

- **leaving the saddle**: the algorithm's own objective (F* for PC, L for BP) falls ``saddle_drop`` × its
  value at the origin below that value. Predicted by gradient descent on the objective's second-order
  model at the origin: for linear networks q(w) = ½ wᵀH₀w with the closed-form Hessian
  (:func:`pchw.theory.origin_hessian`), whose negative eigenvalue −a_L² λ_max(Σ_yy) makes the mode grow
  like (1 + lr a_L² λ_max)^t (:func:`pchw.theory.saddle_escape_iterations`); for other activations the
  positively homogeneous model q(w) = lim (F*(sw) − F*(0))/s², followed with ∇q(w) = ∇F*(sw)/s at
  s‖w‖ = 1e-6. BP's saddle is degenerate for L ≥ 3 (zero Hessian): predicted never.
- **learning the map**: the training MSE falls below ``threshold_frac`` × its initial value.

Every count is "first iteration at which …", ∞ when not within ``max_iters``; each row pools
``seeds`` seeds (medians, and per-seed lists as JSON).
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import replace
from typing import NamedTuple

import numpy as np

FLOAT_EPS = float(np.finfo(float).eps)
MODEL_SCALE = 1e-6  # s‖w‖ at which the second-order model's gradient is read off the exact gradient


def teacher_data(spec, n: int, seed: int, *, noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """x ~ N(0, I) (n, D); y = T x + noise·N(0, I) with a random teacher T ~ N(0, 1/D) (d_y, D)."""
    rng = np.random.default_rng(seed + 1_000_003)
    x = rng.standard_normal((n, spec.input_dim))
    teacher = rng.standard_normal((spec.output_dim, spec.input_dim)) / math.sqrt(spec.input_dim)
    y = x @ teacher.T
    if noise:
        y = y + noise * rng.standard_normal((n, spec.output_dim))
    return x, y


def _linear_twin(spec):
    return replace(spec, act="linear")


def edge_of_stability_lr(spec, x, y) -> float:
    """2 / λ_max(∇²L) at the balanced zero-loss solution of the linear twin network (least-squares map)."""
    from pchw.theory import balanced_factorisation, gauss_newton_top_eigenvalue

    twin = _linear_twin(spec)
    target = np.linalg.lstsq(x, y, rcond=None)[0].T
    return 2.0 / gauss_newton_top_eigenvalue(twin, balanced_factorisation(twin, target), x)


class PCUpdate(NamedTuple):
    """One PC update: ∂F/∂W at PC's activities ``zs``, F there, and ‖∇_z F‖ there and at the feedforward pass."""

    grads: list
    free_energy: float
    residual: float
    start_residual: float
    zs: list


def pc_update(spec, w, x, y, *, inference_steps: int) -> PCUpdate:
    """PC's weight gradient after its inference from the feedforward pass (:class:`PCUpdate`).

    Linear: the exact equilibrium (one Newton step, :func:`pchw.second_order.equilibrium`), so the
    update is ∇F*. ReLU/tanh: PC's own inference, ``inference_steps`` steps of gradient descent from the
    feedforward pass with a step 1/λ̄ per sample, λ̄ ≥ λ_max(I) a bound from the layers' spectral norms
    (:func:`inference_step_bound`). A ReLU energy has many local minima in z (a unit can settle on
    either side of its kink), so which one inference finds depends on how it runs: this is the one PC
    itself reaches, not a solver's.
    """
    from pchw import oracle
    from pchw.second_order import equilibrium

    if spec.act.value == "linear":
        eq = equilibrium(spec, w, x, y)
        if not eq.converged:
            raise RuntimeError(f"exact inference did not converge (residual {eq.residual:.3g})")
        return PCUpdate(oracle.weight_grad(spec, w, x, y, eq.zs), eq.free_energy, eq.residual, eq.start_residual,
                        eq.zs)
    from pchw.stacked import StackedEnergy

    net = StackedEnergy(spec, w, x, y)
    z = np.stack(oracle.feedforward(spec, w, x)[0])
    eps, eps_out = net.errors(z)
    energy, grad = net.energy(eps, eps_out), net.grad(z, eps, eps_out)
    start = float(np.linalg.norm(grad))
    beta = beta0 = x.shape[0] / inference_step_bound(spec, w)
    for _ in range(inference_steps):  # the authors' rule: halve the step when F rises, stop at 1/64 of it
        trial = z - beta * grad
        eps, eps_out = net.errors(trial)
        trial_energy = net.energy(eps, eps_out)
        if trial_energy > energy:
            beta /= 2
            if beta < beta0 / 64:
                break
            continue
        z, energy, grad = trial, trial_energy, net.grad(trial, eps, eps_out)
        if np.linalg.norm(grad) <= 1e-10 * start:
            break
    zs = list(z)
    return PCUpdate(oracle.weight_grad(spec, w, x, y, zs), energy, float(np.linalg.norm(grad)), start, zs)


def inference_step_bound(spec, w) -> float:
    """λ̄ ≥ λ_max of every sample's activity Fisher: with s_ℓ = ‖a_ℓ W_ℓ‖₂ (+1 with a skip) and |φ'| ≤ 1,
    block row ℓ of I has norm at most 1 + s_{ℓ+1}² + s_{ℓ+1} + s_ℓ (Gershgorin over blocks)."""
    a = spec.scalings()
    s = [a[l] * float(np.linalg.norm(w[l], 2)) + (1.0 if spec.skip and 0 < l < spec.depth - 1 else 0.0)
         for l in range(spec.depth)]
    return max(1.0 + s[l + 1] ** 2 + s[l + 1] + (s[l] if l > 0 else 0.0) for l in range(spec.n_hidden))


def _flat(ws) -> np.ndarray:
    return np.concatenate([v.ravel() for v in ws])


def _predicted_leave(spec, x, y, w0, *, algo: str, lr: float, drop: float, max_iters: int,
                     inference_steps: int) -> tuple[float, float]:
    """(predicted iterations to leave the saddle, the most negative curvature at the origin or NaN).

    Linear and tanh (tanh(z) = z + O(z³): the same second-order model): the closed-form Hessian at the
    origin. ReLU, L ≥ 3: the piecewise-quadratic model of the output layer on the units PC's inference
    activates at the initial weights (:func:`pchw.theory.relu_origin_escape_iterations`). ReLU, L = 2:
    the model read off exact gradients.
    """
    from pchw.theory import origin_hessian, relu_origin_escape_iterations, saddle_escape_iterations

    if spec.act.value != "relu":
        linear = _linear_twin(spec)
        layers, hess = origin_hessian(linear, x, y, objective="fstar" if algo == "pc" else "mse")
        w_support = _flat([w0[l] for l in layers]) if layers else np.zeros(0)
        min_eig = float(np.linalg.eigvalsh(hess)[0]) if hess.size else 0.0
        return saddle_escape_iterations(hess, w_support, lr=lr, drop=drop, max_iters=max_iters), min_eig
    if spec.depth >= 3:
        if algo == "bp":
            return math.inf, 0.0  # every gradient is a product of ≥ 2 vanishing matrices: zero Hessian
        active = pc_update(spec, w0, x, y, inference_steps=inference_steps).zs[-1] > 0  # the units PC wakes
        return relu_origin_escape_iterations(spec, y, w0[-1], active, lr=lr, drop=drop, max_iters=max_iters), math.nan
    return _numerical_model_leave(spec, x, y, w0, algo=algo, lr=lr, drop=drop, max_iters=max_iters), math.nan


def _numerical_model_leave(spec, x, y, w0, *, algo: str, lr: float, drop: float, max_iters: int) -> float:
    """GD on q(w) = lim (F(sw) − F(0))/s², q positively homogeneous of degree 2, with ∇q(w) = ∇F(sw)/s at
    s‖w‖ = 1e-6 (exact equilibria for F*), until q ≤ −drop."""
    from pchw import oracle
    from pchw.second_order import equilibrated_weight_grad

    w = [v.copy() for v in w0]
    for t in range(max_iters + 1):
        s = MODEL_SCALE / float(np.linalg.norm(_flat(w)))
        small = [s * v for v in w]
        g = equilibrated_weight_grad(spec, small, x, y)[0] if algo == "pc" else \
            oracle.mse_weight_grad(spec, small, x, y)
        g = [v / s for v in g]
        if 0.5 * float(_flat(g) @ _flat(w)) <= -drop:  # Euler: q(w) = ½ ⟨w, ∇q(w)⟩
            return float(t)
        w = [v - lr * gv for v, gv in zip(w, g)]
    return math.inf


def _first(values, level: float) -> float:
    hit = np.flatnonzero(np.asarray(values) <= level)
    return float(hit[0]) if hit.size else math.inf


def _train(spec, w0, x, y, *, algo: str, lr: float, max_iters: int, inference_steps: int) -> dict:
    """Full-batch GD from ``w0``; per iteration the loss, the objective (F at PC's activities, or the
    loss) and, for PC, the inference residual ‖∇_z F‖ relative to its value at the feedforward pass.

    For ReLU/tanh PC, half-way and at the last iteration, the activities are polished to the exact
    local minimum next to them (:func:`pchw.second_order.equilibrium` started there; seconds each on a
    deep net): ``energy_gap`` is the larger (F − F_min)/F_min, how far from equilibrium inference stopped.
    """
    from pchw import oracle
    from pchw.second_order import equilibrium

    w = [v.copy() for v in w0]
    losses, objective, residuals, gap, first = [], [], [], 0.0, None
    for it in range(max_iters + 1):
        if algo == "pc":
            update = pc_update(spec, w, x, y, inference_steps=inference_steps)
            g, energy = update.grads, update.free_energy
            first = first or update.start_residual
            # judged against the feedforward residual, floored where training has converged and both vanish
            residuals.append(update.residual / max(update.start_residual, 1e-10 * first))
            objective.append(energy)
            if spec.act.value != "linear" and it in (max_iters // 2, max_iters):
                polished = equilibrium(spec, w, x, y, start=update.zs).free_energy
                gap = max(gap, (energy - polished) / max(polished, 1e-300))
        else:
            g = oracle.mse_weight_grad(spec, w, x, y)
        losses.append(oracle.mse_loss(spec, w, x, y))
        if algo == "bp":
            objective.append(losses[-1])
        if not math.isfinite(losses[-1]) or it == max_iters:
            break
        w = [v - lr * gv for v, gv in zip(w, g)]
    return {"losses": losses, "objective": objective, "residuals": residuals, "weights": w, "energy_gap": gap}


def _layers_moved(w0, w) -> int:
    """Weight matrices that moved by at least their initial norm."""
    return int(sum(np.linalg.norm(b - a) >= np.linalg.norm(a) for a, b in zip(w0, w)))


def one_seed(config, spec, samples: int, seed: int) -> dict:
    """Everything measured for one seed (one data set and one initialisation)."""
    from pchw.spec import init_weights

    x, y = teacher_data(spec, samples, seed)
    w0 = [config.init_scale * v for v in init_weights(spec, seed=seed)]
    edge = edge_of_stability_lr(spec, x, y)
    lr = config.lr if config.lr is not None else 0.5 * edge
    origin = 0.5 * float(np.sum(y * y)) / samples  # F* = L = ½ mean ‖y‖² at W = 0
    drop = config.saddle_drop * origin
    out = {"lr": lr, "lr_over_edge": lr / edge, "origin_objective": origin}
    for algo in ("pc", "bp"):
        run = _train(spec, w0, x, y, algo=algo, lr=lr, max_iters=config.max_iters,
                     inference_steps=config.inference_steps)
        pred, min_eig = _predicted_leave(spec, x, y, w0, algo=algo, lr=lr, drop=drop, max_iters=config.max_iters,
                                         inference_steps=config.inference_steps)
        losses = run["losses"]
        hit = _first(losses, config.threshold_frac * losses[0])
        after = losses[int(hit):] if math.isfinite(hit) else []
        out[algo] = {
            "leave_iters": _first(run["objective"], origin - drop), "leave_pred": pred, "origin_min_eig": min_eig,
            "loss_iters": hit, "initial_loss": losses[0], "final_loss": losses[-1],
            "final_objective": run["objective"][-1], "iters_run": len(losses) - 1,
            "stable_after_escape": (bool(all(math.isfinite(v) for v in after)
                                         and max(after) < config.threshold_frac * losses[0]) if after else None),
            "layers_moved": _layers_moved(w0, run["weights"]),
            "curve": _sample_curve(losses), "objective_curve": _sample_curve(run["objective"]),
        }
        if algo == "pc":
            out[algo]["max_rel_residual"] = max(run["residuals"])
            out[algo]["median_rel_residual"] = float(np.median(run["residuals"]))
            out[algo]["energy_gap"] = run["energy_gap"]
    out["pc"]["escape_grad_over_eps"] = _escape_signal(spec, w0, x, y)
    return out


def _escape_signal(spec, w0, x, y) -> float:
    """‖Π ∇F*(W₀)‖ / (eps ‖∇F*(W₀)‖), Π the projection on F*'s most negative-curvature eigenspace at the
    origin (linear; N-fold: one direction of Σ_yy per hidden unit): how many float64 rounding units of
    the gradient the escape signal spans (≫ 1: representable)."""
    from pchw.theory import origin_hessian

    if spec.act.value != "linear":
        return math.nan
    layers, hess = origin_hessian(spec, x, y, objective="fstar")
    lam, vecs = np.linalg.eigh(hess)
    bottom = vecs[:, lam <= lam[0] + 1e-9 * abs(lam[0])]
    g = pc_update(spec, w0, x, y, inference_steps=1).grads
    proj = float(np.linalg.norm(bottom.T @ _flat([g[l] for l in layers])))
    return proj / (FLOAT_EPS * float(np.linalg.norm(_flat(g))))


def _sample_curve(values, n: int = 60) -> str:
    """[[iteration, value], ...] at ~n log-spaced iterations (0 and the last included)."""
    last = len(values) - 1
    its = sorted(set(np.unique(np.round(np.geomspace(1, max(last, 1), n)).astype(int)).tolist()) | {0, last})
    return json.dumps([[i, float(f"{values[i]:.6g}")] for i in its if 0 <= i <= last])


def _median(values) -> float:
    return float(statistics.median(values)) if values else math.nan


def _seed_list(values) -> str:
    return json.dumps([v if math.isfinite(v) else None for v in values])


def run_escape(config, spec, samples: int) -> dict:
    """The ``escape`` row: ``config.seeds`` seeds from ``config.seed``, pooled."""
    seeds = [one_seed(config, spec, samples, config.seed + k) for k in range(config.seeds)]
    row: dict = {"seeds_used": len(seeds), "lr_used": _median([s["lr"] for s in seeds]),
                 "lr_over_edge": _median([s["lr_over_edge"] for s in seeds]),
                 "origin_objective": _median([s["origin_objective"] for s in seeds]),
                 "iters_budget": config.max_iters}
    for algo in ("pc", "bp"):
        per = [s[algo] for s in seeds]
        for key in ("leave_iters", "leave_pred", "loss_iters"):
            vals = [p[key] for p in per]
            row[f"{algo}_{key}"] = _median(vals)
            row[f"{algo}_{key}_seeds"] = _seed_list(vals)
        ratios = [max(p["leave_iters"], 1) / max(p["leave_pred"], 1) for p in per
                  if math.isfinite(p["leave_iters"]) and math.isfinite(p["leave_pred"])]
        row[f"{algo}_leave_ratio_worst"] = max(ratios, key=lambda r: abs(math.log(r))) if ratios else math.nan
        for key in ("origin_min_eig", "initial_loss", "final_loss", "final_objective", "layers_moved"):
            row[f"{algo}_{key}"] = _median([p[key] for p in per])
        row[f"{algo}_escaped_seeds"] = sum(math.isfinite(p["loss_iters"]) for p in per)
        judged = [p["stable_after_escape"] for p in per if p["stable_after_escape"] is not None]
        row[f"{algo}_stable_after_escape"] = all(judged) if judged else None
        row[f"{algo}_curve"] = per[0]["curve"]
        row[f"{algo}_objective_curve"] = per[0]["objective_curve"]
    row["pc_max_rel_residual"] = max(s["pc"]["max_rel_residual"] for s in seeds)
    row["pc_median_rel_residual"] = _median([s["pc"]["median_rel_residual"] for s in seeds])
    row["pc_max_energy_gap"] = max(s["pc"]["energy_gap"] for s in seeds)
    row["pc_escape_grad_over_eps"] = min(s["pc"]["escape_grad_over_eps"] for s in seeds)
    return row
