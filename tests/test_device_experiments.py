"""The device-realism and noise-correlation experiments on a small synthetic network."""

from dataclasses import asdict, fields

import pytest

from experiments import device_realism, noise_correlation
from pchw.profiles import load_profile

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PCHW_CACHE", str(tmp_path / "cache"))


def test_each_effect_switches_on_exactly_its_fields():
    base, realistic = load_profile(device_realism.BASE), load_profile(device_realism.REALISTIC)
    numeric = [f.name for f in fields(base) if f.name not in ("name", "description", "sources")]
    for effect, names in device_realism.EFFECTS.items():
        p = device_realism.effect_profile(effect)
        changed = {n for n in numeric if getattr(p, n) != getattr(base, n)}
        if names is None:
            assert p == realistic
        else:
            assert changed == {n for n in names if getattr(realistic, n) != getattr(base, n)}, effect
            assert all(p.sources[n] == realistic.sources[n] for n in names if n in realistic.sources)


def _row(module, config):
    return module.run(config) | {f"p_{k}": v for k, v in asdict(config).items()}


def test_device_realism_deploys_each_effect_and_summarises_over_seeds(tmp_path):
    small = dict(dataset="synthetic", depth=3, width=16, epochs=2, n_test=256)
    rows = [_row(device_realism, device_realism.Config(effect=e, seed=s, **small))
            for e in ("none", "ir-drop", "all") for s in (0, 1)]
    assert all(0 <= r["test_acc_ci_low"] <= r["test_acc"] <= r["test_acc_ci_high"] <= 1 for r in rows)
    summary = {r["effect"]: r for r in device_realism.summary(rows)}
    assert summary["none"]["seeds"] == 2 and summary["none"]["change_vs_none"] == 0
    paths = device_realism.plot(rows, tmp_path)
    assert paths and paths[0].read_bytes().startswith(PNG)
    assert "all together" in device_realism.describe(rows)[paths[0].name]
    with pytest.raises(ValueError, match="effect='magic'"):
        device_realism.Config(effect="magic")


def test_noise_correlation_points_and_figure(tmp_path):
    small = dict(dataset="synthetic", depth=3, width=16, epochs=1, n_train=256, n_test=256)
    rows = [_row(noise_correlation, noise_correlation.Config(tau_s=t, mode=m, **small))
            for t in (0.0, 1e-6) for m in ("deploy", "insitu")]
    insitu = [r for r in rows if r["mode"] == "insitu"]
    assert all(r["relaxation_s"] == pytest.approx(420 * 5e-9) for r in insitu)  # the window recipe on RRAM
    deployed = [r for r in rows if r["mode"] == "deploy"]
    assert deployed[0]["test_acc"] == pytest.approx(deployed[1]["test_acc"], abs=0.05)  # one read: the same law
    paths = noise_correlation.plot(rows, tmp_path)
    assert paths and paths[0].read_bytes().startswith(PNG)
    assert "correlation time" in noise_correlation.describe(rows)[paths[0].name]
    assert noise_correlation.correlated("analog-rram-clocked", 1e-6).read_noise_tau_max_s == 1e-6
