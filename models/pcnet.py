"""Torch reference of the residual PC network (μPC or SP) with hand-written gradients.

The N×N hidden-to-hidden weights W_2..W_{L−1} are stacked into one (H−1, N, N) tensor and the
hidden activities into one (H, B, N) tensor, so every inference step is two batched matmuls
(predictions and feedback) plus a few fused elementwise passes — no autograd and no Python
loop over layers. Autograd is used only by the backprop baseline and, in tests, to prove
these gradients. Same maths and conventions as :mod:`pchw.oracle` (row vectors, W (out, in)).
"""

from __future__ import annotations

import numpy as np
import torch

from pchw.spec import Activation, NetworkSpec, check_weights, init_weights

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def torch_dtype(name: str) -> torch.dtype:
    return _DTYPES[name]


class PCNet(torch.nn.Module):
    """Residual MLP ``spec`` with PC inference and learning rules.

    Parameters: ``w_in`` (N, D), ``w_hid`` (H−1, N, N), ``w_out`` (d_y, N).
    """

    def __init__(
        self,
        spec: NetworkSpec,
        *,
        weights: list[np.ndarray] | None = None,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ):
        super().__init__()
        self.spec = spec
        if weights is None:
            weights = init_weights(spec, seed=seed)  # numpy float64: identical on every device
        check_weights(spec, weights)
        n = spec.width

        def param(a: np.ndarray) -> torch.nn.Parameter:
            return torch.nn.Parameter(torch.as_tensor(np.asarray(a), dtype=dtype, device=device))

        self.w_in = param(weights[0])
        hid = np.stack(weights[1:-1]) if spec.depth > 2 else np.zeros((0, n, n))
        self.w_hid = param(hid)
        self.w_out = param(weights[-1])
        a = spec.scalings()
        self.a_in, self.a_hid, self.a_out = a[0], (a[1] if spec.depth > 2 else 0.0), a[-1]

    # -- conversions -------------------------------------------------------------------------
    def numpy_weights(self) -> list[np.ndarray]:
        """W_1..W_L as float64 numpy arrays (the hand-over format to the simulators)."""
        with torch.no_grad():
            hid = [w.detach().cpu().double().numpy() for w in self.w_hid]
            return [self.w_in.detach().cpu().double().numpy(), *hid, self.w_out.detach().cpu().double().numpy()]

    # -- activation ----------------------------------------------------------------------------
    def phi(self, z: torch.Tensor) -> torch.Tensor:
        act = self.spec.act
        if act is Activation.RELU:
            return torch.relu(z)
        if act is Activation.TANH:
            return torch.tanh(z)
        return z

    def dphi(self, z: torch.Tensor) -> torch.Tensor:
        act = self.spec.act
        if act is Activation.RELU:
            return (z > 0).to(z.dtype)
        if act is Activation.TANH:
            return 1.0 - torch.tanh(z) ** 2
        return torch.ones_like(z)

    # -- forward maps ------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable feedforward output (B, d_y) — the backprop baseline's model."""
        z = self.a_in * x @ self.w_in.T
        for w in self.w_hid:
            mu = self.a_hid * self.phi(z) @ w.T
            z = z + mu if self.spec.skip else mu
        return self.a_out * self.phi(z) @ self.w_out.T

    @torch.no_grad()
    def feedforward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Activities at the feedforward pass: (z (H, B, N), output (B, d_y))."""
        h, b = self.spec.n_hidden, x.shape[0]
        z = torch.empty((h, b, self.spec.width), dtype=x.dtype, device=x.device)
        z[0] = self.a_in * x @ self.w_in.T
        for l, w in enumerate(self.w_hid):
            mu = self.a_hid * self.phi(z[l]) @ w.T
            z[l + 1] = z[l] + mu if self.spec.skip else mu
        return z, self.a_out * self.phi(z[-1]) @ self.w_out.T

    # -- energy and gradients ------------------------------------------------------------------
    def errors(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(ε_1..ε_H stacked (H, B, N), ε_L (B, d_y)); differentiable in z and the weights."""
        phz = self.phi(z)
        first = z[:1] - (self.a_in * x @ self.w_in.T)[None]
        if self.spec.depth > 2:
            mu = self.a_hid * torch.bmm(phz[:-1], self.w_hid.transpose(1, 2))
            if self.spec.skip:
                mu = mu + z[:-1]
            eps = torch.cat([first, z[1:] - mu])
        else:
            eps = first
        return eps, y - self.a_out * phz[-1] @ self.w_out.T

    def free_energy(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """F = (1/2B) Σ (‖ε_hidden‖² + ‖ε_L‖²), differentiable (autograd tests use it)."""
        eps, eps_out = self.errors(x, y, z)
        return 0.5 * (eps.pow(2).sum() + eps_out.pow(2).sum()) / x.shape[0]

    @torch.no_grad()
    def activity_grad(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """∇_z F, (H, B, N): (1/B)[ε_ℓ − φ'(z_ℓ) ⊙ a_{ℓ+1} ε_{ℓ+1} W_{ℓ+1} − ε_{ℓ+1}·skip]."""
        eps, eps_out = self.errors(x, y, z)
        fb = torch.empty_like(z)
        if self.spec.depth > 2:
            torch.bmm(eps[1:], self.w_hid, out=fb[:-1])
            fb[:-1] *= self.a_hid
        fb[-1] = self.a_out * eps_out @ self.w_out
        g = eps - self.dphi(z) * fb
        if self.spec.skip and self.spec.depth > 2:
            g[:-1] -= eps[1:]
        return g / x.shape[0]

    @torch.no_grad()
    def weight_grads(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(∇W_in, ∇W_hid, ∇W_out) of F: −(a_ℓ/B) ε_ℓᵀ φ(z_{ℓ−1})."""
        return self.energy_and_weight_grads(x, y, z)[1]

    @torch.no_grad()
    def energy_and_weight_grads(
        self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """F and its weight gradients from one evaluation of the errors (the learning step)."""
        b = x.shape[0]
        eps, eps_out = self.errors(x, y, z)
        phz = self.phi(z)
        energy = 0.5 * (eps.pow(2).sum() + eps_out.pow(2).sum()) / b
        g_in = -(self.a_in / b) * eps[0].T @ x
        g_hid = -(self.a_hid / b) * torch.bmm(eps[1:].transpose(1, 2), phz[:-1])
        g_out = -(self.a_out / b) * eps_out.T @ phz[-1]
        return energy, (g_in, g_hid, g_out)

    # -- inference -----------------------------------------------------------------------------
    @torch.no_grad()
    def inference(
        self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, *, n_steps: int, activity_lr: float
    ) -> torch.Tensor:
        """``n_steps`` of z ← z − β ∇_z F (batch-mean F), in place on ``z``; returns ``z``.

        Buffers are allocated once; each step is two batched matmuls and fused elementwise
        updates, the same arithmetic as :meth:`activity_grad`.
        """
        spec = self.spec
        deep = spec.depth > 2
        c = activity_lr / x.shape[0]
        mu_first = self.a_in * x @ self.w_in.T  # x is clamped: μ_1 is constant during inference
        w_hid_t = self.w_hid.transpose(1, 2)
        phz, eps, fb = torch.empty_like(z), torch.empty_like(z), torch.empty_like(z)
        eps_out = torch.empty_like(y)
        relu = spec.act is Activation.RELU
        deriv = torch.empty_like(z)  # φ'(z), as a float so that addcmul_ needs no conversion
        for _ in range(n_steps):
            if relu:
                torch.clamp_min(z, 0.0, out=phz)
            else:
                phz.copy_(self.phi(z))
            torch.sub(z[0], mu_first, out=eps[0])
            if deep:  # ε_ℓ = z_ℓ − z_{ℓ−1}·skip − a W φ(z_{ℓ−1}): one pass, then the GEMM accumulates in place
                if spec.skip:
                    torch.sub(z[1:], z[:-1], out=eps[1:])
                else:
                    eps[1:].copy_(z[1:])
                eps[1:].baddbmm_(phz[:-1], w_hid_t, alpha=-self.a_hid)
                torch.bmm(eps[1:], self.w_hid, out=fb[:-1])
            torch.addmm(y, phz[-1], self.w_out.T, alpha=-self.a_out, out=eps_out)
            torch.mm(eps_out, self.w_out, out=fb[-1])
            if relu:
                torch.sign(phz, out=deriv)  # relu(z) ≥ 0, so its sign is exactly the mask z > 0
            else:
                deriv.copy_(self.dphi(z))
            z.sub_(eps, alpha=c)
            if deep:  # φ'(z) ⊙ feedback fused into the update
                z[:-1].addcmul_(deriv[:-1], fb[:-1], value=c * self.a_hid)
                if spec.skip:
                    z[:-1].add_(eps[1:], alpha=c)
            z[-1].addcmul_(deriv[-1], fb[-1], value=c * self.a_out)
        return z

    @torch.no_grad()
    def predict(self, x: torch.Tensor, *, chunk: int = 2048) -> torch.Tensor:
        """Feedforward outputs for a large input set, in chunks."""
        return torch.cat([self.feedforward(x[i : i + chunk])[1] for i in range(0, x.shape[0], chunk)])

    @torch.no_grad()
    def accuracy(self, x: torch.Tensor, labels: torch.Tensor) -> float:
        """Test accuracy of the feedforward pass (argmax), in [0, 1]."""
        return float((self.predict(x).argmax(dim=1) == labels).double().mean())
