"""Entry point ``anchorvoice.plugins.effects.plugin``: registers the built-in effects."""

from __future__ import annotations

from anchorvoice.engine.hookspecs import Register, hookimpl
from anchorvoice.plugins.effects.compressor import CompressorEffect, LimiterEffect
from anchorvoice.plugins.effects.gain import GainEffect
from anchorvoice.plugins.effects.gate import NoiseGateEffect
from anchorvoice.plugins.effects.highpass import HighPassEffect


@hookimpl
def register_effects(register: Register) -> None:
    """gain, noise_gate, highpass, compressor, limiter."""
    register(GainEffect)
    register(NoiseGateEffect)
    register(HighPassEffect)
    register(CompressorEffect)
    register(LimiterEffect)
