"""bfloat16 matmul operands against the float64 oracle, within a derived bound; bf16 training.

The bound (first order in the roundings, exact for each product): a matmul whose two operands
carry relative errors u_a and u_b, summed in fp32, errs by at most (u_a + u_b + u_a u_b) Σ_k
|a_ik||b_kj|. bf16 rounding has u = 2⁻⁸; a split (two-term) operand has under 2⁻¹⁶. The
predictions μ = a φ Wᵀ take a split φ and a rounded W, so the errors ε inherit
E_ℓ = a_ℓ γ_μ |φ(z_{ℓ−1})||W_ℓ|ᵀ (x for ℓ = 1) with γ_μ = u + 2⁻¹⁵; the feedback and the weight
gradients take two rounded operands, γ = 2u + u²:

- ∇W_ℓ: (a_ℓ/B) [(1+u)² E_ℓ + γ |ε_ℓ|]ᵀ |v|, v the layer's input;
- ∇z_ℓ: (1/B) [E_ℓ + φ'(z_ℓ) a_{ℓ+1} ((1+u)² E_{ℓ+1} + γ |ε_{ℓ+1}|) |W_{ℓ+1}| + E_{ℓ+1}·skip];

plus 1e-5 of the gradient's scale for the fp32 arithmetic around the products.
"""

import numpy as np
import pytest
import torch

from models.pcnet import PCNet
from models.precision import Matmuls, Precision, round_to_bf16
from models.steps import adam
from models.training import TrainConfig, train
from pchw import oracle
from pchw.data import synthetic_teacher_student
from pchw.spec import NetworkSpec, init_weights

U = 2.0**-8
GAMMA = 2 * U + U * U
GAMMA_PREDICTION = U + 2.0**-15
FP32_SLACK = 1e-5

CASES = [(act, skip, depth, param) for act in ("relu", "tanh") for skip in (True, False)
         for depth in (2, 3, 6) for param in ("mupc", "sp")]


def _problem(act, skip, depth, param, seed=0):
    spec = NetworkSpec(input_dim=12, width=16, depth=depth, output_dim=4, act=act, skip=skip, param=param)
    weights = init_weights(spec, seed=seed + 1)
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((8, 12)), rng.standard_normal((8, 4))
    zs, _ = oracle.feedforward(spec, weights, x)
    zs = [z + 0.3 * rng.standard_normal(z.shape) for z in zs]
    net = PCNet(spec, weights=weights, precision="bfloat16")
    as32 = [torch.tensor(v, dtype=torch.float32) for v in (x, y, np.stack(zs))]
    return spec, weights, x, y, zs, net, as32


def _errors_and_bounds(spec, weights, x, y, zs):
    """(ε_ℓ, E_ℓ the bound on |Δε_ℓ| from the prediction GEMMs, each layer's input v) for ℓ = 1..L."""
    a = spec.scalings()
    inputs = [x] + [oracle.phi(spec.act, z) for z in zs]
    bounds = [a[l] * GAMMA_PREDICTION * np.abs(inputs[l]) @ np.abs(weights[l]).T for l in range(spec.depth)]
    return oracle.errors(spec, weights, x, y, zs), bounds, inputs


def _within(got, ref, bound):
    excess = np.abs(got - ref) - bound - FP32_SLACK * np.abs(ref).max()
    assert excess.max() <= 0, f"bf16 error exceeds its bound by {excess.max():.3g}"


@pytest.mark.parametrize("act,skip,depth,param", CASES)
def test_bf16_weight_gradients_within_the_rounding_bound(act, skip, depth, param):
    spec, weights, x, y, zs, net, (tx, ty, tz) = _problem(act, skip, depth, param)
    a, b = spec.scalings(), x.shape[0]
    eps, e_bound, inputs = _errors_and_bounds(spec, weights, x, y, zs)
    expected = oracle.weight_grad(spec, weights, x, y, zs)
    g_in, g_hid, g_out = (g.double().numpy() for g in net.weight_grads(tx, ty, tz))
    got = [g_in, *g_hid, g_out]
    for l in range(spec.depth):
        bound = (a[l] / b) * ((1 + U) ** 2 * e_bound[l] + GAMMA * np.abs(eps[l])).T @ np.abs(inputs[l])
        _within(got[l], expected[l], bound)
    rel = max(np.abs(g - e).max() / np.abs(e).max() for g, e in zip(got, expected))
    assert rel > 1e-4, "the products were not rounded to bf16"


