"""break-even: the closed-form break-even price equals brute-force re-pricing; honest no-solution rows."""

import math
from dataclasses import asdict, replace

import pytest

from experiments import break_even
from experiments.measured import measure
from pchw.events import price
from pchw.profiles import load_profile

pytestmark = pytest.mark.slow  # every test here trains μPC and BP twins first

PNG = b"\x89PNG\r\n\x1a\n"
BASE = break_even.Config(dataset="synthetic", depth=3, width=16, epochs=1, batch_size=32)


@pytest.fixture(scope="module", autouse=True)
def private_cache(tmp_path_factory):
    """One private cache for the module, so the two synthetic nets are trained once, in tmp."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PCHW_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


def _pc_train_j(config, **prices):
    """PC joules per training example of the measured in-situ run, re-priced independently."""
    pc = measure("pc", config.profile, dataset=config.dataset, depth=config.depth, width=config.width,
                 epochs=config.epochs, batch_size=config.batch_size, seed=config.seed)
    return price(pc.counts_per_example, load_profile(config.profile).replace(**prices)).total_j


def test_closed_form_equals_brute_force_repricing(tmp_path, assert_reported):
    rows = []
    # a reference far dearer than the synthetic net's analog PC, so each knob alone can break even
    cheap_ref = tmp_path / "dear-gpu.toml"
    cheap_ref.write_text('name = "dear-gpu"\nsubstrate = "digital"\nprecision = "bf16"\n'
                         'e_mac_j = { value = 1e-7, source = "test" }\n')
    for knob in ("e_cell_read_j", "e_adc_j", "e_dac_j"):
        config = replace(BASE, knob=knob, reference=str(cheap_ref))
        row = break_even.run(config)
        k_star = row["break_even_j"]
        assert math.isfinite(k_star) and k_star > 0, row["note"]
        assert row["note"] == ""
        e_bp = row["bp_train_energy_j"]
        # the row's own re-pricing and an independent one both land on BP's energy
        assert row["check_pc_energy_at_break_even_j"] == pytest.approx(e_bp, rel=1e-9)
        assert _pc_train_j(config, **{knob: k_star}) == pytest.approx(e_bp, rel=1e-9)
        # linearity: the current energy is E_rest + k·n_k, and E_rest is the energy at k = 0
        current = row["knob_current_j"]
        assert current == getattr(load_profile(config.profile), knob)
        assert row["pc_train_energy_j"] == pytest.approx(row["pc_rest_energy_j"] + current
                                                         * row["knob_events_per_example"], rel=1e-9)
        assert _pc_train_j(config, **{knob: 0.0}) == pytest.approx(row["pc_rest_energy_j"], rel=1e-12)
        assert row["current_over_break_even"] == pytest.approx(current / k_star)
        assert 0 <= row["pc_test_acc"] <= 1 and 0 <= row["bp_test_acc"] <= 1 and row["pc_n_test"] > 0
        assert row["pc_training"].startswith("in situ") and row["bp_training"].startswith("software")
        assert row["acc_gap_pc_minus_bp"] == pytest.approx(row["pc_test_acc"] - row["bp_test_acc"])
        row.update({f"p_{k}": v for k, v in asdict(config).items()})
        rows.append(row)
    # events per example: DAC and ADC conversions and cell reads are counted, not zero
    assert all(r["knob_events_per_example"] > 0 for r in rows)
    paths = break_even.plot(rows, tmp_path / "fig")
    assert paths
    assert_reported(break_even, rows, paths)
    for p in paths:
        data = p.read_bytes()
        assert data.startswith(PNG) and len(data) > 1000


def test_no_break_even_is_nan_with_a_note(tmp_path):
    free_ref = tmp_path / "free-gpu.toml"
    free_ref.write_text('name = "free-gpu"\nsubstrate = "digital"\nprecision = "bf16"\n'
                        'e_mac_j = { value = 1e-30, source = "test" }\n')
    row = break_even.run(replace(BASE, knob="e_adc_j", reference=str(free_ref)))
    assert row["pc_rest_energy_j"] > row["bp_train_energy_j"]
    assert math.isnan(row["break_even_j"]) and math.isnan(row["check_pc_energy_at_break_even_j"])
    assert math.isnan(row["current_over_break_even"])
    assert "no value of e_adc_j alone breaks even" in row["note"]
    row.update({f"p_{k}": v for k, v in asdict(replace(BASE, knob="e_adc_j")).items()})
    paths = break_even.plot([row], tmp_path / "fig")  # still drawn: the curve stays above BP's line
    assert paths and paths[0].read_bytes().startswith(PNG)


def test_unknown_knob_is_one_clear_error():
    with pytest.raises(ValueError, match="knob="):
        break_even.run(replace(BASE, knob="e_mac_j"))
