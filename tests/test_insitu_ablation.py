"""insitu-ablation: groups switch off what they name, rows carry the ledger, the limiter is named."""

from dataclasses import asdict, replace

import pytest

from experiments import insitu_ablation as ab
from pchw.profiles import load_profile, profile_to_toml
from simulators.noise import step_noise

PNG = b"\x89PNG\r\n\x1a\n"


def test_groups_zero_their_fields():
    base = load_profile("analog-rram-clocked")
    assert ab.ablated_profile(base, "none") is base
    off = ab.ablated_profile(base, "output_noise")
    assert off.out_noise_frac == 0 and off.read_noise_frac == base.read_noise_frac
    everything = ab.ablated_profile(base, "all")
    assert not step_noise(everything, dt_s=everything.dt_s, seed=0).active
    assert everything.dw_min_frac == 0 and everything.prog_noise_frac == 0 and everything.up_down_asym == 0
    with pytest.raises(ValueError, match="disable='leak' is not one of: none, converters"):
        ab.ablated_profile(base, "leak")


def test_hard_bounded_points_run_without_zero_shift(tmp_path):
    c = ab.Config(disable="soft_bounds", dataset="synthetic", depth=3, width=16, iters=2, n_steps=6,
                  update_window=2, test_every=2, n_test=64)
    assert ab.run(c)["zero_shift_used"] is False
    assert ab.run(replace(c, disable="cycle_to_cycle"))["zero_shift_used"] is True


def test_a_loud_noise_source_is_named_the_limiter(tmp_path):
    noisy = load_profile("analog-rram-clocked").replace(out_noise_frac=2.0, read_noise_frac=0.0)
    path = tmp_path / "loud.toml"
    path.write_text(profile_to_toml(noisy))
    base = ab.Config(profile=str(path), dataset="synthetic", depth=3, width=16, iters=96, n_steps=30,
                     update_window=10, hidden_lr_mult=100.0, lr_schedule="constant", test_every=32, n_test=256)
    rows = []
    for group in ("none", "output_noise", "converters", "cycle_to_cycle"):
        c = replace(base, disable=group)
        row = ab.run(c)
        row.update({f"p_{k}": v for k, v in asdict(c).items()})
        rows.append(row)
    by = {r["p_disable"]: r for r in rows}
    assert by["output_noise"]["test_acc"] > by["none"]["test_acc"] + 0.1
    assert ab.limiting(rows) == "output_noise"
    for r in rows:
        assert r["energy_j"] > 0 and r["write_pulses"] > 0 and r["iterations"] == 96
        assert r["j_per_example"] == pytest.approx(r["energy_j"] / (96 * 64))
        assert r["zero_shift_used"] is True  # soft-bounded devices in every one of these points
    gains = {s["disable"]: s["gain"] for s in ab.summary(rows)}
    assert gains["output_noise"] == pytest.approx(by["output_noise"]["test_acc"] - by["none"]["test_acc"])
    assert [s["disable"] for s in ab.summary(rows)] == ["none", "converters", "output_noise", "cycle_to_cycle"]
    (png,) = ab.plot(rows, tmp_path / "fig")
    assert png.read_bytes().startswith(PNG)