@pytest.mark.parametrize("act,skip,depth,param", CASES)
def test_bf16_activity_gradient_within_the_rounding_bound(act, skip, depth, param):
    spec, weights, x, y, zs, net, (tx, ty, tz) = _problem(act, skip, depth, param)
    a, b = spec.scalings(), x.shape[0]
    eps, e_bound, _ = _errors_and_bounds(spec, weights, x, y, zs)
    expected = np.stack(oracle.activity_grad(spec, weights, x, y, zs))
    got = net.activity_grad(tx, ty, tz).double().numpy()
    for l in range(spec.n_hidden):
        feedback = ((1 + U) ** 2 * e_bound[l + 1] + GAMMA * np.abs(eps[l + 1])) @ np.abs(weights[l + 1])
        skip_term = e_bound[l + 1] if spec.skip and l + 1 < spec.n_hidden else 0.0
        bound = (e_bound[l] + oracle.dphi(spec.act, zs[l]) * a[l + 1] * feedback + skip_term) / b
        _within(got[l], expected[l], bound)


def assert_same_up_to_rounding(got: torch.Tensor, want: torch.Tensor, *, max_rel: float) -> None:
    """The same numbers computed in another order: the median element within a few fp32 ulps of the
    tensor's scale, at most 2 % of them past 2⁻¹⁶ of it, none past ``max_rel`` of it (an operand rounding
    that went the other way). An operand left at another precision on one side fails the count: the CPU
    emulation once kept the 16-bit split operand at 24 bits, which moved 11 % of the input weight gradient
    past 2⁻¹⁶ of its scale against the H200 (2e-4 at most)."""
    scale, diff = want.abs().max(), (got - want).abs()
    assert diff.median() <= 1e-6 * scale, (diff.median() / scale).item()
    assert (diff > 2**-16 * scale).double().mean() <= 0.02
    assert diff.max() <= max_rel * scale, (diff.max() / scale).item()


def test_bf16_inference_is_the_activity_gradient_descent():
    """The fast inference loop takes the same steps as −β ∇_z F computed by activity_grad."""
    spec, weights, x, y, zs, net, (tx, ty, tz) = _problem("relu", True, 6, "mupc")
    z = tz.clone()
    for _ in range(3):
        z = z - 0.2 * net.activity_grad(tx, ty, z)
    fast = net.inference(tx, ty, tz.clone(), n_steps=3, activity_lr=0.2)
    # The two sum in different orders; a prediction operand (hi + lo, 16 bits) one fp32 ulp apart can round to
    # the neighbouring 16-bit value, a jump of up to 2⁻¹⁶ relative (measured: 2.7e-6 of the scale)
    assert_same_up_to_rounding(fast, z, max_rel=2**-16)


def test_round_to_bf16_keeps_eight_significant_bits():
    t = torch.tensor([1.0 + 2**-8, 1.0 + 3 * 2**-8, 3.14159265, -1e-3], dtype=torch.float32)
    r = round_to_bf16(t)
    assert r.dtype == torch.float32
    assert r[0] == 1.0 and r[1] == 1.0 + 2**-6  # ties go to even
    assert torch.all(torch.abs(r - t) <= U * torch.abs(t))


def test_precision_keeps_state_in_float32_and_rounds_the_current_weights():
    spec = NetworkSpec(input_dim=12, width=16, depth=4, output_dim=4)
    net = PCNet(spec, precision="bfloat16")
    assert net.w_hid.dtype == torch.float32 and net.matmuls.emulated
    first = net.operand_weights()
    assert torch.equal(first[1], round_to_bf16(net.w_hid.detach())) and not torch.equal(first[1], net.w_hid)
    with net.weights_fixed():
        assert net.operand_weights()[1] is net.operand_weights()[1]  # made once in the scope
    opt = adam(net, 0.1)
    for p in net.parameters():
        p.grad = torch.ones_like(p)
    opt.step()  # fused: changes the weights without bumping their version counters
    assert torch.equal(net.operand_weights()[1], round_to_bf16(net.w_hid.detach()))
    assert not torch.equal(net.operand_weights()[1], first[1])
    assert Matmuls(Precision.FLOAT32, torch.device("cpu")).operand(net.w_hid) is net.w_hid


