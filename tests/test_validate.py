"""pchw validate: published silicon against pchw's counting and pricing (no training, no simulation)."""

import json

import pytest
from click.testing import CliRunner

import cli
from pchw.profiles import CHIP_DIR, ProfileError, list_chips, load_calibration, load_profile
from pchw.published import Metric
from pchw.validate import CHIP, STANDS_FOR, evaluate, out_of_band, validate


def run_cli(*args):
    result = CliRunner().invoke(cli.main, list(args))
    return result.exit_code, result.output


def _row(rows, profile, figure):
    return next(r for r in rows if r.profile == profile and r.figure.id == figure)


def test_every_shipped_figure_is_within_its_band():
    rows = validate()
    assert not out_of_band(rows), [(r.profile, r.figure.id, r.ratio) for r in out_of_band(rows)]
    assert {r.chip for r in rows if r.claim == CHIP} == set(list_chips())
    assert sum(len(load_calibration(c).figures) for c in list_chips()) == sum(r.claim == CHIP for r in rows)
    assert {r.profile for r in rows if r.claim == STANDS_FOR} == {
        "analog-rram-clocked", "analog-rram-clocked-realistic", "analog-cap-ota", "neuromorphic-loihi"}
    metrics = {r.figure.metric for r in rows}
    assert metrics == set(Metric)


def test_modelled_figures_by_hand():
    rows = validate()
    # HERMES: 256 column conversions at 52.46 pJ per 2·256² ops
    assert _row(rows, "ibm-hermes", "tops_per_w_chip").modelled == pytest.approx(
        2 * 256 * 256 / (256 * 5.2459e-11) / 1e12)
    # Jia: bit-serial 8-bit inputs read the 2304 × 256 cells and convert the 256 columns 8 times: 192/8
    jia8 = _row(rows, "jia-cimu", "tops_per_w_8b_in")
    assert jia8.modelled == pytest.approx(2 * 2304 * 256 / (8 * (2304 * 256 * 8.854e-15 + 256 * 3.56e-12)) / 1e12)
    assert jia8.modelled == pytest.approx(_row(rows, "jia-cimu", "tops_per_w_1b").modelled / 8)
    # NeuRRAM at 8-bit inputs, 10-bit outputs from prices at 4/6 bits: DAC ×8/4, ADC ×10/6 (linear law)
    e = 256 * 128 * 23.01e-15 + 256 * 5.570e-12 * 8 / 4 + 128 * 1.4904e-11 * 10 / 6
    assert _row(rows, "neurram", "tops_per_w_8b_in").modelled == pytest.approx(2 * 256 * 128 / e / 1e12, rel=1e-6)
    # Loihi keyword spotter: 10 steps × 172,800 synapses × 23.6 pJ + 541 neurons × 10 × 52 pJ
    synapses = 390 * 256 + 256 * 256 + 256 * 29
    kws = _row(rows, "intel-loihi", "kws_j_per_inference")
    assert kws.modelled == pytest.approx(10 * synapses * 23.6e-12 + (2 * 256 + 29) * 10 * 52e-12)
    assert _row(rows, "intel-loihi", "pj_per_sop").modelled == pytest.approx(kws.modelled / (10 * synapses) * 1e12)
    assert _row(rows, "nvidia-k4000", "kws_j_per_inference").modelled == pytest.approx(synapses * 1.7172e-7)


def test_generic_clocked_preset_against_hermes_by_hand():
    # bit-serial 8-bit inputs on a 256 × 256 tile: 8 reads of 65,536 cells, 256 DAC conversions,
    # 8 × 256 column conversions, 7 × 256 shift-adds
    e = 8 * 65536 * 6.25e-15 + 256 * 3.36e-12 + 8 * 256 * 1.67e-12 + 7 * 256 * 0.021e-12
    row = _row(validate(["analog-rram-clocked"]), "analog-rram-clocked", "tops_per_w_chip")
    assert row.modelled == pytest.approx(2 * 65536 / e / 1e12) and row.claim == STANDS_FOR and row.band == 3
    assert row.dominant == "adc"


def test_walden_adc_law_puts_neurram_out_of_band():
    # the finding behind adc_scaling: with E ∝ 2^bits, NeuRRAM's 10-bit outputs cost 16× its 6-bit ones
    neurram = load_profile("neurram")
    figure = load_calibration("neurram").figure("tops_per_w_8b_in")
    linear = evaluate(neurram, "neurram", figure, band=figure.band, claim=CHIP)
    walden = evaluate(neurram.replace(adc_scaling="walden"), "neurram", figure, band=figure.band, claim=CHIP)
    assert linear.in_band and not walden.in_band and walden.ratio < 0.5


def test_cli_validate_passes_on_the_shipped_presets(tmp_path):
    code, text = run_cli("validate", "--json", str(tmp_path / "rows.json"), "--figure", str(tmp_path / "v.png"))
    assert code == 0, text
    for chip in list_chips():
        assert f"{chip}:" in text
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert len(rows) == len(validate()) and all(r["in_band"] and r["kind"] == "estimate" for r in rows)
    assert f"{len(rows)} of {len(rows)} figures within their band" in text
    assert (tmp_path / "v.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_validate_fails_with_one_line_when_a_price_leaves_its_band(tmp_path):
    text = (CHIP_DIR / "ibm-hermes.toml").read_text(encoding="utf-8")
    assert "e_adc_j = { value = 5.2459e-11" in text
    mine = tmp_path / "hermes-repriced.toml"
    mine.write_text(text.replace("e_adc_j = { value = 5.2459e-11", "e_adc_j = { value = 5.2459e-10"))
    result = CliRunner().invoke(cli.main, ["validate", str(mine)])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert errors == ["error: 2 of 2 figures outside their band; first: ibm-hermes on ibm-hermes:tops_per_w_chip "
                      "ratio 0.1 outside ×/÷2 (dominant adc)"]


def test_cli_validate_of_a_profile_without_figures_is_a_user_error():
    code, text = run_cli("validate", "gpu-fp32")
    assert code == 2 and text.startswith("error: gpu-fp32 has no published figures")


def test_stands_for_an_unknown_figure_is_an_error(tmp_path):
    text = (CHIP_DIR.parent / "analog-cap-ota.toml").read_text(encoding="utf-8")
    mine = tmp_path / "cap.toml"
    mine.write_text(text.replace('figures = ["tops_per_w_8b_in"]', 'figures = ["tops_per_w_16b"]'))
    with pytest.raises(ProfileError, match="no figure 'tops_per_w_16b'"):
        validate([mine])
