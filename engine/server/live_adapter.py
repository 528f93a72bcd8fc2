"""Live conversion for the control server: the session ``anchorvoice.engine.live.build_live`` makes (the
same builder as ``anchorvoice live``: preset ``[live]`` table + overrides, neural block default, RTF refusal)
behind the controller's ``LiveSession`` protocol (start, stop, stats, set_params, set_voice).

Live parameters map onto the running converter's ``Config`` through ``Stage.set_param`` (so its
own validation applies): ``pitch`` -> ``pitch_semitones`` and ``formant`` (semitones) ->
``formant_ratio`` = 2^(formant/12), where 0 means "the converter's own choice" (the DSP converter
then aims at the voice's analysed pitch/envelope); ``bypass`` -> ``mix`` 0 (dry microphone).
``gain_db`` and ``muted`` scale the converter's output. ``effects`` (``{"limiter": {"ceiling_db": -3}}``)
change the preset's effect chain, which runs after the converter. :meth:`EngineLiveFactory.check` validates
a parameter set against the preset (its effects' and the voice's converter's ``Config`` classes) before the
controller accepts it, whether live conversion runs or not, so a bad ``params.set`` is refused at once and
never breaks a later ``live.start``. Every apply sets each effect field to the client's value or the preset's
own, so dropping a client value (``null``) restores the preset's.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from anchorvoice.engine.config import coerce_field, from_dict
from anchorvoice.engine.live import LiveRun, build_live
from anchorvoice.engine.pipeline_config import SLOT_KINDS
from anchorvoice.engine.server.events import EventBus
from anchorvoice.errors import AnchorVoiceError, ConfigError
from anchorvoice.frames import AudioFrame

CONVERTER_CONTROLS = {"pitch": "pitch_semitones", "formant": "formant_ratio", "bypass": "mix"}
"""Live parameter -> the converter ``Config`` field it drives (a converter without the field refuses it)."""


class EngineLive:
    """One live conversion run of ``voice`` with the ``preset`` pipeline's converter."""

    def __init__(self, engine: Any, voice: str | None, params: dict[str, Any], bus: EventBus,
                 preset: str = "vc", live_overrides: dict[str, Any] | None = None,
                 session_kwargs: dict[str, Any] | None = None) -> None:
        self.engine = engine
        self.session_kwargs = dict(session_kwargs or {})
        """Extra LiveSession arguments (``backend``, ``virtual_mic``), e.g. a private Pulse server's."""
        self.voice = voice
        self.bus = bus
        self.preset = preset
        self.live_overrides = dict(live_overrides or {})
        self.params = dict(params)
        self._run: LiveRun | None = None
        self._pipe: Any = None
        self._gain = 1.0
        self._saved_mix: float | None = None

    def _build(self) -> LiveRun:
        run = build_live(self.engine, self.voice, preset=self.preset, overrides=self.live_overrides,
                         on_event=self._on_event, session_kwargs=self.session_kwargs)
        self._run, self._pipe = run, run.pipeline
        self._apply(self.params)
        return run

    def _on_event(self, event: dict[str, Any]) -> None:
        # Called on the runner's worker thread: hand over without blocking it. Jitter and priority events
        # describe the stream (status carries them), not a fault.
        if event.get("event") in ("jitter", "priority"):
            return
        name = "degraded" if event.get("event") == "degraded" else "error"
        self.bus.publish_threadsafe(name, {"source": "live", **{k: v for k, v in event.items() if k != "event"}})

    def start(self) -> None:
        self._build().session.start()

    def stop(self) -> None:
        if self._run is not None:
            self._run.session.stop()
            self._run.remember()
            self._run = None

    def stats(self) -> dict[str, Any]:
        if self._run is None:
            return {}
        s = self._run.session.snapshot()
        return {
            "latency_ms": round(s.total_latency_ms, 1),
            "algorithmic_latency_ms": round(s.algorithmic_latency_ms, 1),
            "compute_ms": round(s.compute_ms, 3),
            "rtf": round(s.rtf, 4),
            "underruns": s.underruns,
            "overruns": s.overruns,
            "degraded": s.degraded,
            "errors": s.errors,
            "jitter_buffer_ms": round(s.jitter_buffer_ms, 1),
            "audio_priority": s.audio_priority,
            "worker_priority": s.worker_priority,
            "helper_priority": s.helper_priority,
            "priority_note": s.priority_note,
            # The runner measures its input; the mouth and meters follow the speaker's level.
            "rms_db": max(-120.0, round(s.input_level_db, 1)),
        }

    def set_voice(self, voice: str | None) -> None:
        """A voice switch restarts the run with the new voice's pipeline (devices reopen)."""
        self.voice = voice
        if self._run is not None:
            self.stop()
            self.start()

    def set_params(self, params: dict[str, Any]) -> None:
        if self._pipe is not None:
            self._apply(params)
        self.params = dict(params)

    def _apply(self, params: dict[str, Any]) -> None:
        conv = self._pipe.converter
        fields = {f.name for f in dataclasses.fields(conv.config)}
        self._apply_effects(params.get("effects") or {})

        def put(field: str, value: Any, what: str) -> None:
            if field not in fields:
                raise ConfigError(f"the {conv.name!r} converter has no {what} control", key=what)
            conv.set_param(field, value)

        pitch, formant = float(params.get("pitch", 0.0)), float(params.get("formant", 0.0))
        if pitch or "pitch_semitones" in fields:
            put("pitch_semitones", pitch or None, "pitch")
        if formant or "formant_ratio" in fields:
            put("formant_ratio", 2 ** (formant / 12) if formant else None, "formant")
        bypass = bool(params.get("bypass", False))
        if bypass and self._saved_mix is None:
            saved = float(getattr(conv.config, "mix", 1.0))
            put("mix", 0.0, "bypass")
            self._saved_mix = saved
        elif not bypass and self._saved_mix is not None:
            put("mix", self._saved_mix, "bypass")
            self._saved_mix = None
        self._gain = 0.0 if params.get("muted") else 10 ** (float(params.get("gain_db", 0.0)) / 20)
        if self._run is not None:
            self._run.gain = self._gain

    def _apply_effects(self, effects: dict[str, dict[str, Any]]) -> None:
        """Every effect field to the client's value, else the preset's (the pipeline is cached by the engine,
        so a value a client has dropped must be put back, not left from an earlier run)."""
        specs = getattr(getattr(self._pipe, "config", None), "effects", None)
        if specs is None:  # a pipeline without its preset (tests): only the values given
            if effects:
                self._pipe.set_effect_params(effects)
            return
        values: dict[str, dict[str, Any]] = {}
        for spec, fx in zip(specs, self._pipe.effects, strict=True):
            preset = dataclasses.asdict(from_dict(type(fx.config), spec.params))
            values[fx.name] = {**preset, **effects.get(fx.name, {})}
        unknown = {k: v for k, v in effects.items() if k not in values}
        self._pipe.set_effect_params({**values, **unknown})  # an unknown effect is refused by name


