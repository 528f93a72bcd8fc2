"""anchorvoice driver, run with our own venv's python: the `tts` preset through Pipeline.speak_iter.

Same job file as the peer drivers; ``precision`` ("" = the preset's default, int8) sets the GPT's
precision. The GPT stops at EOS or at the checkpoint's data.max_sec * 50 tokens (as the official
code). Output is the preset's 48 kHz.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from _common import emit, job, timed

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
TOKENS_PER_S = 25  # semantic tokens per second of audio (GPT-SoVITS v2)


def main() -> None:
    spec = job()
    import torch

    from anchorvoice.engine.engine import Engine, EngineConfig
    from anchorvoice.engine.pipeline import Pipeline

    torch.set_num_threads(spec["threads"])
    home = Path(spec["work"]) / "home"
    shutil.rmtree(home, ignore_errors=True)  # a fresh store each run: no voice or cache left from a last run
    eng = Engine(EngineConfig(home=home, third_party_plugins=False))
    models = {"sovits": Path(spec["sovits"]), "gpt": Path(spec["gpt"]), "hubert": Path(spec["hubert"])}
    eng.add_voice("bench", [Path(spec["ref"])], ref_text=spec["ref_text"], models=models)
    cfg = eng.load_preset("tts")
    if spec.get("precision"):
        cfg.slots["prosody"].params["precision"] = spec["precision"]
    precision = cfg.slots["prosody"].params.get("precision", "float32")
    pipe = Pipeline(cfg, eng.plugins, eng.voices.get("bench"))

    def speak():
        pipe.timings.clear()
        for chunk in pipe.speak_iter(spec["text"], "en"):
            yield chunk.samples

    result = timed(spec, speak, pipe.config.pipeline.sample_rate)
    result["gpt_s"] = sum(t.seconds for k, t in pipe.timings.items() if k.startswith("prosody:"))  # last run
    result["tokens"] = round(result["audio_s"] * TOKENS_PER_S)
    result["tokens_note"] = (f"from audio length (25 tokens/s); the frontend spoke {len(pipe.sentences)} piece(s) "
                             f"{pipe.sentences}, each capped at data.max_sec * 50 = {spec['tokens']} tokens")
    result["version"] = f"worktree, {precision}"
    eng.close()
    emit(result)


if __name__ == "__main__":
    main()
