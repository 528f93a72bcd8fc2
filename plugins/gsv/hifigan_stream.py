"""HiFi-GAN decoding that carries each convolution's state across pushes: no frame is decoded twice.

:class:`anchorvoice.plugins.gsv.streaming_decode.ChunkedDecoder` decodes each chunk inside a window with
12 frames before it and 10 after it, so a 16 s sentence streamed in the TTS pipeline's pieces decodes
about 20% more frames than a one-shot decode, and its joins agree with one-shot audio to ~1e-4.
:class:`IncrementalDecoder` instead keeps, for every convolution of the generator, the input samples
its next outputs still need (``dilation * (kernel - 1)`` of them; the overlap-add tail for the
transposed convs), and emits each layer's output as soon as that output's whole input has arrived.
Every sample is then computed once, from the same inputs and by the same oneDNN operations as in
:meth:`Generator.forward`: the audio equals a one-shot decode up to rounding inside the convolutions
(a window's length changes oneDNN's blocking; measured max |diff| ~1e-6, tests/gsv/test_hifigan_stream.py).

The price is the generator's right receptive field: output at frame ``t`` needs latent frames up to
about ``t + 10.6`` (conv_pre's 3 frames, the k11 residual blocks' 60 samples at 500 Hz = 6 frames,
and the later scales' shorter reach), the same as the chunked decoder's 2 + 8 frames of lookahead.

Layout: the generator's channels-last (B, C, 1, T) tensors and its ``ChannelsLastOps`` weights (float32
or bfloat16, as the generator's precision), with the same fused leaky-ReLU and residual-add post-ops.
The block-DFT path is not used here (it is for long one-shot windows).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from anchorvoice.frames import FloatArray
from anchorvoice.plugins.gsv.hifigan import LRELU_SLOPE, ChannelsLastOps, Generator, ResBlock1, ResBlock2, _Conv4d


def _width(x: Tensor) -> int:
    return x.shape[-1]


def _cat(a: Tensor | None, b: Tensor) -> Tensor:
    """``a`` then ``b`` along time, channels-last (``a`` may be None or empty)."""
    if a is None or _width(a) == 0:
        return b
    if _width(b) == 0:
        return a
    return torch.cat([a, b], dim=3).contiguous(memory_format=torch.channels_last)


def _zeros_like(x: Tensor, width: int) -> Tensor:
    shape = (x.shape[0], x.shape[1], 1, width)
    return torch.zeros(shape, dtype=x.dtype).contiguous(memory_format=torch.channels_last)


class _Fifo:
    """Samples received and not yet used, for aligning a branch with a later-arriving one."""

    def __init__(self) -> None:
        self.data: Tensor | None = None

    def put(self, x: Tensor) -> None:
        self.data = _cat(self.data, x)

    def take(self, n: int) -> Tensor:
        assert self.data is not None and _width(self.data) >= n
        head = self.data[..., :n].contiguous(memory_format=torch.channels_last)
        self.data = self.data[..., n:]
        return head


class _ConvStream:
    """A 'same'-padded conv (padding ``p = dilation * (kernel - 1) / 2``) run on arriving samples."""

    def __init__(self, conv: _Conv4d, ops: ChannelsLastOps) -> None:
        self.conv, self.ops = conv.unpadded(), ops
        self.reach = conv.dilation[1] * (conv.weight.shape[-1] - 1)  # input samples beyond one output's
        self.buf: Tensor | None = None  # inputs still needed; starts as the left zero padding

    def _window(self, x: Tensor, final: bool) -> Tensor | None:
        pad = self.reach // 2
        buf = _cat(self.buf if self.buf is not None else _zeros_like(x, pad), x)
        if final:
            buf = _cat(buf, _zeros_like(x, pad))
        if _width(buf) <= self.reach:
            self.buf = buf
            return None
        self.buf = buf[..., _width(buf) - self.reach :] if self.reach else buf[..., :0]
        return buf

    def push(self, x: Tensor, final: bool, slope: float | None = None, residual: _Fifo | None = None) -> Tensor:
        """Outputs that became computable: conv, then leaky ReLU (``slope``) or ``+`` as many samples of
        ``residual`` as there are outputs."""
        buf = self._window(x, final)
        if buf is None:
            return x.new_zeros((x.shape[0], self.conv.weight.shape[0], 1, 0))
        add = residual.take(_width(buf) - self.reach) if residual is not None else None
        return self.ops.run(self.conv, buf, slope=slope, add=add)


class _ConvTransposeStream:
    """A transposed conv (stride u, kernel K, padding P = (K - u) / 2) as overlap-add across pushes."""

    def __init__(self, conv: _Conv4d) -> None:
        self.conv = conv
        self.stride, kernel = conv.stride[1], conv.weight.shape[-1]
        self.crop = conv.padding[1]  # P: outputs dropped at the start and at the end
        if kernel - self.stride != 2 * self.crop:
            raise ValueError("streaming needs a transposed conv with kernel - stride == 2 * padding")
        self.tail: Tensor | None = None  # the last K - u full outputs, still missing later inputs' terms
        self.skip = self.crop

    def push(self, x: Tensor, final: bool) -> Tensor:
        c, u = self.conv, self.stride
        out = x.new_zeros((x.shape[0], c.weight.shape[1], 1, 0))
        if _width(x):
            full = F.conv_transpose2d(x, c.weight, None, [1, u], [0, 0])
            if self.tail is not None:
                full[..., : _width(self.tail)] += self.tail
            n = _width(x) * u
            self.tail = full[..., n:].clone()
            out = full[..., :n]
        if final and self.tail is not None:
            out = _cat(out, self.tail[..., : self.crop])
            self.tail = None
        drop = min(self.skip, _width(out))
        out, self.skip = out[..., drop:], self.skip - drop
        if c.bias is not None:
            out = out + c.bias.view(1, -1, 1, 1)
        return out.contiguous(memory_format=torch.channels_last)


class _ResBlockStream:
    """One residual block (type 1 or 2): its convs streamed, each residual delayed to meet its conv."""

    def __init__(self, blk: ResBlock1 | ResBlock2, ops: ChannelsLastOps) -> None:
        self.type1 = isinstance(blk, ResBlock1)
        if isinstance(blk, ResBlock1):
            self.first = [_ConvStream(ops.plan[m], ops) for m in blk.convs1]
            self.second = [_ConvStream(ops.plan[m], ops) for m in blk.convs2]
        else:
            self.first, self.second = [], [_ConvStream(ops.plan[m], ops) for m in blk.convs]
        self.residual = [_Fifo() for _ in self.second]

    def push(self, x: Tensor, x_act: Tensor, final: bool) -> Tensor:
        n = len(self.second)
        for i in range(n):
            self.residual[i].put(x)
            h = self.first[i].push(x_act, final, slope=LRELU_SLOPE) if self.type1 else x_act
            x = self.second[i].push(h, final, residual=self.residual[i])
            if i < n - 1:
                x_act = F.leaky_relu(x, LRELU_SLOPE)
        return x


class _ScaleStream:
    """One scale's residual blocks, averaged over the samples that every block has produced."""

    def __init__(self, blocks: list[_ResBlockStream]) -> None:
        self.blocks = blocks
        self.pending = [_Fifo() for _ in blocks]

    def push(self, x: Tensor, final: bool) -> Tensor:
        x_act = F.leaky_relu(x, LRELU_SLOPE)
        for blk, fifo in zip(self.blocks, self.pending):
            fifo.put(blk.push(x, x_act, final))
        n = min(_width(f.data) if f.data is not None else 0 for f in self.pending)
        acc = self.pending[0].take(n).clone()
        for fifo in self.pending[1:]:
            acc.add_(fifo.take(n))
        return acc.div_(len(self.blocks))


