"""Torch reference of the residual PC network (μPC or SP) with hand-written gradients.

The N×N hidden-to-hidden weights W_2..W_{L−1} are stacked into one (H−1, N, N) tensor and the
hidden activities into one (H, B, N) tensor, so every inference step is two batched matmuls
(predictions and feedback) plus a few elementwise passes — no autograd and no Python loop
over layers. Autograd is used only by the backprop baseline and, in tests, to prove these
gradients. Same maths and conventions as :mod:`pchw.oracle` (row vectors, W (out, in)).

Every matrix product goes through :class:`~models.precision.Matmuls`, which gives its
operands bf16 precision under ``Precision.BFLOAT16`` (state stays fp32). Every kernel used
here gives the same bits for any intra-op thread count (tests/test_threads.py): the thread
governor may change that count mid-run without changing a result.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from pchw.spec import Activation, NetworkSpec, check_weights, init_weights

from .precision import Matmuls, Operand, Precision

_relu_mask_ = torch.ops.aten.threshold_backward.grad_input  # g ← g ⊙ [z > 0], in place


def _rows(operand: Operand, index) -> Operand:
    """``operand[index]`` of a tensor or of each term of a split operand."""
    return tuple(t[index] for t in operand) if isinstance(operand, tuple) else operand[index]


def torch_dtype(name: str) -> torch.dtype:
    """Storage dtype of a ``--dtype`` name (bfloat16 stores in float32)."""
    return Precision(name).storage


class PCNet(torch.nn.Module):
    """Residual MLP ``spec`` with PC inference and learning rules.

    Parameters: ``w_in`` (N, D), ``w_hid`` (H−1, N, N), ``w_out`` (d_y, N), stored in
    ``precision.storage``.
    """

    def __init__(
        self,
        spec: NetworkSpec,
        *,
        weights: list[np.ndarray] | None = None,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
        precision: Precision | str | None = None,
        device: str | torch.device = "cpu",
    ):
        super().__init__()
        self.spec = spec
        if precision is None:
            precision = Precision.FLOAT64 if dtype == torch.float64 else Precision.FLOAT32
        self.precision = Precision(precision)
        device = torch.device(device)
        self.matmuls = Matmuls(self.precision, device)
        if weights is None:
            weights = init_weights(spec, seed=seed)  # numpy float64: identical on every device
        check_weights(spec, weights)
        n = spec.width
        storage = self.precision.storage

        def param(a: np.ndarray) -> torch.nn.Parameter:
            return torch.nn.Parameter(torch.as_tensor(np.asarray(a), dtype=storage, device=device))

        self.w_in = param(weights[0])
        hid = np.stack(weights[1:-1]) if spec.depth > 2 else np.zeros((0, n, n))
        self.w_hid = param(hid)
        self.w_out = param(weights[-1])
        a = spec.scalings()
        self.a_in, self.a_hid, self.a_out = a[0], (a[1] if spec.depth > 2 else 0.0), a[-1]
        self._operands: tuple[torch.Tensor, ...] | None = None

    # -- conversions -------------------------------------------------------------------------
    def numpy_weights(self) -> list[np.ndarray]:
        """W_1..W_L as float64 numpy arrays (the hand-over format to the simulators)."""
        with torch.no_grad():
            hid = [w.detach().cpu().double().numpy() for w in self.w_hid]
            return [self.w_in.detach().cpu().double().numpy(), *hid, self.w_out.detach().cpu().double().numpy()]

    def operand_weights(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(W_in, W_hid, W_out) as matmul operands: the parameters themselves in fp32/fp64, their
        bf16 roundings otherwise — made once inside :meth:`weights_fixed`, else on every call."""
        if self._operands is not None:
            return self._operands
        with torch.no_grad():
            return tuple(self.matmuls.operand(p) for p in (self.w_in, self.w_hid, self.w_out))

    @contextlib.contextmanager
    def weights_fixed(self):
        """A scope in which the weights do not change (one learning step's inference and
        gradients), so that their matmul operands are made once. Not keyed on the tensors'
        version counters: fused optimisers update parameters without bumping them."""
        self._operands = None
        self._operands = self.operand_weights()
        try:
            yield self
        finally:
            self._operands = None

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
        linear = self.matmuls.linear
        z = self.a_in * linear(x, self.w_in)
        for w in self.w_hid:
            mu = self.a_hid * linear(self.phi(z), w)
            z = z + mu if self.spec.skip else mu
        return self.a_out * linear(self.phi(z), self.w_out)

    @torch.no_grad()
    def feedforward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Activities at the feedforward pass: (z (H, B, N), output (B, d_y))."""
        w_in, w_hid, w_out = self.operand_weights()
        h, b = self.spec.n_hidden, x.shape[0]
        z = torch.empty((h, b, self.spec.width), dtype=self.precision.storage, device=x.device)
        self._input_layer(x, w_in, out=z[0])
        for l, w in enumerate(w_hid):
            self._hidden_layer(z[l], w, out=z[l + 1])
        return z, self._output_layer(z[-1], w_out)

    def _input_layer(self, x: torch.Tensor, w_in: torch.Tensor, *, out: torch.Tensor | None = None) -> torch.Tensor:
        """z_1 = a_1 x W_1ᵀ (into ``out`` when given)."""
        mm = self.matmuls
        return mm.mm(mm.split(x), w_in.T, out=out).mul_(self.a_in)

    def _hidden_layer(self, z: torch.Tensor, w: torch.Tensor, *, out: torch.Tensor) -> torch.Tensor:
        """z_{ℓ+1} = z_ℓ + a φ(z_ℓ) Wᵀ (skips) or a φ(z_ℓ) Wᵀ, into ``out`` (which may be ``z``)."""
        mm = self.matmuls
        mu = mm.mm(mm.split(self.phi(z)), w.T)
        if self.spec.skip:
            return torch.add(z, mu, alpha=self.a_hid, out=out)
        return torch.mul(mu, self.a_hid, out=out)

    def _output_layer(self, z: torch.Tensor, w_out: torch.Tensor) -> torch.Tensor:
        """a_L φ(z_H) W_Lᵀ, (B, d_y)."""
        mm = self.matmuls
        return self.a_out * mm.mm(mm.split(self.phi(z)), w_out.T)

    # -- energy and gradients ------------------------------------------------------------------
    def errors(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(ε_1..ε_H stacked (H, B, N), ε_L (B, d_y)); differentiable in z and, at fp32/fp64,
        in the weights."""
        mm = self.matmuls
        w_in, w_hid, w_out = self.operand_weights()
        phz = mm.split(self.phi(z))  # predictions: two-term operands (models.precision)
        first = z[:1] - (self.a_in * mm.mm(mm.split(x), w_in.T))[None]
        if self.spec.depth > 2:
            mu = self.a_hid * mm.bmm(_rows(phz, slice(None, -1)), w_hid.transpose(1, 2))
            if self.spec.skip:
                mu = mu + z[:-1]
            eps = torch.cat([first, z[1:] - mu])
        else:
            eps = first
        return eps, y - self.a_out * mm.mm(_rows(phz, -1), w_out.T)

    @staticmethod
    def energy(eps: torch.Tensor, eps_out: torch.Tensor, batch: int) -> torch.Tensor:
        """F = (1/2B) Σ (‖ε_hidden‖² + ‖ε_L‖²). Summed per sample first: a reduction whose
        order does not depend on the thread count."""
        return 0.5 * (eps.pow(2).sum(dim=-1).sum() + eps_out.pow(2).sum()) / batch

    def free_energy(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """F at activities ``z``, differentiable (autograd tests use it)."""
        return self.energy(*self.errors(x, y, z), x.shape[0])

    @torch.no_grad()
    def activity_grad(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """∇_z F, (H, B, N): (1/B)[ε_ℓ − φ'(z_ℓ) ⊙ a_{ℓ+1} ε_{ℓ+1} W_{ℓ+1} − ε_{ℓ+1}·skip]."""
        mm = self.matmuls
        _, w_hid, w_out = self.operand_weights()
        eps, eps_out = self.errors(x, y, z)
        fb = torch.empty_like(z)
        if self.spec.depth > 2:
            mm.bmm(mm.operand(eps[1:]), w_hid, out=fb[:-1]).mul_(self.a_hid)
        mm.mm(mm.operand(eps_out), w_out, out=fb[-1]).mul_(self.a_out)
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
        mm = self.matmuls
        b = x.shape[0]
        eps, eps_out = self.errors(x, y, z)
        phz = mm.operand(self.phi(z))
        eps_op, eps_out_op = mm.operand(eps), mm.operand(eps_out)
        g_in = mm.mm(eps_op[0].T, mm.operand(x)).mul_(-self.a_in / b)
        g_hid = mm.bmm(eps_op[1:].transpose(1, 2), phz[:-1]).mul_(-self.a_hid / b)
        # (φᵀ ε)ᵀ rather than εᵀ φ: with d_y rows the latter's GEMM splits its sum by thread count
        g_out = mm.mm(phz[-1].T, eps_out_op).T.contiguous().mul_(-self.a_out / b)
        return self.energy(eps, eps_out, b), (g_in, g_hid, g_out)

    # -- inference -----------------------------------------------------------------------------
    @torch.no_grad()
    def inference(
        self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, *, n_steps: int, activity_lr: float
    ) -> torch.Tensor:
        """``n_steps`` of z ← z − β ∇_z F (batch-mean F), in place on ``z``; returns ``z``.

        The same arithmetic as :meth:`activity_grad`, in ten kernels per step with buffers and
        views made once: the activities live in rows 1..H of an (H+1, B, N) buffer whose row 0
        holds the clamped input's prediction μ_1, so with skips one subtraction gives every
        z_ℓ − z_{ℓ−1} (and ε_1), which the prediction GEMM then accumulates into; the feedback
        GEMMs scale in their epilogue; φ' masks the feedback in place; z takes three updates.
        """
        spec, mm = self.spec, self.matmuls
        deep, skip = spec.depth > 2, spec.skip and spec.depth > 2
        c = activity_lr / x.shape[0]
        w_in, w_hid, w_out = self.operand_weights()
        w_hid_t, w_out_t = w_hid.transpose(1, 2), w_out.T
        padded = torch.empty((z.shape[0] + 1, *z.shape[1:]), dtype=z.dtype, device=z.device)
        mu_first = mm.mm(mm.split(x), w_in.T, out=padded[0]).mul_(self.a_in)  # constant: x is clamped
        act, prev = padded[1:].copy_(z), padded[:-1]
        phz, eps, fb = torch.empty_like(z), torch.empty_like(z), torch.empty_like(z)
        eps_hid, fb_hid, fb_last, act_upper = eps[1:], fb[:-1], fb[-1], act[:-1]
        eps_out = torch.empty_like(y)
        eps_rounded = torch.empty_like(eps_hid) if mm.emulated else None
        split_scratch = mm.split_scratch(phz)
        relu = spec.act is Activation.RELU
        for _ in range(n_steps):
            if relu:
                torch.clamp_min(act, 0.0, out=phz)
            else:
                phz.copy_(self.phi(act))
            phz_op = mm.split(phz, scratch=split_scratch)  # the predictions' operand
            if skip:  # ε_ℓ = z_ℓ − z_{ℓ−1} − a φ(z_{ℓ−1}) W_ℓᵀ: one pass, then the GEMM accumulates
                torch.sub(act, prev, out=eps)
            else:
                torch.sub(act[0], mu_first, out=eps[0])
                eps_hid.copy_(act[1:])
            if deep:
                mm.add_bmm_(eps_hid, _rows(phz_op, slice(None, -1)), w_hid_t, alpha=-self.a_hid)
                mm.bmm(mm.operand(eps_hid, buffer=eps_rounded), w_hid, out=fb_hid, alpha=self.a_hid)
            mm.addmm(y, _rows(phz_op, -1), w_out_t, alpha=-self.a_out, out=eps_out)
            mm.mm(mm.operand(eps_out), w_out, out=fb_last, alpha=self.a_out)
            if relu:  # fb ← φ'(z) ⊙ fb; relu(z) > 0 exactly where z > 0
                _relu_mask_(fb, phz, 0.0, grad_input=fb)
            elif spec.act is not Activation.LINEAR:
                fb.mul_(self.dphi(act))
            act.sub_(eps, alpha=c)
            act.add_(fb, alpha=c)
            if skip:
                act_upper.add_(eps_hid, alpha=c)
        return z.copy_(act)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, *, chunk: int | None = None) -> torch.Tensor:
        """Feedforward outputs (B, d_y) for a large input set: :meth:`feedforward`'s output with the
        same kernels, layer by layer, keeping one layer's activities instead of all H.

        Rows go in chunks of ``chunk``: by default 2048 on a CPU (a chunk's activities stay in
        cache) and the whole set on a GPU, where every chunk costs H launches per kernel (one
        10,000-image evaluation at depth 129 was ~2,600 launches in chunks of 2048)."""
        if chunk is None:
            chunk = 2048 if x.device.type == "cpu" else max(1, x.shape[0])
        w_in, w_hid, w_out = self.operand_weights()
        outputs = []
        for i in range(0, x.shape[0], chunk):
            z = self._input_layer(x[i : i + chunk], w_in)
            for w in w_hid:
                z = self._hidden_layer(z, w, out=z)
            outputs.append(self._output_layer(z, w_out))
        return torch.cat(outputs)

    @torch.no_grad()
    def accuracy(self, x: torch.Tensor, labels: torch.Tensor) -> float:
        """Test accuracy of the feedforward pass (argmax), in [0, 1]."""
        return float((self.predict(x).argmax(dim=1) == labels).double().mean())