def test_bf16_backprop_gradient_is_close_to_float64():
    spec, weights, x, y, *_ = _problem("relu", True, 6, "mupc")
    grads = {}
    for precision in ("float64", "bfloat16"):
        net = PCNet(spec, weights=weights, precision=precision)
        dtype = net.w_in.dtype
        out = net(torch.tensor(x, dtype=dtype))
        (0.5 * (torch.tensor(y, dtype=dtype) - out).pow(2).sum() / x.shape[0]).backward()
        grads[precision] = [p.grad.double().numpy() for p in net.parameters()]
    for g16, g64 in zip(grads["bfloat16"], grads["float64"]):
        rel = np.abs(g16 - g64).max() / np.abs(g64).max()
        assert 1e-4 < rel < 0.05, rel  # rounded, and by bf16's few-per-mille per product


@pytest.fixture(scope="module")
def data():
    return synthetic_teacher_student(n_train=4096, n_test=1024, seed=0)


@pytest.mark.parametrize("model", ["mupc", "sp", "bp"])
def test_bf16_training_learns_like_float32(data, model):
    kw = dict(model=model, dataset="synthetic", depth=5, width=64, batch_size=64, n_steps=20, param_lr=0.01,
              epochs=2, test_every=64, device="cpu", seed=0)
    fp32 = train(TrainConfig(**kw), data=data)
    bf16 = train(TrainConfig(**kw, dtype="bfloat16"), data=data)
    assert bf16.net.w_hid.dtype == torch.float32
    assert bf16.test_acc >= 0.85 and abs(bf16.test_acc - fp32.test_acc) <= 0.03, (bf16.test_acc, fp32.test_acc)
    assert not np.array_equal(bf16.weights()[0], fp32.weights()[0])


def test_bf16_resume_is_bit_identical(tmp_path, data):
    kw = dict(dataset="synthetic", depth=5, width=32, batch_size=32, param_lr=0.01, test_every=10, device="cpu",
              dtype="bfloat16")
    straight = train(TrainConfig(**kw, iters=30), data=data)
    train(TrainConfig(**kw, iters=17), data=data, out_dir=tmp_path / "run")
    resumed = train(TrainConfig(**kw, iters=30), data=data, out_dir=tmp_path / "run", resume=True)
    for a, b in zip(straight.weights(), resumed.weights()):
        assert np.array_equal(a, b)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the native bf16 kernels are not run")
def test_cuda_bf16_step_matches_the_cpu_emulation():
    spec, weights, x, y, zs, _, (tx, ty, tz) = _problem("relu", True, 6, "mupc")
    results = []
    for device in ("cpu", "cuda"):
        net = PCNet(spec, weights=weights, precision="bfloat16", device=device)
        assert net.matmuls.native == (device == "cuda")
        z = net.inference(tx.to(device), ty.to(device), tz.clone().to(device), n_steps=5, activity_lr=0.2)
        results.append([z.cpu(), *(g.cpu() for g in net.weight_grads(tx.to(device), ty.to(device), z))])
    for cpu, cuda in zip(*results):  # fp32 sums in another order; a bf16 operand can round the other way (2⁻⁸)
        assert_same_up_to_rounding(cuda, cpu, max_rel=2**-8)


def test_native_bf16_path_types_check_on_the_meta_device():
    """The CUDA kernels' code path run on shape-and-dtype-only tensors: every product gets bf16
    operands and gives fp32, every buffer keeps fp32 (no GPU needed)."""
    spec = NetworkSpec(input_dim=12, width=16, depth=5, output_dim=4)
    net = PCNet(spec, precision="bfloat16", device="meta")
    net.matmuls.native, net.matmuls.emulated = True, False
    x, y = torch.empty(8, 12, device="meta"), torch.empty(8, 4, device="meta")
    z, out = net.feedforward(x)
    assert z.dtype == out.dtype == torch.float32
    z = net.inference(x, y, z, n_steps=2, activity_lr=0.1)
    energy, grads = net.energy_and_weight_grads(x, y, z)
    assert z.dtype == energy.dtype == torch.float32 and z.shape == (4, 8, 16)
    assert [g.dtype for g in grads] == [torch.float32] * 3
    assert [g.shape for g in grads] == [p.shape for p in (net.w_in, net.w_hid, net.w_out)]
    assert net.activity_grad(x, y, z).dtype == torch.float32
    assert all(w.dtype == torch.bfloat16 for w in net.operand_weights())
    assert isinstance(net.matmuls.split(z), tuple)
