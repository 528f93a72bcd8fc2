"""Live parameters from the control API reach a real converter's Config (DSP converter)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from types import SimpleNamespace

import pytest

from anchorvoice.engine.pipeline import Pipeline
from anchorvoice.engine.server.events import EventBus
from anchorvoice.engine.server.live_adapter import EngineLive
from anchorvoice.errors import ConfigError
from anchorvoice.plugins.dsp.converter import DspVoiceConverter
from anchorvoice.plugins.effects.compressor import LimiterEffect


def _live() -> tuple[EngineLive, DspVoiceConverter]:
    conv = DspVoiceConverter()
    live = EngineLive(engine=None, voice="anna", params={}, bus=EventBus())
    effects = SimpleNamespace(effects=[LimiterEffect()])
    live._pipe = SimpleNamespace(
        converter=conv, effects=effects.effects, set_effect_params=partial(Pipeline.set_effect_params, effects)
    )
    return live, conv


def test_pitch_formant_bypass_map_onto_the_converter() -> None:
    live, conv = _live()
    conv.set_param("mix", 0.8)
    live.set_params({"pitch": 3.0, "formant": 2.0, "bypass": True, "gain_db": 0.0, "effects": {}, "muted": False})
    assert conv.config.pitch_semitones == 3.0
    assert conv.config.formant_ratio == pytest.approx(2 ** (2 / 12))
    assert conv.config.mix == 0.0
    live.set_params({"pitch": 0.0, "formant": 0.0, "bypass": False, "gain_db": 0.0, "effects": {}, "muted": False})
    assert conv.config.pitch_semitones is None and conv.config.formant_ratio is None  # automatic again
    assert conv.config.mix == 0.8  # restored, not reset to a default


def test_gain_mute_and_effects_change_live() -> None:
    live, _ = _live()
    live.set_params({"gain_db": -6.0206, "muted": False})
    assert live._gain == pytest.approx(0.5, abs=1e-4)
    live.set_params({"gain_db": 0.0, "muted": True})
    assert live._gain == 0.0
    live.set_params({"effects": {"limiter": {"ceiling_db": -3.0}}})
    assert live._pipe.effects[0].config.ceiling_db == -3.0
    with pytest.raises(ConfigError, match=r"no effect 'reverb' in this preset \(effects: limiter\)"):
        live.set_params({"effects": {"reverb": {"mix": 0.3}}})
    with pytest.raises(ConfigError, match="unknown parameter"):
        live.set_params({"effects": {"limiter": {"volume": 2}}})
    assert live.stats() == {}  # not started: no numbers invented


def test_converter_without_controls_refuses_clearly() -> None:
    @dataclass
    class OnlyStrength:
        strength: float = 1.0

    live = EngineLive(engine=None, voice=None, params={}, bus=EventBus())
    live._pipe = SimpleNamespace(converter=SimpleNamespace(name="plain", config=OnlyStrength()))
    with pytest.raises(ConfigError, match="'plain' converter has no pitch control"):
        live.set_params({"pitch": 2.0})
    live.set_params({"pitch": 0.0, "gain_db": 0.0})  # nothing asked of it: fine


def test_runner_events_cross_threads_onto_the_bus() -> None:
    import asyncio
    import threading

    async def go() -> None:
        bus = EventBus()
        bus.bind(asyncio.get_running_loop())
        sub = bus.subscribe(["degraded", "error"])
        live = EngineLive(engine=None, voice=None, params={}, bus=bus)
        t = threading.Thread(target=live._on_event, args=({"event": "degraded", "reason": "slow"},))
        t.start()
        t.join()
        ev = await asyncio.wait_for(sub.get(), 5)
        assert ev.name == "degraded" and ev.data == {"source": "live", "reason": "slow"}

    asyncio.run(go())
