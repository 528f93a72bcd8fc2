"""Entry point ``denoise``: whole-clip noise reduction for training sets."""

from __future__ import annotations

from anchorvoice.engine.hookspecs import Register, hookimpl


@hookimpl
def register_denoisers(register: Register) -> None:
    """``noisereduce``: spectral gating (the noisereduce package, MIT)."""
    from anchorvoice.plugins.denoise.spectral_gate import SpectralGate

    register(SpectralGate)