class IncrementalDecoder:
    """``dec(z, g)`` for one utterance, fed latent frames in pieces; each sample is decoded once.

    Same ``push(z, final) -> samples`` contract as ``ChunkedDecoder``: ``z`` (C, T) new frames (T may be
    0), ``final=True`` on the last piece flushes everything; the concatenated outputs have the one-shot
    length ``frames * hop``.
    """

    def __init__(self, dec: Generator, ge: Tensor) -> None:
        if not dec.channels_last:
            raise ValueError("IncrementalDecoder runs the channels-last convs: build the Generator with them")
        self.dec, self.ge = dec, ge
        self.hop = dec.cfg.hop_length
        self.reset()

    def reset(self) -> None:
        """Forget the utterance."""
        dec = self.dec
        ops = dec._ops()
        assert isinstance(ops, ChannelsLastOps)
        self.dtype = ops.dtype
        self.pre = _ConvStream(ops.plan[dec.conv_pre], ops)
        self.ups = [_ConvTransposeStream(ops.plan[up]) for up in dec.ups]
        k = dec.num_kernels
        self.scales = [
            _ScaleStream([_ResBlockStream(b, ops) for b in dec.resblocks[i * k : (i + 1) * k]])  # type: ignore[arg-type]
            for i in range(len(dec.ups))
        ]
        self.post = _ConvStream(ops.plan[dec.conv_post], ops)
        self.cond: Tensor | None = None
        if self.ge is not None and hasattr(dec, "cond"):
            g = self.ge.to(self.dtype).unsqueeze(2)
            self.cond = ops.conv(dec.cond, g)
        self.frames_in = 0
        self.samples_out = 0
        self.done = False

    def push(self, z: Tensor, final: bool = False) -> FloatArray:
        """Add latent frames ``z`` (C, T); return the audio samples that are now final."""
        if self.done:
            raise ValueError("this utterance was already finished: reset() before the next one")
        if z.dim() != 2 or z.shape[0] != self.dec.cfg.initial_channel:
            raise ValueError(f"latent frames must be ({self.dec.cfg.initial_channel}, T), got {tuple(z.shape)}")
        self.frames_in += z.shape[1]
        with torch.inference_mode():
            x = z[None].to(self.dtype).unsqueeze(2).contiguous(memory_format=torch.channels_last)
            x = self.pre.push(x, final)
            if self.cond is not None:
                x = x + self.cond
            for up, scale in zip(self.ups, self.scales):
                x = scale.push(up.push(F.leaky_relu(x, LRELU_SLOPE), final), final)
            x = self.post.push(F.leaky_relu(x), final)  # torch default slope 0.01, as Generator.forward
            audio = torch.tanh(x.squeeze(2).float())[0, 0]
        self.done = final
        self.samples_out += audio.shape[0]
        if final and self.samples_out != self.frames_in * self.hop:
            raise AssertionError(f"streamed {self.samples_out} samples for {self.frames_in} frames")
        return np.ascontiguousarray(audio.numpy(), dtype=np.float32)
