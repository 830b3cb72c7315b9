"""Arithmetic precision of the training step: float32, float64, or bfloat16 matrix products.

``bfloat16`` keeps every tensor that accumulates — activities z, errors ε, weights, gradients,
Adam moments — in float32, and gives bf16 precision only to the *operands* of the matrix
products: a product of two bf16 numbers is exact in fp32, the sums run in fp32, the result is
fp32. That is what bf16 tensor cores compute with an fp32 output. The PC errors
ε_ℓ = z_ℓ − z_{ℓ−1} − a φ(z_{ℓ−1}) W_ℓᵀ are differences of nearly equal numbers near
equilibrium, so the products' results stay fp32 rather than being rounded to bf16.

Two ways to compute the same numbers (:class:`Matmuls`):

- **native** (CUDA): operands cast to bf16, products by ``torch.bmm(..., out_dtype=float32)``
  (bf16 tensor cores, fp32 output);
- **emulated** (CPU): torch has no bf16×bf16→fp32 CPU kernel (``aten::bmm.dtype`` is CUDA-only)
  and, without avx512_bf16/AMX, its bf16 GEMM runs an unvectorised fallback (~3 GFLOP/s here
  against ~60 for fp32), so the operands are rounded to bf16 and multiplied in fp32: the same
  numbers up to the order of the fp32 sums, at fp32 speed plus the rounding passes.
"""

from __future__ import annotations

import enum

import torch


class Precision(enum.Enum):
    """``--dtype``: the storage type of every tensor, and the precision of matmul operands."""

    FLOAT32 = "float32"
    FLOAT64 = "float64"
    BFLOAT16 = "bfloat16"

    @property
    def storage(self) -> torch.dtype:
        """dtype of weights, activities, errors and optimiser state."""
        return torch.float64 if self is Precision.FLOAT64 else torch.float32

    @property
    def reduced(self) -> bool:
        return self is Precision.BFLOAT16


def round_to_bf16(t: torch.Tensor) -> torch.Tensor:
    """``t`` rounded to the nearest bfloat16 (ties to even), kept in ``t``'s dtype (differentiable)."""
    return t.to(torch.bfloat16).to(t.dtype)


class Matmuls:
    """The matrix products of one network at one precision on one device.

    Operands pass through :meth:`operand` (identity for fp32/fp64; bf16 rounding or casting
    otherwise) and the products return the storage dtype. ``native`` selects the CUDA kernels.
    """

    def __init__(self, precision: Precision, device: torch.device):
        self.precision = precision
        self.native = precision.reduced and device.type == "cuda"
        self.emulated = precision.reduced and not self.native

    def operand(self, t: torch.Tensor, *, buffer: torch.Tensor | None = None) -> torch.Tensor:
        """``t`` as a matmul operand; ``buffer`` (same shape) receives it when given (emulated)."""
        if self.native:
            return t.to(torch.bfloat16)
        if not self.emulated:
            return t
        if buffer is None:
            return round_to_bf16(t)
        return buffer.copy_(t.to(torch.bfloat16))

    def bmm(self, a: torch.Tensor, b: torch.Tensor, *, out: torch.Tensor | None = None,
            alpha: float = 1.0) -> torch.Tensor:
        """alpha · a @ b for operands from :meth:`operand` (the scale in the GEMM's epilogue)."""
        if self.native:
            product = torch.bmm(a, b, out_dtype=torch.float32)
            return _scaled(product, alpha, out)
        if out is None:
            return torch.bmm(a, b) if alpha == 1.0 else torch.bmm(a, b).mul_(alpha)
        if alpha == 1.0:
            return torch.bmm(a, b, out=out)
        return torch.baddbmm(out, a, b, beta=0.0, alpha=alpha, out=out)  # beta=0: out's old values unread

    def mm(self, a: torch.Tensor, b: torch.Tensor, *, out: torch.Tensor | None = None,
           alpha: float = 1.0) -> torch.Tensor:
        """alpha · a @ b for 2-D operands from :meth:`operand`."""
        if self.native:
            return _scaled(torch.mm(a, b, out_dtype=torch.float32), alpha, out)
        if out is None:
            return torch.mm(a, b) if alpha == 1.0 else torch.mm(a, b).mul_(alpha)
        if alpha == 1.0:
            return torch.mm(a, b, out=out)
        return torch.addmm(out, a, b, beta=0.0, alpha=alpha, out=out)  # beta=0: out's old values unread

    def addmm(self, c: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *, alpha: float,
              out: torch.Tensor) -> torch.Tensor:
        """out = c + alpha · a @ b."""
        if self.native:
            return _scaled(torch.mm(a, b, out_dtype=torch.float32), alpha, out).add_(c)
        return torch.addmm(c, a, b, alpha=alpha, out=out)

    def add_bmm_(self, acc: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *, alpha: float) -> torch.Tensor:
        """acc += alpha · a @ b, in place (the GEMM accumulates into ``acc`` where it can)."""
        if self.native:
            return acc.add_(torch.bmm(a, b, out_dtype=torch.float32), alpha=alpha)
        return acc.baddbmm_(a, b, alpha=alpha)

    def linear(self, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """h @ wᵀ with autograd (the backprop baseline); bf16 operands *and* result.

        Backprop in bf16 is mixed-precision training as ``torch.autocast`` does it (bf16
        products, fp32 master weights): the CUDA path runs under autocast, and the emulated
        path rounds operands and result to bf16 likewise, so both give the same numbers.
        """
        w_t = w.T.contiguous()  # a contiguous wᵀ: its gradient is one thread-count-invariant GEMM
        if self.emulated:
            return round_to_bf16(round_to_bf16(h) @ round_to_bf16(w_t))
        return h @ w_t


def _scaled(product: torch.Tensor, alpha: float, out: torch.Tensor | None) -> torch.Tensor:
    if out is None:
        return product if alpha == 1.0 else product.mul_(alpha)
    return torch.mul(product, alpha, out=out)