class EngineLiveFactory:
    """The controller's ``live_factory`` for a real Engine: makes sessions and checks parameters for them."""

    def __init__(self, engine: Any, bus: EventBus, preset: str = "vc", live_overrides: dict[str, Any] | None = None,
                 session_kwargs: dict[str, Any] | None = None) -> None:
        self.engine, self.bus, self.preset = engine, bus, preset
        self.live_overrides, self.session_kwargs = live_overrides, session_kwargs

    def __call__(self, voice: str | None, params: dict[str, Any]) -> EngineLive:
        return EngineLive(self.engine, voice, params, self.bus, self.preset, self.live_overrides,
                          self.session_kwargs)

    def check(self, voice: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` with effect values coerced to their fields' types, or ConfigError naming what is wrong:
        an effect the preset does not have, a field its ``Config`` does not have, a value of the wrong type,
        a pitch/formant/bypass the voice's converter has no control for, a value out of an effect's range (each
changed effect is built alone and run on 10 ms of silence). Reads the preset; loads no voice model."""
        cfg = self.engine.load_preset(self.preset)
        specs = {spec.plugin: spec for spec in cfg.effects}
        effects: dict[str, dict[str, Any]] = {}
        for name, values in (params.get("effects") or {}).items():
            if name not in specs:
                have = ", ".join(specs) or "none"
                raise ConfigError(f"no effect {name!r} in the {self.preset!r} preset (effects: {have})",
                                  key=f"effects.{name}")
            cls = self.engine.plugins.get("effect", name)
            effects[name] = {k: coerce_field(cls.Config, k, v, source=f"effect {name!r}") for k, v in values.items()}
            _try_effect(cls, {**specs[name].params, **effects[name]}, name)
        neural = voice is not None and bool(getattr(self.engine.voices.get(voice), "is_neural", False))
        slot = "neural_converter" if neural else "converter"
        spec = cfg.slots.get(slot)
        if spec is not None:
            conv = self.engine.plugins.get(SLOT_KINDS[slot], spec.plugin)
            fields = {f.name for f in dataclasses.fields(conv.Config)}
            for key, field in CONVERTER_CONTROLS.items():
                if params.get(key) and field not in fields:
                    raise ConfigError(f"the {spec.plugin!r} converter has no {key} control (set {key} to its "
                                      f"default to go on)", key=key)
        return {**params, "effects": effects}


TRIAL_BLOCK = AudioFrame(np.zeros(480, np.float32), 48000)
"""10 ms of silence: what a parameter check runs an effect on, so ranges it checks only while running
(``ceiling_db <= 0``) are refused at ``params.set`` too."""


def _try_effect(cls: Any, values: dict[str, Any], name: str) -> None:
    """Build effect ``cls`` with ``values`` and run it on a block of silence; its refusal is a ConfigError."""
    stage = cls(from_dict(cls.Config, values, source=f"effect {name!r}"))
    try:
        stage.prepare(None)
        stage.process(TRIAL_BLOCK)
    except ConfigError:
        raise
    except AnchorVoiceError as exc:
        raise ConfigError(f"effect {name!r} refuses these values: {exc}", key=f"effects.{name}") from None
    finally:
        stage.close()


def engine_live_factory(
    engine: Any, bus: EventBus, preset: str = "vc", live_overrides: dict[str, Any] | None = None,
    session_kwargs: dict[str, Any] | None = None,
) -> EngineLiveFactory:
    """The controller's ``live_factory`` for a real Engine."""
    return EngineLiveFactory(engine, bus, preset, live_overrides, session_kwargs)
