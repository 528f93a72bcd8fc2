"""Small T2S models for the GPT tests, with LayerNorm parameters and biases moved off their init."""

from __future__ import annotations

import torch

from anchorvoice.plugins.gsv.t2s_model import T2SConfig, Text2SemanticDecoder


def perturbed_t2s(config: T2SConfig, seed: int) -> Text2SemanticDecoder:
    """An eval-mode model whose 1-D layer parameters are perturbed (official init: LayerNorm 1/0, biases 0)."""
    torch.manual_seed(seed)
    model = Text2SemanticDecoder(config).eval().requires_grad_(False)
    for layer in model.h.layers:
        for p in layer.parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
    return model
