"""`anchorvoice live` measures the converter first and refuses, with the RTF, when it cannot keep up."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from anchorvoice.engine.cli import live
from anchorvoice.engine.cli.main import build_parser
from anchorvoice.engine.engine import Engine
from anchorvoice.errors import DeviceError
from tests.conftest import asterisk_clip


def test_measure_rtf_times_real_blocks(engine: Engine) -> None:
    dsp = engine.plugins.get("voice_converter", "dsp")()
    dsp.config.pitch_semitones, dsp.config.formant_ratio = 2.0, 1.0
    rtf = live.measure_rtf(dsp, block_ms=10.0, seconds=0.5)  # type: ignore[arg-type]
    assert 0.0 < rtf < 5.0


def test_live_refuses_a_converter_slower_than_real_time(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine.add_voice("anna", [asterisk_clip("demo-congrats")])
    monkeypatch.setenv("ANCHORVOICE_HOME", str(engine.voices.home))
    monkeypatch.setattr(live, "measure_rtf", lambda conv, block_ms, seconds=2.0: 1.7)
    args: argparse.Namespace = build_parser().parse_args(["live", "--voice", "anna", "--duration", "1"])
    with pytest.raises(DeviceError, match=r"too slow for live .*RTF 1\.70 at 10 ms blocks"):
        live.run_live(args)
