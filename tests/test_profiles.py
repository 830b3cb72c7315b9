import dataclasses
import math
import tomllib

import pytest

from pchw.profiles import (
    CHIP_DIR,
    PRESET_DIR,
    AdcScaling,
    HardwareProfile,
    Precision,
    ProfileError,
    Substrate,
    list_chips,
    list_profiles,
    load_calibration,
    load_profile,
    parse_profile,
    profile_to_toml,
)
from pchw.published import Metric, Role, WorkloadKind, calibration_to_toml

PRESETS = {
    "ideal",
    "gpu-fp32",
    "gpu-bf16",
    "asic-int8-7nm",
    "analog-rram-clocked",
    "analog-rram-clocked-realistic",
    "analog-rram-continuous",
    "analog-cap-ota",
    "neuromorphic-loihi",
}
CHIPS = {"ibm-hermes", "neurram", "jia-cimu", "intel-loihi", "nvidia-k4000"}
TEXT = {"name", "description", "substrate", "precision", "sources", "adc_scaling"}
NUMERIC = [f.name for f in dataclasses.fields(HardwareProfile) if f.name not in TEXT]
DEFAULTS = {f.name: f.default for f in dataclasses.fields(HardwareProfile) if f.name in NUMERIC}
PRICES = [k for k in NUMERIC if k.startswith("e_") or k == "p_static_w"]


