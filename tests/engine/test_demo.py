"""`anchorvoice demo` (what `make demo` runs): Piper, real espeak-ng, flite and human speech, no downloads."""

from __future__ import annotations

import json
from pathlib import Path

from anchorvoice.audio_io import read_audio
from tests.engine.test_cli import cli


def test_demo_writes_outputs_and_lands_on_the_reference_pitch(tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = cli("--json", "demo", "--out", str(out), home=tmp_path / "unused")
    report = json.loads(res.stdout)
    for key in ("reference", "speak", "real_input", "convert"):
        assert Path(report["outputs"][key]).exists(), key
        assert read_audio(report["outputs"][key]).duration > 1.0
    f0 = report["median_f0_hz"]
    for key in ("speak_output", "convert_output"):
        assert abs(f0[key] - f0["reference"]) / f0["reference"] < 0.10, (key, f0)
    # the real clip is a different speaker: the conversion really moved it
    assert abs(f0["real_input"] - f0["reference"]) / f0["reference"] > 0.3
    stages = {row["stage"] for row in report["stages"]["speak"]}
    # The demo speaks with the neural Piper voice that `make demo` installs (espeak only without onnxruntime).
    assert {"base_voice:piper", "converter:dsp", "effect:limiter"} <= stages
    assert all(row["rtf"] is not None and row["rtf"] >= 0 for row in report["stages"]["convert"])
