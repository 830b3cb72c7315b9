"""Closed forms for linear PC networks (φ = identity), DESIGN.md §2.

Column-vector convention: the map from z_{ℓ−1} to μ_ℓ is
    M_ℓ = I + a_ℓ W_ℓ (hidden, skips) | a_ℓ W_ℓ (hidden, no skips) | a_L W_L (output).
P_ℓ is the map from z_{ℓ−1} to the output: P_L = a_L W_L, P_ℓ = P_{ℓ+1} M_ℓ going down.
At the inference equilibrium the free energy is
    F* = (1/2B) Σ_i r_iᵀ S⁻¹ r_i,   r_i = y_i − P_2 a_1 W_1 x_i,   S = I + Σ_{ℓ=2}^{L} P_ℓ P_ℓᵀ,
because y = (end-to-end) x + Σ_ℓ P_{ℓ+1} ε_ℓ + ε_L and minimising Σ‖ε‖² under that constraint
is a least-norm problem.
"""

from __future__ import annotations

import numpy as np

from .spec import Activation, NetworkSpec, SpecError, check_weights


def _require_linear(spec: NetworkSpec) -> None:
    if spec.act is not Activation.LINEAR:
        raise SpecError(f"closed forms need act='linear', got act={spec.act.value!r}")


def layer_maps(spec: NetworkSpec, weights: list[np.ndarray]) -> list[np.ndarray]:
    """M_2..M_L, the Jacobians ∂μ_ℓ/∂z_{ℓ−1} of a linear network (column convention)."""
    _require_linear(spec)
    check_weights(spec, weights)
    a = spec.scalings()
    eye = np.eye(spec.width)
    maps = []
    for l in range(1, spec.depth - 1):
        m = a[l] * weights[l]
        maps.append(eye + m if spec.skip else m)
    maps.append(a[-1] * weights[-1])
    return maps


def output_maps(spec: NetworkSpec, weights: list[np.ndarray]) -> list[np.ndarray]:
    """P_2..P_L: P_ℓ maps z_{ℓ−1} to the output, (d_y, N) each."""
    maps = layer_maps(spec, weights)
    ps = [maps[-1]]
    for m in reversed(maps[:-1]):
        ps.append(ps[-1] @ m)
    return ps[::-1]


def end_to_end(spec: NetworkSpec, weights: list[np.ndarray]) -> np.ndarray:
    """The linear network's input-output map (d_y, D)."""
    return output_maps(spec, weights)[0] @ (spec.scalings()[0] * weights[0])