def _write(tmp_path, text, name="mine.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


VALID = """name = "mine"
description = "a user profile"
substrate = "analog-clocked"
precision = "int8"
e_cell_read_j = { value = 6.25e-15, source = "MLP_NeuroSim" }
adc_bits = { value = 6, source = "ISAAC" }
tau_s = { value = 1e-6, source = "design choice" }
dt_s = { value = 1e-7, source = "design choice" }
"""


# ---- shipped presets ----------------------------------------------------------------------


def test_preset_names_are_exactly_the_shipped_ones():
    assert set(list_profiles()) == PRESETS
    assert len(list_profiles()) == len(PRESETS)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_loads_and_every_set_field_has_a_source(name):
    p = load_profile(name)
    assert p.name == name  # file name = preset name = name field
    assert p.description.strip()
    raw = tomllib.loads((PRESET_DIR / f"{name}.toml").read_text(encoding="utf-8"))
    set_numeric = [k for k in raw if k in NUMERIC]
    assert set(p.sources) == set(set_numeric)
    for key in set_numeric:
        assert isinstance(raw[key], dict) and raw[key]["source"].strip(), key
        assert p.sources[key].strip(), key
    # Anything that differs from the defaults must have been set (hence sourced) in the file.
    for key in NUMERIC:
        if getattr(p, key) != DEFAULTS[key]:
            assert key in p.sources, f"{name}: {key} differs from default without a source"
    # Every preset file starts with a comment block.
    assert (PRESET_DIR / f"{name}.toml").read_text(encoding="utf-8").startswith("#")


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_time_step_is_stable(name):
    p = load_profile(name)
    if p.is_circuit:
        # dt/τ is the per-sample Euler step; must stay well below 2/λ_max (λ_max ≲ 5).
        assert 0 < p.dt_s / p.tau_s <= 0.1 + 1e-12


def test_ideal_prices_nothing():
    p = load_profile("ideal")
    assert p.substrate is Substrate.ANALOG_CLOCKED
    for key in PRICES:
        assert getattr(p, key) == 0, key
    assert p.tau_s == 1.0 and p.dt_s == 0.1
    assert "agreement" in p.description


def test_digital_presets():
    fp32 = load_profile("gpu-fp32")
    assert fp32.substrate is Substrate.DIGITAL and fp32.precision is Precision.FP32
    assert fp32.e_mac_j == 21e-12
    assert fp32.e_op_j == 10.5e-12
    assert fp32.e_dram_bit_j == 3.9e-12
    assert fp32.e_sram_bit_j == 0  # on-chip traffic is inside TDP ÷ peak
    assert fp32.sram_bytes == 50 * 2**20
    bf16 = load_profile("gpu-bf16")
    assert bf16.precision is Precision.BF16
    assert bf16.e_mac_j == pytest.approx(2 * 0.71e-12)
    asic = load_profile("asic-int8-7nm")
    assert asic.precision is Precision.INT8
    assert asic.e_mac_j == pytest.approx((0.2e-12 + 0.03e-12) * 0.094)
    assert asic.e_op_j == pytest.approx(0.03e-12 * 0.094)
    assert asic.e_sram_bit_j == pytest.approx(100e-12 / 64 * 0.094)
    assert asic.e_dram_bit_j == pytest.approx(1.3e-9 / 64)
    assert asic.sram_bytes == 2**20


def test_analog_and_neuromorphic_spot_values():
    clocked = load_profile("analog-rram-clocked")
    assert clocked.e_dac_j == pytest.approx(3.36e-12)
    assert clocked.dac_bits == 8 and clocked.adc_bits == 8
    assert clocked.e_cell_read_j == pytest.approx(0.5**2 * 5e-6 * 5e-9)
    assert clocked.e_write_pulse_j == pytest.approx(2**2 * 5e-6 * 10e-9)
    assert clocked.dt_s == clocked.t_cell_read_s == 5e-9

    # τ = C / g_m, g_m = I_bias / (n·U_T), U_T = kT/q at 300 K.
    c, i_bias, n = 200e-15, 41e-6, 1.5
    u_t = 1.380649e-23 * 300 / 1.602176634e-19
    assert u_t == pytest.approx(25.85e-3, rel=1e-3)
    tau = c * n * u_t / i_bias
    for name in ("analog-rram-continuous", "analog-cap-ota"):
        p = load_profile(name)
        assert p.tau_s == pytest.approx(tau, rel=1e-3), name
        assert p.dt_s == pytest.approx(0.1 * p.tau_s), name
        assert p.p_static_w == 74e-6
    assert load_profile("analog-rram-continuous").substrate is Substrate.ANALOG_CONTINUOUS
    cap = load_profile("analog-cap-ota")
    assert cap.e_cell_read_j == pytest.approx(1 / 8.7e12, rel=0.01)
    assert cap.e_write_pulse_j == pytest.approx(200e-15 * 1.8 * 8.2e-3, rel=0.02)

    loihi = load_profile("neuromorphic-loihi")
    assert loihi.substrate is Substrate.NEUROMORPHIC
    assert (loihi.e_synaptic_event_j, loihi.e_write_pulse_j, loihi.e_neuron_update_j) == (
        23.6e-12,
        120e-12,
        52e-12,
    )


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_toml_round_trip(name):
    p = load_profile(name)
    text = profile_to_toml(p)
    back = parse_profile(tomllib.loads(text), origin="round-trip")
    assert back == p
    assert back.values() == p.values()
    for key, source in p.sources.items():
        assert back.sources[key] == source.replace('"', "'")


def test_round_trip_of_a_user_profile_with_inf(tmp_path):
    p = load_profile(_write(tmp_path, VALID + 'sram_bytes = { value = "inf", source = "unbounded" }\n'))
    assert math.isinf(p.sram_bytes)
    assert parse_profile(tomllib.loads(profile_to_toml(p)), origin="x") == p


# ---- user files ---------------------------------------------------------------------------


def test_user_file_loads_by_path(tmp_path):
    path = _write(tmp_path, VALID)
    for ref in (path, str(path)):
        p = load_profile(ref)
        assert p.name == "mine"
        assert p.substrate is Substrate.ANALOG_CLOCKED and p.precision is Precision.INT8
        assert p.e_cell_read_j == 6.25e-15 and p.adc_bits == 6
        assert p.sources["adc_bits"] == "ISAAC"
        assert p.e_adc_j == 0 and "e_adc_j" not in p.sources  # left out = not priced


@pytest.mark.parametrize(
    "line, match",
    [
        ('bogus_j = { value = 1.0, source = "x" }', "unknown key 'bogus_j'"),
        ('e_adc_j = { value = -1e-12, source = "x" }', r"e_adc_j.*>= 0"),
        ('adc_bits = { value = 0, source = "x" }', r"adc_bits.*integer from 1 to 32"),
        ('adc_bits = { value = 33, source = "x" }', r"adc_bits.*integer from 1 to 32"),
        ('dac_bits = { value = 7.5, source = "x" }', r"dac_bits.*integer from 1 to 32"),
        ("e_op_j = 1e-12", r"e_op_j must be a table"),
        ("e_op_j = { value = 1e-12 }", r"e_op_j must be a table"),
        ('e_op_j = { value = 1e-12, source = "x", unit = "J" }', r"e_op_j has unknown keys \['unit'\]"),
        ('e_op_j = { value = "1 pJ", source = "x" }', r"e_op_j.*must be a number"),
        ('e_op_j = { value = inf, source = "x" }', r"e_op_j must be finite"),
        ('e_op_j = { value = nan, source = "x" }', r"e_op_j"),
        ('e_op_j = { value = true, source = "x" }', r"e_op_j.*must be a number"),
        ('substrate = "quantum"', r"substrate='quantum' is not one of: digital, analog-clocked"),
        ('precision = "fp64"', r"precision='fp64' is not one of: fp32, bf16, int8"),
        ("description = 3", r"description must be a string"),
    ],
)
def test_invalid_user_files(tmp_path, line, match):
    lines = [ln for ln in VALID.splitlines() if not ln.startswith(line.split(" ")[0] + " ")]
    path = _write(tmp_path, "\n".join(lines + [line]) + "\n")
    with pytest.raises(ProfileError, match=match) as info:
        load_profile(path)
    assert str(path) in str(info.value)  # the message names the file


def test_zero_time_constant_is_rejected(tmp_path):
    path = _write(tmp_path, VALID.replace("tau_s = { value = 1e-6", "tau_s = { value = 0"))
    with pytest.raises(ProfileError, match=r"tau_s must be > 0"):
        load_profile(path)


def test_missing_name_is_rejected(tmp_path):
    path = _write(tmp_path, "\n".join(VALID.splitlines()[1:]) + "\n")
    with pytest.raises(ProfileError, match="missing 'name'"):
        load_profile(path)


def test_invalid_toml(tmp_path):
    path = _write(tmp_path, 'name = "broken"\ne_op_j = { value = \n')
    with pytest.raises(ProfileError, match="not valid TOML"):
        load_profile(path)


def test_missing_file(tmp_path):
    with pytest.raises(ProfileError, match="does not exist"):
        load_profile(tmp_path / "nope.toml")


def test_unknown_preset_lists_the_presets():
    with pytest.raises(ProfileError, match="unknown profile 'tpu-v9'") as info:
        load_profile("tpu-v9")
    for name in PRESETS:
        assert name in str(info.value)


# ---- replace ------------------------------------------------------------------------------


def test_replace_revalidates():
    p = load_profile("analog-rram-clocked")
    q = p.replace(adc_bits=6, e_adc_j=1.2e-12)
    assert (q.adc_bits, q.e_adc_j) == (6, 1.2e-12)
    assert (p.adc_bits, p.e_adc_j) == (8, 1.67e-12)  # original unchanged (frozen)
    assert q.sources["adc_bits"] == q.sources["e_adc_j"] == "set by the user"  # old citation dropped
    assert q.sources["e_cell_read_j"] == p.sources["e_cell_read_j"]
    with pytest.raises(ProfileError, match=r"e_cell_read_j.*>= 0"):
        p.replace(e_cell_read_j=-1e-15)
    with pytest.raises(ProfileError, match="dt_s must be > 0"):
        p.replace(dt_s=0.0)
    with pytest.raises(ProfileError, match="adc_bits"):
        p.replace(adc_bits=33)
    with pytest.raises(ProfileError, match="substrate"):
        p.replace(substrate="optical")
    assert p.replace(substrate="digital").substrate is Substrate.DIGITAL


def test_profile_is_frozen_and_validated_directly():
    p = HardwareProfile(name="x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.e_mac_j = 1.0  # type: ignore[misc]
    with pytest.raises(ProfileError, match="x: e_mac_j"):
        HardwareProfile(name="x", e_mac_j=-1.0)
    assert HardwareProfile(name="x", sram_bytes=math.inf).sram_bytes == math.inf


# ---- chip presets and their published figures ----------------------------------------------


def test_chips_are_listed_apart_from_the_presets():
    assert set(list_chips()) == CHIPS
    assert not set(list_chips()) & set(list_profiles())
    with pytest.raises(ProfileError, match="chips: ibm-hermes") as info:
        load_profile("tpu-v9")
    assert "presets: analog-cap-ota" in str(info.value)


@pytest.mark.parametrize("name", sorted(CHIPS))
def test_chip_loads_every_value_cited_and_every_figure_sourced(name):
    path = CHIP_DIR / f"{name}.toml"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("#")
    p = load_profile(name)
    assert p.name == name and p.description.strip()
    raw = tomllib.loads(text)
    set_keys = [k for k in raw if k in NUMERIC or k == "adc_scaling"]
    assert set(p.sources) == set(set_keys)
    for key in set_keys:
        assert raw[key]["source"].strip(), key
    for key in NUMERIC:
        if getattr(p, key) != DEFAULTS[key]:
            assert key in p.sources, f"{name}: {key} differs from default without a source"
    calibration = load_calibration(name)
    assert calibration.figures and not calibration.stands_for
    for f in calibration.figures:
        assert f.value > 0 and f.band >= 1 and len(f.source) > 40, f.id
    derived = [k for k, v in p.sources.items() if v.startswith("derived")]
    for key in derived:  # a derived value shows its arithmetic: numbers and an operator
        assert any(op in p.sources[key] for op in ("/", " x ", "=")), key


def test_chip_layouts_match_their_papers():
    hermes, neurram, jia = load_profile("ibm-hermes"), load_profile("neurram"), load_profile("jia-cimu")
    assert (hermes.max_rows, hermes.max_cols, hermes.bit_serial) == (256, 256, 0)
    assert hermes.e_adc_j == pytest.approx(2 * 256 * 256 / 9.76e12 / 256, rel=1e-4)
    assert (neurram.max_rows, neurram.max_cols, neurram.adc_scaling) == (256, 128, AdcScaling.LINEAR)
    assert neurram.e_cell_read_j == pytest.approx(2 * 11.507e-15, rel=1e-3)
    assert (jia.max_rows, jia.max_cols, jia.bit_serial, jia.dac_bits) == (2304, 256, 1, 1)
    assert jia.e_cell_read_j == pytest.approx(20.4e-12 / 2304, rel=1e-3)
    k4000 = load_profile("nvidia-k4000")
    assert k4000.e_mac_j == pytest.approx(22.86 / (770.39 * (390 * 256 + 256 * 256 + 256 * 29)), rel=1e-4)
    loihi = load_calibration("intel-loihi").figure("kws_j_per_inference")
    assert loihi.workload.kind is WorkloadKind.MLP and loihi.workload.layers == (390, 256, 256, 29)
    assert loihi.value == pytest.approx((0.081 - 0.070) / 296, rel=1e-3) and loihi.role is Role.CROSS_CHECK


@pytest.mark.parametrize("name", sorted(CHIPS) + ["analog-rram-clocked"])
def test_round_trip_with_published_figures(name):
    text = profile_to_toml(load_profile(name)) + calibration_to_toml(load_calibration(name))
    data = tomllib.loads(text)
    assert parse_profile(data, origin="round-trip") == load_profile(name)
    from pchw.published import parse_calibration

    assert parse_calibration(data) == load_calibration(name)


FIGURE = """
[[validation]]
id = "f"
metric = "tops_per_w"
value = 10.0
role = "calibration"
band = 2.0
source = "a paper, a table"
workload = { kind = "mvm", layers = [4, 4] }
"""


@pytest.mark.parametrize(
    "old, new, match",
    [
        ('metric = "tops_per_w"', 'metric = "flops"', r"metric='flops' is not one of: tops_per_w"),
        ("band = 2.0", "band = 0.5", r"band=0.5 must be a finite number >= 1"),
        ("value = 10.0", "value = 0", r"value must be > 0"),
        ('source = "a paper, a table"', 'source = " "', r"source must cite the paper"),
        ("layers = [4, 4]", "layers = [4, 4, 4]", r"layers of an mvm must be \[rows, cols\]"),
        ('kind = "mvm", layers = [4, 4]', 'kind = "mlp", layers = [4, 3, 5, 2]', r"equal hidden widths"),
        ("layers = [4, 4] }", "layers = [4, 4], bits = 3 }", r"workload: unknown keys \['bits'\]"),
        ('role = "calibration"', 'role = "calibration"\nunit = "x"', r"unknown keys \['unit'\]"),
    ],
)
def test_malformed_figures_are_one_line_errors(tmp_path, old, new, match):
    path = _write(tmp_path, VALID + FIGURE.replace(old, new))
    with pytest.raises(ProfileError, match=match) as info:
        load_profile(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_stands_for_names_a_shipped_chip(tmp_path):
    ok = 'reason = "a reason"\nband = 3.0\n'
    path = _write(tmp_path, VALID + f'\n[[stands_for]]\nchip = "neurram"\n{ok}')
    assert load_calibration(path).stands_for[0].chip == "neurram"
    path = _write(tmp_path, VALID + f'\n[[stands_for]]\nchip = "truenorth"\n{ok}', name="bad.toml")
    with pytest.raises(ProfileError, match="stands_for names unknown chip 'truenorth'"):
        load_profile(path)
    path = _write(tmp_path, VALID + "\nvalidation = 3\n", name="worse.toml")
    with pytest.raises(ProfileError, match=r"validation must be an array of tables"):
        load_profile(path)


def test_figure_metrics_and_units():
    assert {m.unit for m in Metric} == {"TOPS/W", "J/inference", "pJ/SOP"}


def test_show_labels_each_uncited_default_as_what_it_is():
    import tomllib

    from pchw.profiles import load_profile, profile_to_toml

    for name, expect in (("gpu-bf16", {"e_sram_bit_j": "not priced", "tau_s": "unused on a digital profile",
                                       "weight_bits": "unused on a digital profile"}),
                         ("analog-rram-clocked", {"e_mac_j": "not priced", "drift_nu": "off (ideal circuit)",
                                                  "drift_t0_s": "used only when drift_nu is switched on",
                                                  "weight_bits": "off (ideal circuit)"})):
        data = tomllib.loads(profile_to_toml(load_profile(name)))
        for key, fragment in expect.items():
            assert fragment in data[key]["source"], (name, key, data[key]["source"])
        for key, entry in data.items():
            if isinstance(entry, dict) and "priced" in entry["source"] and entry["source"].startswith("default"):
                assert key.startswith("e_") or key == "p_static_w", (name, key)  # only prices are "not priced"
