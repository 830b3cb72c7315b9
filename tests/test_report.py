"""Reports read like a results section: numbered captions, accuracies with 95 % intervals and n."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import get_args, get_type_hints

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from experiments import break_even  # noqa: E402
from experiments.framework import report, wilson_interval  # noqa: E402
from experiments.framework.report import Figure, Section, accuracy_cell, write_report  # noqa: E402


def test_wilson_interval_matches_the_closed_form_and_stays_in_0_1():
    lo, hi = wilson_interval(0.9, 100)
    assert (lo, hi) == pytest.approx((0.82564, 0.94478), abs=1e-5)  # 90/100, z = 1.96
    assert wilson_interval(1.0, 20)[1] == 1.0 and wilson_interval(1.0, 20)[0] == pytest.approx(0.83887, abs=1e-5)
    assert wilson_interval(0.0, 20)[0] == 0.0 and wilson_interval(0.0, 20)[1] > 0.1  # not empty at 0
    for bad in ((0.5, 0), (float("nan"), 10), (1.5, 10)):
        assert all(math.isnan(v) for v in wilson_interval(*bad))
    narrow, wide = wilson_interval(0.5, 10_000), wilson_interval(0.5, 100)
    assert (narrow[1] - narrow[0]) * 10 == pytest.approx(wide[1] - wide[0], rel=0.02)  # 1/√n


def test_accuracy_columns_carry_interval_and_sample_count(tmp_path):
    table = [{"p_x": 1, "test_acc": 0.9, "test_samples": 100, "software_test_acc": 0.95, "status": "ok"},
             {"p_x": 2, "test_acc": 0.5, "test_samples": None, "software_test_acc": 0.96, "status": "ok"}]
    fig = tmp_path / "a.png"
    fig.write_bytes(b"\x89PNG")
    md, html = write_report(tmp_path, title="T", table=table, meta={"experiment": "e"},
                            sections=[Section("", "What the runs measure.", [Figure(fig, "A shows B.")])])
    text = md.read_text()
    assert "test_acc (%, 95% CI, n)" in text and "| 90.00 [82.56, 94.48] n=100 |" in text
    assert "| 50.00 |" in text  # no count, no interval
    assert "| 0.95 |" in text  # an accuracy without a declared count stays as measured
    assert "What the runs measure." in text and "![Figure 1](a.png)" in text and "**Figure 1.** A shows B." in text
    assert "<figcaption><b>Figure 1.</b> A shows B.</figcaption>" in html.read_text()
    assert accuracy_cell(0.25, 4) == "25.00 [4.56, 69.94] n=4"


def test_a_module_without_describe_gets_a_plain_caption(tmp_path):
    class Bare:
        pass

    fig = tmp_path / "loss_curve.png"
    [f] = report._captions(Bare, [], [fig])
    assert f.caption == "loss curve (the experiment module describes no figure)."

    class Broken:
        @staticmethod
        def describe(table):
            raise KeyError("x")

    [f] = report._captions(Broken, [], [fig])
    assert "describe() failed: KeyError" in f.caption


def test_break_even_knobs_are_the_typed_choices():
    assert set(get_args(get_type_hints(break_even.Config)["knob"])) == set(break_even.KNOBS)