def equilibrated_energy(spec: NetworkSpec, weights: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    """F* — the free energy at the inference equilibrium of a linear network, in closed form."""
    ps = output_maps(spec, weights)
    s = np.eye(spec.output_dim) + sum(p @ p.T for p in ps)
    r = y - x @ end_to_end(spec, weights).T
    return 0.5 * float(np.sum(r * np.linalg.solve(s, r.T).T)) / x.shape[0]


def activity_hessian(spec: NetworkSpec, weights: list[np.ndarray]) -> np.ndarray:
    """H_z, the Hessian of one sample's energy ½Σ‖ε_ℓ‖² in (z_1..z_H), (H·N, H·N).

    Block tridiagonal: diagonal I + M_{ℓ+1}ᵀM_{ℓ+1}, off-diagonal −M_{ℓ+1}ᵀ / −M_{ℓ+1}.
    The batch-mean F has Hessian H_z / B per sample.
    """
    maps = layer_maps(spec, weights)
    n, h = spec.width, spec.n_hidden
    hess = np.zeros((h * n, h * n))
    for l in range(h):  # block for z_{l+1}; its outgoing map is maps[l]
        m = maps[l]
        block = slice(l * n, (l + 1) * n)
        hess[block, block] = np.eye(n) + m.T @ m
        if l + 1 < h:
            nxt = slice((l + 1) * n, (l + 2) * n)
            hess[block, nxt] = -m.T
            hess[nxt, block] = -m
    return hess


def condition_number(hess: np.ndarray) -> float:
    """κ = λ_max / λ_min of a symmetric positive definite matrix."""
    eig = np.linalg.eigvalsh(hess)
    return float(eig[-1] / eig[0])


# ---------------------------------------------------------------------------------------------
# the origin saddle of deep linear networks without skips


def origin_hessian(spec: NetworkSpec, x: np.ndarray, y: np.ndarray, *, objective: str = "fstar"
                   ) -> tuple[list[int], np.ndarray]:
    """The Hessian at W = 0 of F* (``objective="fstar"``) or of the MSE loss (``"mse"``), on its support.

    For a linear network without skips, with C = (1/B) Σ x yᵀ (D, d_y) and Σ_yy = (1/B) Σ y yᵀ, the
    second-order terms at the origin are
        −a_1 a_2 tr(W_2 W_1 C)         (both objectives, only when L = 2: every other product is of order ≥ 3)
        −½ a_L² tr(W_Lᵀ Σ_yy W_L)       (F* only, any L: S⁻¹ ≈ I − a_L² W_L W_Lᵀ)
    (Innocenti et al., NeurIPS 2024). Returns (the 0-based indices of the weight matrices the Hessian
    touches, the dense Hessian over those matrices flattened row-major and concatenated). An empty
    support means a zero Hessian: the MSE's degenerate saddle for L ≥ 3.
    """
    _require_linear(spec)
    if spec.skip:
        raise SpecError("origin_hessian needs skip=False (with skips W = 0 is not the zero map)")
    if objective not in ("fstar", "mse"):
        raise ValueError(f"objective={objective!r} is not one of: fstar, mse")
    a, n, d_in, d_out = spec.scalings(), spec.width, spec.input_dim, spec.output_dim
    batch = x.shape[0]
    layers = ([0] if spec.depth == 2 else []) + ([spec.depth - 1] if spec.depth == 2 or objective == "fstar" else [])
    sizes = {l: int(np.prod(spec.weight_shapes()[l])) for l in layers}
    hess = np.zeros((sum(sizes.values()),) * 2)
    offset = {l: sum(sizes[k] for k in layers[:i]) for i, l in enumerate(layers)}
    if spec.depth == 2:  # ∂²/∂W_2[i,k] ∂W_1[k,m] of −a_1 a_2 Σ W_2[i,k] W_1[k,m] C[m,i]
        c = x.T @ y / batch
        for i in range(d_out):
            for k in range(n):
                rows = offset[1] + i * n + k
                cols = offset[0] + k * d_in + np.arange(d_in)
                hess[rows, cols] = hess[cols, rows] = -a[0] * a[1] * c[:, i]
    if objective == "fstar":
        o = offset[spec.depth - 1]
        hess[o:o + d_out * n, o:o + d_out * n] += -a[-1] ** 2 * np.kron(y.T @ y / batch, np.eye(n))
    return layers, hess


def saddle_escape_iterations(hess: np.ndarray, w0: np.ndarray, *, lr: float, drop: float,
                             max_iters: int) -> float:
    """Iterations of gradient descent to lower a quadratic saddle model by ``drop``, from ``w0``.

    On q(w) = ½ wᵀ H w, GD gives w_t = (I − lr H)^t w_0, so with H = Σ_k λ_k v_k v_kᵀ and c_k = v_kᵀ w_0,
    q(w_t) = ½ Σ_k λ_k (1 − lr λ_k)^{2t} c_k²: the negative-curvature modes grow like (1 + lr |λ|)^t.
    Returns the first integer t with q(w_t) ≤ −drop (∞ if none within ``max_iters``; q is decreasing in t
    while lr λ < 2 for every positive λ).
    """
    if hess.size == 0:
        return float("inf")
    lam, vecs = np.linalg.eigh(hess)
    c2 = (vecs.T @ w0) ** 2
    log_rate = 2.0 * np.log(np.abs(1.0 - lr * lam) + 1e-300)

    def q(t: float) -> float:
        return 0.5 * float(np.sum(lam * c2 * np.exp(np.minimum(t * log_rate, 700.0))))

    if q(0) <= -drop:
        return 0.0
    if q(max_iters) > -drop:
        return float("inf")
    lo, hi = 0, max_iters
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if q(mid) <= -drop else (mid, hi)
    return float(hi)


def balanced_factorisation(spec: NetworkSpec, target: np.ndarray) -> list[np.ndarray]:
    """Weights of a linear network without skips whose end-to-end map is ``target`` (d_y, D), balanced.

    With target = U S Vᵀ (rank r ≤ N), the effective matrices A_ℓ = a_ℓ W_ℓ are A_1 = S^{1/L} Vᵀ,
    A_ℓ = S^{1/L} (hidden), A_L = U S^{1/L}, padded with zeros to width N, so A_{ℓ+1}ᵀA_{ℓ+1} = A_ℓA_ℓᵀ:
    the zero-residual minimum that gradient flow from small initialisation approaches (the balance
    W_{ℓ+1}ᵀW_{ℓ+1} − W_ℓW_ℓᵀ is conserved by gradient flow on the loss).
    """
    _require_linear(spec)
    if spec.skip:
        raise SpecError("balanced_factorisation needs skip=False")
    u, s, vt = np.linalg.svd(target, full_matrices=False)
    r = min(len(s), spec.width)
    root = s[:r] ** (1.0 / spec.depth)
    shapes, a = spec.weight_shapes(), spec.scalings()
    eff = [np.zeros(shape) for shape in shapes]
    eff[0][:r] = root[:, None] * vt[:r]
    for l in range(1, spec.depth - 1):
        eff[l][np.arange(r), np.arange(r)] = root
    eff[-1][:, :r] = u[:, :r] * root[None, :]
    return [e / scale for e, scale in zip(eff, a)]


def gauss_newton_top_eigenvalue(spec: NetworkSpec, weights: list[np.ndarray], x: np.ndarray, *,
                                iters: int = 200, seed: int = 0) -> float:
    """λ_max of the Gauss–Newton matrix (1/B) JᵀJ of the MSE loss (its Hessian where the residual is 0).

    Power iteration with exact J v (:func:`pchw.oracle.feedforward_jvp`) and Jᵀu (backprop); gradient
    descent on the loss is stable near such a point only for lr < 2 / λ_max (the edge of stability).
    """
    from . import oracle

    _, out = oracle.feedforward(spec, weights, x)
    rng = np.random.default_rng(seed)
    v = [rng.standard_normal(w.shape) for w in weights]
    lam = 0.0
    for _ in range(iters):
        norm = float(np.sqrt(sum(np.sum(t * t) for t in v)))
        v = [t / norm for t in v]
        jv = oracle.feedforward_jvp(spec, weights, x, v)
        gv = oracle.mse_weight_grad(spec, weights, x, out - jv)  # (1/B) Jᵀ(J v)
        new = float(sum(np.sum(a * b) for a, b in zip(gv, v)))
        v = gv
        if abs(new - lam) <= 1e-10 * abs(new):
            return new
        lam = new
    return lam


def relu_origin_escape_iterations(spec: NetworkSpec, y: np.ndarray, w_out: np.ndarray, active: np.ndarray, *,
                                  lr: float, drop: float, max_iters: int) -> float:
    """Iterations of gradient descent to lower F* by ``drop`` on its second-order model at the origin, ReLU.

    For a ReLU network without skips and L ≥ 3, near W = 0 the top-layer error pulls each unit of the
    last hidden layer to z_{L−1,j} ≈ a_L w_jᵀ y (w_j: column j of W_L) where w_jᵀ y > 0 — but only if the
    unit sits on the positive side of its kink: an inactive unit receives no gradient from above, so
    the tiny lower-layer terms that set its sign decide (``active``, (B, N), e.g. read off the
    inference equilibrium at the initial weights). Hence
        F* ≈ F*(0) − ½ a_L² (1/B) Σ_b Σ_j active_bj relu(w_jᵀ y_b)²,
    piecewise quadratic: each unit's curvature is that of Σ_yy restricted to the samples it serves
    (about a quarter of λ_max(Σ_yy) for symmetric data and half the units active, against the linear
    network's full λ_max). Gradient descent on this model from ``w_out`` (W_L, (d_y, N)), with the
    pattern held; ∞ if not within ``max_iters``.
    """
    if spec.act is not Activation.RELU or spec.skip or spec.depth < 3:
        raise SpecError("relu_origin_escape_iterations needs act='relu', skip=False and depth >= 3")
    a_out, batch = spec.scalings()[-1], y.shape[0]
    mask = np.asarray(active, dtype=float)
    w = np.array(w_out, dtype=float)
    for t in range(max_iters + 1):
        served = mask * np.maximum(y @ w, 0.0)  # (B, N)
        if 0.5 * a_out ** 2 * float(np.sum(served * served)) / batch >= drop:
            return float(t)
        w = w + lr * a_out ** 2 * y.T @ served / batch  # −∇ of −½ a_L² mean Σ active relu(·)²
    return float("inf")
