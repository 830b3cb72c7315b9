"""Arithmetic precision of the training step: float32, float64, or bfloat16 matrix products.

``bfloat16`` keeps every tensor that accumulates — activities z, errors ε, weights, gradients,
Adam moments — in float32 and gives bf16 precision to the *operands* of the matrix products: a
product of two bf16 numbers is exact in fp32, the sums run in fp32, the result is fp32 (what
bf16 tensor cores compute with an fp32 output). Measured on the trained depth-30 tutorial
network (one MNIST batch, T = 30, against float64), the hidden weight gradient errs by

- 5 % with only the weights rounded to bf16 — a consistent network, the fp32 master weights
  carry the updates;
- 51 % with every operand rounded (cosine 0.89), 39 % of it from rounding φ(z) in the
  *predictions* μ = a φ(z) Wᵀ: near equilibrium ε = z − μ is a small difference of large
  numbers, so μ needs more than bf16's 8 bits of φ;
- 450 % when the products' results are rounded to bf16 too (cosine 0.19).

So the predictions take φ(z) as a two-term bf16 sum, φ ≈ hi + lo (:meth:`Matmuls.split`: 16 of
its 24 bits, two bf16 GEMMs); the feedback ε W and the weight gradients εᵀ φ, whose errors are
relative, take single bf16 operands; results stay fp32.

Two ways to compute these numbers (:class:`Matmuls`):

- **native** (CUDA): operands cast to bf16, products by ``torch.bmm(..., out_dtype=float32)``
  on bf16 tensor cores (run on an H200: μPC depth 129, one MNIST epoch, 94.02 % against fp32's
  94.08 %);
- **emulated** (CPU): torch has no bf16×bf16→fp32 CPU kernel (``aten::bmm.dtype`` is CUDA-only)
  and, without avx512_bf16/AMX, its bf16 GEMM is an unvectorised fallback (~1–3 GFLOP/s here
  against ~60 per core for fp32), so single operands are rounded to bf16 and multiplied in
  fp32, and a split operand becomes the fp32 value hi + lo of its two terms (exact: 16 bits),
  one GEMM for two. The same numbers as native up to the order of fp32 sums, at fp32 speed
  plus the rounding passes. (Leaving the split operand at its full 24 bits instead, as this
  module first did, moved the input weight gradient by 2e-4 of its scale against the H200.)
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


Operand = torch.Tensor | tuple[torch.Tensor, ...]  # one tensor, or the bf16 terms of a split


class Matmuls:
    """The matrix products of one network at one precision on one device.

    Operands pass through :meth:`operand` (identity for fp32/fp64; rounded to or cast to bf16
    otherwise) or :meth:`split`; the products return the storage dtype, and take ``alpha`` in
    the GEMM's epilogue where the kernel has one. ``native`` selects the CUDA kernels.
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

    def split_scratch(self, like: torch.Tensor) -> tuple[torch.Tensor, ...] | None:
        """Buffers for :meth:`split` of tensors shaped like ``like`` in a loop (emulated only; else None)."""
        if not self.emulated:
            return None
        return torch.empty_like(like), torch.empty_like(like), torch.empty_like(like, dtype=torch.bfloat16)

    def split(self, t: torch.Tensor, *, scratch: tuple[torch.Tensor, ...] | None = None) -> Operand:
        """``t`` as the two-term operand of a prediction: (hi, lo) bf16 with hi + lo ≈ t to 16 bits
        (native), the fp32 value hi + lo (emulated; in ``scratch``'s first buffer when given, from
        :meth:`split_scratch`, allocating nothing), ``t`` itself at full precision."""
        if not self.native and not self.emulated:
            return t
        if self.native:
            hi = t.to(torch.bfloat16)
            return hi, (t - hi.to(t.dtype)).to(torch.bfloat16)
        value, rest, half = scratch if scratch is not None else self.split_scratch(t)
        value.copy_(half.copy_(t))  # hi, rounded to nearest even as .to(bfloat16) does
        torch.sub(t, value, out=rest)  # exact
        rest.copy_(half.copy_(rest))  # lo
        return value.add_(rest)  # exact: hi and lo hold 16 significant bits together

    def _product(self, kernel, a: Operand, b: torch.Tensor) -> torch.Tensor:
        """Σ over the terms of ``a`` of kernel(term, b), fp32 out (native only)."""
        terms = a if isinstance(a, tuple) else (a,)
        product = kernel(terms[0], b, out_dtype=torch.float32)
        for term in terms[1:]:
            product.add_(kernel(term, b, out_dtype=torch.float32))
        return product

    def bmm(self, a: Operand, b: torch.Tensor, *, out: torch.Tensor | None = None,
            alpha: float = 1.0) -> torch.Tensor:
        """alpha · a @ b (batched)."""
        if self.native:
            return _scaled(self._product(torch.bmm, a, b), alpha, out)
        if out is None:
            return torch.bmm(a, b) if alpha == 1.0 else torch.bmm(a, b).mul_(alpha)
        if alpha == 1.0:
            return torch.bmm(a, b, out=out)
        return torch.baddbmm(out, a, b, beta=0.0, alpha=alpha, out=out)  # beta=0: out's old values unread

    def mm(self, a: Operand, b: torch.Tensor, *, out: torch.Tensor | None = None,
           alpha: float = 1.0) -> torch.Tensor:
        """alpha · a @ b (2-D)."""
        if self.native:
            return _scaled(self._product(torch.mm, a, b), alpha, out)
        if out is None:
            return torch.mm(a, b) if alpha == 1.0 else torch.mm(a, b).mul_(alpha)
        if alpha == 1.0:
            return torch.mm(a, b, out=out)
        return torch.addmm(out, a, b, beta=0.0, alpha=alpha, out=out)

    def addmm(self, c: torch.Tensor, a: Operand, b: torch.Tensor, *, alpha: float,
              out: torch.Tensor) -> torch.Tensor:
        """out = c + alpha · a @ b."""
        if self.native:
            return _scaled(self._product(torch.mm, a, b), alpha, out).add_(c)
        return torch.addmm(c, a, b, alpha=alpha, out=out)

    def add_bmm_(self, acc: torch.Tensor, a: Operand, b: torch.Tensor, *, alpha: float) -> torch.Tensor:
        """acc += alpha · a @ b, in place (the GEMM accumulates into ``acc`` where it can)."""
        if self.native:
            return acc.add_(self._product(torch.bmm, a, b), alpha=alpha)
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
