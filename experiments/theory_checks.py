"""theory: the thesis checks of DESIGN.md §2 on linear networks (φ = identity), numerically.

One point is one ``check`` at one depth and parameterisation:

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
  equilibrium, by the envelope theorem; the MSE gradient by backprop written out for this
  network). Without skips and with H ≥ 2 the MSE Hessian at the origin is exactly zero (every
  gradient is a product of ≥ 2 zero matrices) while F*'s has the eigenvalue −a_L² λ_max(Σ_yy)
  from the output layer (F* ≈ ½ yᵀ(I + a_L² W_L W_Lᵀ)⁻¹y): a strict saddle.
- ``escape``: a deep linear net (no skips) from small initialisation (``init_scale`` × the
  parameterisation's init) trained on teacher–student linear data by plain gradient descent with
  the same lr and init: PC on ∇_W F at the inference equilibrium (exact for a linear net: one
  Newton step with H_z from the feedforward pass, i.e. gradient descent on F*), BP on the MSE
  loss. Both curves are the training MSE loss of the feedforward map; the row holds the
  iterations each needs to bring it below ``threshold_frac`` × its initial value (NaN: never
  within ``max_iters``) and the curves, sampled, as JSON ``[[iteration, loss], ...]``.

``depth`` is L, the number of weight matrices, as everywhere in pchw (H = L − 1 hidden layers).
Fields left at ``None`` take the check's default (:data:`CHECK_DEFAULTS`); the row reports the
values used.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NAME = "theory"
TITLE = "Theory checks on linear networks: closed-form F*, H_z conditioning, the origin saddle, escaping it"
CHECKS = ("energy", "conditioning", "saddle", "escape")
CHECK_DEFAULTS = {
    "energy": {"width": 8, "input_dim": 8, "output_dim": 4, "skip": True, "samples": 16},
    "conditioning": {"width": 16, "input_dim": 16, "output_dim": 16, "skip": True, "samples": 1},
    "saddle": {"width": 3, "input_dim": 3, "output_dim": 2, "skip": False, "samples": 8},
    "escape": {"width": 8, "input_dim": 8, "output_dim": 4, "skip": False, "samples": 64},
}
profile_fields = ()


@dataclass(frozen=True)
class Config:
    """One theory check.

    Attributes:
        check: ``energy``, ``conditioning``, ``saddle`` or ``escape``.
        depth: L, weight matrices (H = L − 1 hidden layers).
        param: ``mupc`` or ``sp``.
        width, input_dim, output_dim: N, D, d_y (None: the check's default).
        skip: identity skips on hidden-to-hidden layers (None: the check's default — skips for
            ``energy``/``conditioning`` as in μPC, none for ``saddle``/``escape``, the deep linear
            network of the saddle theory).
        samples: B, samples of the random (energy, saddle) or teacher–student (escape) data.
        seed: seeds weights and data.
        max_steps, tol: energy — inference step cap and the certified relative gap to stop at.
        lr, init_scale, max_iters, threshold_frac: escape — gradient-descent lr (PC and BP alike),
            initial weights' scale, iteration cap and the loss fraction that counts as escaped.
    """

    check: str = "conditioning"
    depth: int = 8
    param: str = "mupc"
    width: int | None = None
    input_dim: int | None = None
    output_dim: int | None = None
    skip: bool | None = None
    samples: int | None = None
    seed: int = 0
    max_steps: int = 20000
    tol: float = 1e-10
    lr: float = 0.5
    init_scale: float = 1e-3
    max_iters: int = 3000
    threshold_frac: float = 0.5


GRID = {"check": list(CHECKS), "depth": [2, 4, 8, 16, 32], "param": ["mupc", "sp"]}


def _resolved(config: Config) -> dict:
    if config.check not in CHECKS:
        raise ValueError(f"check={config.check!r} is not one of: {', '.join(CHECKS)}")
    out = dict(CHECK_DEFAULTS[config.check])
    for k in out:
        if getattr(config, k) is not None:
            out[k] = getattr(config, k)
    return out


def _spec(config: Config, r: dict):
    from pchw.spec import NetworkSpec

    return NetworkSpec(input_dim=r["input_dim"], width=r["width"], depth=config.depth, output_dim=r["output_dim"],
                       act="linear", param=config.param, skip=r["skip"])


# ---------------------------------------------------------------------------------------------
# exact gradients of a (linear) network


def equilibrium(spec, weights, x, y) -> list[np.ndarray]:
    """The inference equilibrium z* of a linear network: one Newton step from the feedforward pass.

    F is quadratic in the activities with per-sample Hessian H_z, and ∇_z F = (1/B)(H_z z_b − b_b),
    so z* = z − B·H_z⁻¹ ∇_z F from any z.
    """
    from pchw import oracle
    from pchw.theory import activity_hessian

    zs, _ = oracle.feedforward(spec, weights, x)
    g = np.concatenate(oracle.activity_grad(spec, weights, x, y, zs), axis=1) * x.shape[0]
    z = np.concatenate(zs, axis=1) - np.linalg.solve(activity_hessian(spec, weights), g.T).T
    return np.split(z, spec.n_hidden, axis=1)


def pc_weight_grad(spec, weights, x, y) -> list[np.ndarray]:
    """∇_W F* = ∇_W F at the equilibrium activities (envelope theorem)."""
    from pchw import oracle

    return oracle.weight_grad(spec, weights, x, y, equilibrium(spec, weights, x, y))


def mse_weight_grad(spec, weights, x, y) -> list[np.ndarray]:
    """∇_W of :func:`pchw.oracle.mse_loss` by backprop through the residual network."""
    from pchw.oracle import dphi, phi

    a, batch = spec.scalings(), x.shape[0]
    hs = [a[0] * x @ weights[0].T]
    for l in range(1, spec.depth - 1):
        m = a[l] * phi(spec.act, hs[-1]) @ weights[l].T
        hs.append(hs[-1] + m if spec.skip else m)
    out = a[-1] * phi(spec.act, hs[-1]) @ weights[-1].T
    d_out = (out - y) / batch
    grads: list = [None] * spec.depth
    grads[-1] = a[-1] * d_out.T @ phi(spec.act, hs[-1])
    delta = a[-1] * (d_out @ weights[-1]) * dphi(spec.act, hs[-1])  # ∂loss/∂h_{L−1}
    for l in range(spec.depth - 2, 0, -1):
        grads[l] = a[l] * delta.T @ phi(spec.act, hs[l - 1])
        back = a[l] * (delta @ weights[l]) * dphi(spec.act, hs[l - 1])
        delta = delta + back if spec.skip else back
    grads[0] = a[0] * delta.T @ x
    return grads


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


def _random_data(spec, n: int, seed: int, *, noise: float = 0.1):
    """x ~ N(0, I); y = T x + noise with a random teacher T: correlated inputs and outputs."""
    rng = np.random.default_rng(seed + 1_000_003)
    x = rng.standard_normal((n, spec.input_dim))
    teacher = rng.standard_normal((spec.output_dim, spec.input_dim)) / math.sqrt(spec.input_dim)
    y = x @ teacher.T + noise * rng.standard_normal((n, spec.output_dim))
    return x, y


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
    x, y = _random_data(spec, r["samples"], config.seed)
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


def _sample_curve(losses: list[float], keep: set[int], n: int = 60) -> str:
    """[[iteration, loss], ...] at ~n log-spaced iterations plus ``keep`` (iteration 0 = the init)."""
    last = len(losses) - 1
    its = set(np.unique(np.round(np.geomspace(1, max(last, 1), n)).astype(int)).tolist()) | {0, last} | keep
    return json.dumps([[i, float(f"{losses[i]:.6g}")] for i in sorted(its) if 0 <= i <= last])


def _train(grad_fn, spec, w0, x, y, config: Config) -> tuple[list[float], float]:
    from pchw import oracle

    w = [v.copy() for v in w0]
    losses = [oracle.mse_loss(spec, w, x, y)]
    threshold = config.threshold_frac * losses[0]
    hit = math.nan
    for it in range(1, config.max_iters + 1):
        g = grad_fn(spec, w, x, y)
        w = [v - config.lr * gv for v, gv in zip(w, g)]
        loss = oracle.mse_loss(spec, w, x, y)
        losses.append(loss)
        if not math.isfinite(loss):
            break
        if math.isnan(hit) and loss < threshold:
            hit = float(it)
    return losses, hit


def _escape(config: Config, spec, r: dict) -> dict:
    from pchw.spec import init_weights

    x, y = _random_data(spec, r["samples"], config.seed, noise=0.0)
    w0 = [config.init_scale * w for w in init_weights(spec, seed=config.seed)]
    row: dict = {}
    for name, fn in (("pc", pc_weight_grad), ("bp", mse_weight_grad)):
        losses, hit = _train(fn, spec, w0, x, y, config)
        keep = {int(hit), int(hit) - 1} if math.isfinite(hit) else set()
        row.update({f"{name}_iters_to_threshold": hit, f"{name}_initial_loss": losses[0],
                    f"{name}_final_loss": losses[-1], f"{name}_iters_run": len(losses) - 1,
                    f"{name}_diverged": bool(not math.isfinite(losses[-1])),
                    f"{name}_curve": _sample_curve(losses, keep)})
    pc, bp = row["pc_iters_to_threshold"], row["bp_iters_to_threshold"]
    row["pc_escapes_faster"] = bool(math.isfinite(pc) and (not math.isfinite(bp) or pc < bp))
    row["loss_threshold"] = config.threshold_frac * row["pc_initial_loss"]
    return row


def run(config: Config) -> dict:
    """One check's measurements (plus the network actually used)."""
    r = _resolved(config)
    spec = _spec(config, r)
    fn = {"energy": _energy, "conditioning": _conditioning, "saddle": _saddle, "escape": _escape}[config.check]
    row = {"check": config.check, "n_hidden": spec.n_hidden, "width_used": spec.width,
           "input_dim_used": spec.input_dim, "output_dim_used": spec.output_dim, "skip_used": spec.skip}
    if config.check in ("energy", "saddle", "escape"):
        row["samples_used"] = r["samples"]
    row.update(fn(config, spec, r))
    return row


# ---------------------------------------------------------------------------------------------
# figures


def _get(r: dict, name: str):
    v = r.get(name, r.get(f"p_{name}"))
    return None if v in ("", "None") else v


def _num(r: dict, name: str) -> float:
    v = _get(r, name)
    try:
        return float("nan") if v is None else float(v)
    except (TypeError, ValueError):
        return float("nan")


def _of(table: list[dict], check: str) -> list[dict]:
    return sorted((r for r in table if _get(r, "check") == check),
                  key=lambda r: (str(_get(r, "param")), str(_get(r, "skip_used")), _num(r, "depth")))


def _groups(rows: list[dict]) -> dict:
    out: dict = {}
    for r in rows:
        skip = str(_get(r, "skip_used")) in ("True", "true", "1")
        out.setdefault(f"{str(_get(r, 'param')).lower()}{'' if skip else ', no skips'}", []).append(r)
    return out


def plot(table: list[dict], outdir: Path) -> list[Path]:
    """F* closed form vs simulated; κ(H_z) vs depth; the origin's Hessian eigenvalues; escape curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []

    def save(fig, name):
        fig.tight_layout()
        paths.append(outdir / name)
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)

    rows = _of(table, "energy")
    if rows:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
        for label, grp in _groups(rows).items():
            ax1.scatter([_num(r, "f_closed_form") for r in grp], [_num(r, "f_simulated") for r in grp], label=label)
            ax2.plot([_num(r, "depth") for r in grp], [max(_num(r, "f_rel_diff"), 1e-17) for r in grp], "o-",
                     label=label)
        lo = min(min(_num(r, "f_closed_form"), _num(r, "f_simulated")) for r in rows)
        hi = max(max(_num(r, "f_closed_form"), _num(r, "f_simulated")) for r in rows)
        ax1.plot([lo, hi], [lo, hi], "k--", lw=1, label="y = x")
        ax1.set_xlabel("F* closed form")
        ax1.set_ylabel("F reached by oracle inference")
        ax1.set_title("equilibrated energy: closed form vs inference")
        ax1.legend(fontsize=7)
        ax2.set_xscale("log", base=2)
        ax2.set_yscale("log")
        ax2.axhline(1e-6, color="grey", ls=":", lw=1)
        ax2.set_xlabel("depth L (weight matrices)")
        ax2.set_ylabel("|F − F*| / F* (floored at 1e-17)")
        ax2.set_title("relative difference (open marker: not converged)", fontsize=9)
        for r in rows:
            if str(_get(r, "converged")) not in ("True", "true", "1"):
                ax2.plot([_num(r, "depth")], [max(_num(r, "f_rel_diff"), 1e-17)], "o", mfc="none", ms=12, color="r")
        ax2.legend(fontsize=7)
        save(fig, "theory_energy.png")

    rows = _of(table, "conditioning")
    if rows:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
        for label, grp in _groups(rows).items():
            d = [_num(r, "depth") for r in grp]
            ax1.plot(d, [_num(r, "kappa") for r in grp], "o-", label=label)
            line, = ax2.plot(d, [_num(r, "lambda_min") for r in grp], "o-", label=f"{label} λ_min")
            ax2.plot(d, [_num(r, "lambda_max") for r in grp], "s--", color=line.get_color(), label=f"{label} λ_max")
        for ax in (ax1, ax2):
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("depth L (weight matrices)")
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=7)
        ax1.set_ylabel("condition number κ(H_z)")
        ax1.set_title("activity-Hessian conditioning at init")
        ax2.set_ylabel("eigenvalue")
        ax2.set_title("extreme eigenvalues of H_z")
        save(fig, "theory_conditioning.png")

    rows = _of(table, "saddle")
    if rows:
        fig, ax = plt.subplots(figsize=(7, 4.6))
        labels = [f"L={int(_num(r, 'depth'))}\n{_get(r, 'param')}" for r in rows]
        pos = np.arange(len(rows))
        ax.bar(pos - 0.2, [_num(r, "fstar_min_eig") for r in rows], 0.4, label="λ_min of ∇²F* at W = 0")
        ax.bar(pos + 0.2, [_num(r, "mse_min_eig") for r in rows], 0.4, label="λ_min of ∇²(MSE) at W = 0")
        pred = [_num(r, "fstar_predicted_min_eig") for r in rows]
        ax.plot(pos - 0.2, pred, "k_", ms=16, mew=2, label="−a_L² λ_max(Σ_yy)")
        for i, r in enumerate(rows):
            if _num(r, "mse_max_abs_eig") < 1e-8:
                ax.text(pos[i] + 0.2, 0, "0", ha="center", va="top", fontsize=7, color="tab:orange")
        ax.axhline(0, color="k", lw=0.8)
        ax.set_yscale("symlog", linthresh=1e-6)
        ax.set_xticks(pos, labels, fontsize=7)
        ax.set_ylabel("smallest Hessian eigenvalue (symlog)")
        ax.set_title("the origin: strict saddle of F*, degenerate saddle of the MSE")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
        save(fig, "theory_saddle.png")

    rows = _of(table, "escape")
    if rows:
        cols = min(len(rows), 5)
        nrows = math.ceil(len(rows) / cols)
        fig, axes = plt.subplots(nrows, cols, figsize=(3.4 * cols, 3.0 * nrows), squeeze=False)
        for ax in axes.ravel()[len(rows):]:
            ax.axis("off")
        for ax, r in zip(axes.ravel(), rows):
            for name, color in (("pc", "tab:blue"), ("bp", "tab:red")):
                curve = _get(r, f"{name}_curve")
                if not curve:
                    continue
                pts = np.array(json.loads(curve), dtype=float)
                ax.plot(np.maximum(pts[:, 0], 0.5), pts[:, 1], color=color, label=name.upper())
                hit = _num(r, f"{name}_iters_to_threshold")
                if math.isfinite(hit):
                    ax.axvline(hit, color=color, ls=":", lw=1)
            thr = _num(r, "loss_threshold")
            if math.isfinite(thr):
                ax.axhline(thr, color="grey", ls="--", lw=0.8)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"L={int(_num(r, 'depth'))}, {_get(r, 'param')}", fontsize=9)
            ax.set_xlabel("iteration")
            ax.set_ylabel("training MSE")
            ax.legend(fontsize=7)
        fig.suptitle("escaping the origin from small init: PC (GD on F*) vs BP (GD on MSE), same lr")
        save(fig, "theory_escape.png")
    return paths
