"""The PC learning step, eager or replayed as a CUDA graph.

Why a graph: at the widths pchw trains (N = 128, batch 64) one inference step is ten small
kernels, and the GPU finishes each before the CPU has dispatched the next. Measured on an H200
(torch 2.11, eager): μPC depth 129, T = 128, one step 41 ms, 0.17 of the rate of the step's
own batched matmuls — launch-bound. A CUDA graph records the step's kernels once and replays
them with one launch per step, so the GPU runs them back to back.

What is captured: :func:`~models.steps.pc_step` (feedforward initialisation, T inference
steps, ∇_W F) on static input buffers. The optimiser step stays eager (fused Adam: one kernel
per parameter) and updates the weights in place, so every replay reads the current weights;
under bf16 the replay also recasts them to their bf16 operands. A replay runs the same kernels
in the same order as the eager step, so it gives the eager step's numbers
(tests/test_cuda_graph.py, on a CUDA machine).
"""

from __future__ import annotations

import torch

from .pcnet import PCNet
from .steps import pc_step

WARMUP_CALLS = 2  # eager calls on a side stream before capture: cuBLAS handles, workspaces, allocator blocks


class PCStep:
    """``step(x, y) -> (train loss at the feedforward pass, F at the final activities)``, with
    ∇_W F in the parameters' ``.grad`` — :func:`~models.steps.pc_step` with fixed options.

    With ``graph=True`` on a CUDA network the step is captured at its first call (for that call's
    batch shape) and replayed afterwards; elsewhere ``graph`` has no effect and the step runs
    eagerly. ``graphed`` says which.
    """

    def __init__(self, net: PCNet, *, n_steps: int, activity_lr: float, graph: bool = False):
        self.net = net
        self.n_steps, self.activity_lr = n_steps, activity_lr
        self.graphed = bool(graph) and net.w_in.device.type == "cuda"
        self._graph: torch.cuda.CUDAGraph | None = None
        self._inputs: tuple[torch.Tensor, torch.Tensor] | None = None
        self._outputs: tuple[torch.Tensor, ...] = ()

    def _eager(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return pc_step(self.net, x, y, n_steps=self.n_steps, activity_lr=self.activity_lr)

    def _params(self) -> tuple[torch.nn.Parameter, ...]:
        return self.net.w_in, self.net.w_hid, self.net.w_out

    def _capture(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Record the step on static copies of ``x`` and ``y`` (recording runs no kernel)."""
        inputs = (x.clone(), y.clone())
        side = torch.cuda.Stream(device=x.device)
        side.wait_stream(torch.cuda.current_stream(x.device))
        with torch.cuda.stream(side):
            for _ in range(WARMUP_CALLS):  # sets .grad only: the weights are untouched
                self._eager(*inputs)
        torch.cuda.current_stream(x.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            loss, free_energy = self._eager(*inputs)
        self._graph, self._inputs = graph, inputs
        self._outputs = (loss, free_energy, *(p.grad for p in self._params()))

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.graphed:
            return self._eager(x, y)
        if self._graph is None:
            self._capture(x, y)
        static_x, static_y = self._inputs
        if x.shape != static_x.shape or y.shape != static_y.shape:
            raise ValueError(f"a graphed PC step was captured for inputs {tuple(static_x.shape)} and "
                             f"{tuple(static_y.shape)}, not {tuple(x.shape)} and {tuple(y.shape)}")
        static_x.copy_(x)
        static_y.copy_(y)
        self._graph.replay()
        loss, free_energy, *grads = self._outputs
        for p, g in zip(self._params(), grads):  # the graph's own buffers, rewritten by every replay
            p.grad = g
        return loss.clone(), free_energy.clone()  # the static outputs change at the next replay
