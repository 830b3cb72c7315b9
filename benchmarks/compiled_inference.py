"""Is a compiled μPC inference loop faster than pchw's eager one? (issue 16: keep the compiler-free
path as the default unless a compiled one is measured faster.)

Times, in interleaved rounds, T inference steps of a μPC network (fp32, ReLU, skips, batch 64,
width 128) four ways: ``PCNet.inference`` (the eager loop ``pchw train`` runs: ten kernels per
step, GEMMs accumulating into preallocated buffers), the same step written functionally in
eager torch, that function under ``torch.compile`` (inductor: elementwise work fused into
generated C++ or Triton, GEMMs left to the BLAS), and the eager loop's GEMMs with everything
between them compiled into one fused update (``fused elementwise``: the six elementwise passes
of a step become one). Compile time is printed apart. All must agree with ``PCNet.inference`` to
fp32 rounding.

    python benchmarks/compiled_inference.py [--depth 30] [--rounds 3] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout, not an installed copy

from models.pcnet import PCNet  # noqa: E402
from pchw.spec import NetworkSpec  # noqa: E402

D, N, B, D_Y = 784, 128, 64, 10
BETA = 0.5


def functional_step(net: PCNet):
    """One inference step z ← z − (β/B) ∇_z F as a pure function of (z, μ_1, y, W_hid, W_out)."""
    a_hid, a_out, c = net.a_hid, net.a_out, BETA / B

    def step(z, mu_first, y, w_hid, w_out):
        phz = torch.relu(z)
        eps = z - torch.cat([mu_first[None], z[:-1]])  # skips: ε_ℓ = z_ℓ − z_{ℓ−1} − a φ(z_{ℓ−1}) W_ℓᵀ
        eps_hid = eps[1:] - a_hid * torch.bmm(phz[:-1], w_hid.transpose(1, 2))
        eps_out = y - a_out * phz[-1] @ w_out.T
        fb = torch.cat([a_hid * torch.bmm(eps_hid, w_hid), (a_out * eps_out @ w_out)[None]])
        fb = torch.where(z > 0, fb, 0.0)
        upper = torch.cat([eps_hid, torch.zeros_like(z[:1])])  # −∂F/∂z_ℓ of the next layer's skip term
        return z - c * torch.cat([eps[:1], eps_hid]) + c * fb + c * upper

    return step


def fused_update(act, eps, fb, mu_first, c: float):
    """After a step's GEMMs: z += c(φ'(z)⊙fb − ε + ε_next), then φ(z) into ``fb`` and the next
    step's z_ℓ − z_{ℓ−1} into ``eps`` (in place; inductor fuses it into one pass)."""
    upper = torch.cat([eps[1:], torch.zeros_like(eps[:1])])
    new = act + c * (torch.where(act > 0, fb, 0.0) - eps + upper)
    act.copy_(new)
    eps.copy_(new - torch.cat([mu_first[None], new[:-1]]))
    fb.copy_(torch.relu(new))


def gemm_loop(net: PCNet, update, x, y, z0, mu_first, t: int) -> torch.Tensor:
    """PCNet.inference's GEMMs (accumulating into the error buffer) around ``update``."""
    w_hid, w_out = net.w_hid.detach(), net.w_out.detach()
    act = z0.clone()
    phz, fb, eps, eps_out = torch.relu(act), torch.empty_like(act), torch.empty_like(act), torch.empty_like(y)
    eps.copy_(act - torch.cat([mu_first[None], act[:-1]]))
    for _ in range(t):
        eps[1:].baddbmm_(phz[:-1], w_hid.transpose(1, 2), alpha=-net.a_hid)
        torch.baddbmm(fb[:-1], eps[1:], w_hid, beta=0.0, alpha=net.a_hid, out=fb[:-1])
        torch.addmm(y, phz[-1], w_out.T, alpha=-net.a_out, out=eps_out)
        torch.addmm(fb[-1], eps_out, w_out, beta=0.0, alpha=net.a_out, out=fb[-1])
        update(act, eps, fb, mu_first, BETA / B)
        phz, fb = fb, phz  # fb now holds φ(z)
    return act


def median_ms(fn, device: torch.device, n: int = 15) -> float:
    times = []
    for i in range(n + 2):
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 2:  # two warm-up calls
            times.append(time.perf_counter() - t0)
    return 1e3 * sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depth", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device, t = torch.device(args.device), args.depth
    spec = NetworkSpec(input_dim=D, width=N, depth=args.depth, output_dim=D_Y)
    net = PCNet(spec, seed=0, device=device)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(B, D, generator=gen).to(device)
    y = torch.nn.functional.one_hot(torch.randint(0, D_Y, (B,), generator=gen), D_Y).float().to(device)
    with torch.no_grad():
        z0, _ = net.feedforward(x)
        w_in, w_hid, w_out = (w.detach() for w in (net.w_in, net.w_hid, net.w_out))
        mu_first = net.a_in * x @ w_in.T
    step = functional_step(net)

    def loop(fn):
        z = z0.clone()
        with torch.no_grad():
            for _ in range(t):
                z = fn(z, mu_first, y, w_hid, w_out)
        return z

    def eager():
        with torch.no_grad():
            return net.inference(x, y, z0.clone(), n_steps=t, activity_lr=BETA)

    def fused():
        with torch.no_grad():
            return gemm_loop(net, compiled_update, x, y, z0, mu_first, t)

    start = time.perf_counter()
    compiled = torch.compile(step, dynamic=False)
    ref, first = eager(), loop(compiled)
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    compiled_update = torch.compile(fused_update, dynamic=False)
    first_fused = fused()
    fused_compile_s = time.perf_counter() - start
    scale = ref.abs().max().item()
    for name, out in (("functional eager", loop(step)), ("compiled", first), ("fused elementwise", first_fused)):
        print(f"{name} vs PCNet.inference: max |Δz| = {(out - ref).abs().max().item() / scale:.1e} of the scale")
    print(f"depth {args.depth}, T = {t}, batch {B}, width {N}, {device}, {torch.get_num_threads()} threads; "
          f"torch.compile's first call: {compile_s:.1f} s (the step), {fused_compile_s:.1f} s (the fused update)")
    for r in range(args.rounds):
        times = [median_ms(fn, device) for fn in (eager, lambda: loop(step), lambda: loop(compiled), fused)]
        print(f"round {r}: PCNet.inference {times[0]:.1f} ms, functional eager {times[1]:.1f} ms, "
              f"compiled {times[2]:.1f} ms, fused elementwise {times[3]:.1f} ms (÷ PCNet.inference: compiled "
              f"{times[2] / times[0]:.2f}, fused {times[3] / times[0]:.2f})")


if __name__ == "__main__":
    main()
