"""Entry point ``plugins.effects.plugin``: registers the built-in effects."""

from __future__ import annotations

from engine.hookspecs import Register, hookimpl
from plugins.effects.compressor import CompressorEffect, LimiterEffect
from plugins.effects.gain import GainEffect
from plugins.effects.gate import NoiseGateEffect
from plugins.effects.highpass import HighPassEffect


@hookimpl
def register_effects(register: Register) -> None:
    """gain, noise_gate, highpass, compressor, limiter."""
    register(GainEffect)
    register(NoiseGateEffect)
    register(HighPassEffect)
    register(CompressorEffect)
    register(LimiterEffect)
