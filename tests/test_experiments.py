"""Experiment modules: the trade-off and the hardware sweep on a small synthetic network."""

from dataclasses import asdict, replace

import pytest

from experiments import hardware_sweep, tradeoff
from experiments.tradeoff import pareto

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PCHW_CACHE", str(tmp_path / "cache"))


def _tradeoff(point):
    return tradeoff.Config(point=point, dataset="synthetic", depth=3, width=16, epochs=2, batch_size=32)


def test_pareto_front():
    pts = [(1.0, 90.0), (2.0, 95.0), (3.0, 94.0), (0.5, 80.0), (2.0, 93.0)]
    assert pareto(pts) == [3, 0, 1]


@pytest.mark.slow
def test_tradeoff_points_are_training_runs_on_their_substrate(tmp_path):
    rows = []
    for point in ("bp:gpu-bf16", "pc:gpu-bf16", "pc:analog-rram-clocked", "bp:analog-rram-clocked"):
        row = tradeoff.run(_tradeoff(point))
        row.update({f"p_{k}": v for k, v in asdict(_tradeoff(point)).items()})
        rows.append(row)
    bp, pc, analog_pc, analog_bp = rows
    assert bp["algorithm"] == "bp" and pc["algorithm"] == "pc" and all(r["kind"] == "measured" for r in rows)
    assert pc["train_energy_j"] > bp["train_energy_j"] > 0  # T inference steps cost MACs on a GPU
    assert pc["inference_energy_j"] == pytest.approx(bp["inference_energy_j"])  # the same feedforward
    for r in (analog_pc, analog_bp):
        assert r["substrate"] == "analog-clocked" and r["training"] == "in situ" and r["n_test"] > 0
        assert r["test_acc_ci_low"] <= r["test_acc"] <= r["test_acc_ci_high"]
        assert r["test_acc"] > 0.4  # both learned on the noisy chip (4 classes: chance is 0.25)
        assert r["train_energy_j"] == pytest.approx(sum(v for k, v in r.items() if k.startswith("train_")
                                                        and k.endswith("_j") and k != "train_energy_j"))
    assert analog_pc["inference_energy_j"] == pytest.approx(analog_bp["inference_energy_j"], rel=1e-9)
    assert analog_pc["train_energy_j"] > 10 * analog_bp["train_energy_j"]  # the relaxation costs
    again = tradeoff.run(_tradeoff("pc:analog-rram-clocked"))  # the finished run is reused, not retrained
    assert again["run_dir"] == analog_pc["run_dir"] and again["test_acc"] == analog_pc["test_acc"]
    paths = tradeoff.plot(rows, tmp_path / "fig")
    assert len(paths) == 2
    for p in paths:
        data = p.read_bytes()
        assert data.startswith(PNG) and len(data) > 1000
    sentences = tradeoff.describe(rows)
    assert set(sentences) == {p.name for p in paths} and "test images" in sentences[paths[0].name]


@pytest.mark.slow
def test_hardware_sweep_moves_accuracy_and_draws_a_heat_map(tmp_path, assert_reported):
    base = hardware_sweep.Config(dataset="synthetic", depth=3, width=16, epochs=2, samples=128)
    rows = []
    for read_noise in (0.0, 0.5):
        for bits in (0, 2):
            c = replace(base, read_noise_frac=read_noise, weight_bits=bits)
            row = hardware_sweep.run(c)
            row.update({f"p_{k}": v for k, v in asdict(c).items()})
            rows.append(row)
    clean = next(r for r in rows if r["p_read_noise_frac"] == 0.0 and r["p_weight_bits"] == 0)
    worst = next(r for r in rows if r["p_read_noise_frac"] == 0.5 and r["p_weight_bits"] == 2)
    assert clean["test_acc"] > worst["test_acc"]
    assert all(r["energy_j"] > 0 for r in rows)
    paths = hardware_sweep.plot(rows, tmp_path / "fig")
    assert {p.name for p in paths} == {"heatmap_read_noise_frac_weight_bits.png", "sensitivity_read_noise_frac.png",
                                       "sensitivity_weight_bits.png"}
    assert all(r["test_samples"] == 128 for r in rows)
    assert_reported(hardware_sweep, rows, paths)
    assert "n = 128 test samples per point" in hardware_sweep.describe(rows)["sensitivity_weight_bits.png"]


def test_weight_bits_are_categories_with_float_last():
    rows = [{"p_weight_bits": b, "test_acc": 0.5} for b in (0, 6, 3, 4)]
    levels = hardware_sweep._levels(rows, "weight_bits")
    assert [hardware_sweep._tick("weight_bits", v) for v in levels] == ["3", "4", "6", "float"]


@pytest.mark.slow
def test_demo_end_to_end_through_the_cli(tmp_path):
    from click.testing import CliRunner

    import cli

    out = tmp_path / "demo"
    args = ["demo", "--dataset", "synthetic", "--depth", "3", "--width", "16", "--epochs", "1", "--samples", "64",
            "--n-train", "1024", "--n-test", "256", "--quiet", "--out", str(out)]
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 0, result.output
    assert "PC · analog-rram-clocked" in result.output and "BP · gpu-bf16" in result.output
    report = (out / "report.md").read_text()
    for fig in ("tradeoff_accuracy_vs_energy.png", "heatmap_read_noise_frac_weight_bits.png"):
        assert fig in report
        assert any(p.read_bytes().startswith(PNG) for p in out.rglob(fig))
    assert (out / "report.html").exists() and (out / "tradeoff" / "runs.csv").exists()
    rows = (out / "tradeoff" / "runs.csv").read_text().splitlines()
    assert len(rows) == 1 + len(tradeoff.POINTS) and all(",ok," in r for r in rows[1:])
    assert "test_acc (%, 95% CI, n)" in report and "n=256" in report  # every accuracy with its interval and n_test

    # `pchw report` on the demo folder rebuilds the combined report and both parts' from their runs.csv
    for path in [out / "report.md", out / "report.html", *out.rglob("*.png"), *out.glob("*/report.md")]:
        path.unlink()
    result = CliRunner().invoke(cli.main, ["report", str(out)])
    assert result.exit_code == 0, result.output
    rebuilt = (out / "report.md").read_text()
    for fig in ("tradeoff/figures/tradeoff_accuracy_vs_energy.png",
                "hardware-sweep/figures/heatmap_read_noise_frac_weight_bits.png"):
        assert fig in rebuilt and (out / fig).read_bytes().startswith(PNG)
    assert "**Figure 4.**" in rebuilt and "## Runs" in rebuilt
    assert (out / "tradeoff" / "report.md").exists() and (out / "hardware-sweep" / "report.md").exists()
