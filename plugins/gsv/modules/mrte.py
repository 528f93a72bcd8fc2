"""MRTE: multi-reference timbre encoder, the text cross-attention inside the SoVITS v2 prior.

Sizes are hard-coded in the official ``module/mrte_model.py`` (content 192 channels, hidden 512,
4 heads, no relative positions); ``ge`` (B, 512, 1) is added in the hidden space.
"""

from __future__ import annotations

from torch import Tensor, nn

from anchorvoice.plugins.gsv.modules.attention import MultiHeadAttention


class MRTE(nn.Module):
    """``ssl_enc`` (B, 192, Ty) attends over ``text`` (B, 192, Tx); adds ``ge``; back to 192 channels."""

    def __init__(
        self, content_enc_channels: int = 192, hidden_size: int = 512, out_channels: int = 192, n_heads: int = 4
    ) -> None:
        super().__init__()
        self.cross_attention = MultiHeadAttention(hidden_size, hidden_size, n_heads)
        self.c_pre = nn.Conv1d(content_enc_channels, hidden_size, 1)
        self.text_pre = nn.Conv1d(content_enc_channels, hidden_size, 1)
        self.c_post = nn.Conv1d(hidden_size, out_channels, 1)

    def forward(self, ssl_enc: Tensor, ssl_mask: Tensor, text: Tensor, text_mask: Tensor, ge: Tensor) -> Tensor:
        attn_mask = text_mask.unsqueeze(2) * ssl_mask.unsqueeze(-1)  # (B, 1, Ty, Tx)
        ssl_enc = self.c_pre(ssl_enc * ssl_mask)
        text_enc = self.text_pre(text * text_mask)
        x = self.cross_attention(ssl_enc * ssl_mask, text_enc * text_mask, attn_mask) + ssl_enc + ge
        return self.c_post(x * ssl_mask)
