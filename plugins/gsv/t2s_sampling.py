"""Token selection and the decoding loops of the official T2S inference (GPT-SoVITS v2).

Rules, as ``GPT_SoVITS/AR/models/t2s_model.py`` (``infer_panel_naive``, ``infer_panel_batch_infer``)
and ``AR/models/utils.py`` (``logits_to_probs``, ``sample``) do them at commit 48b1a01:

* order: repetition penalty, top-p, temperature, top-k, softmax, then the "sample" is
  ``argmax(probs / Exponential(1) noise)`` (exactly greedy for top_k = 1);
* the penalty is applied IN PLACE to the logits of every id in y (prompt + generated), once per
  distinct id: negative logits * penalty, others / penalty. The stop test then looks at the
  penalised logits;
* the EOS column is dropped for the first 11 steps; at most 1500 steps;
* stop when the penalised argmax or the sample is EOS (that step's token is removed), or when more
  than ``early_stop_num`` tokens were generated (that token is kept);
* the token generated at step i is fed back at audio position ``prompt_len + i``.

Sampling draws from a ``torch.Generator`` so a seed reproduces a run exactly.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from anchorvoice.plugins.cpu_threads import AdaptiveThreads
from anchorvoice.plugins.gsv.kv_cache import T2SRuntime
from anchorvoice.plugins.gsv.t2s_model import prefix_mask

EOS_FREE_STEPS = 11
"""Official ``if idx < 11: logits = logits[:, :-1]``: no EOS before 11 tokens (0.44 s at 25 Hz)."""

MAX_STEPS = 1500
"""Official hard limit of decoding steps (``range(1500)``)."""


@dataclass
class SamplingConfig:
    """How tokens are chosen; defaults are the official inference defaults (inference_webui / TTS.py)."""

    top_k: int = 15
    """Keep the k most likely tokens (1 = greedy)."""
    top_p: float = 1.0
    """Nucleus threshold; 1 disables it."""
    temperature: float = 1.0
    """Logit divisor (floored at 1e-5 as officially)."""
    repetition_penalty: float = 1.35
    """Penalty on every id already in prompt + output; 1 disables it."""
    early_stop_num: int = -1
    """Stop after more than this many tokens; -1 = no limit but the step cap (the stage passes 50 * max_sec)."""
    max_steps: int = MAX_STEPS
    """Hard cap on decoding steps."""

    def validate(self) -> None:
        """Raise ValueError naming the bad field."""
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")
        if not 1 <= self.max_steps <= MAX_STEPS:
            raise ValueError(f"max_steps must be in 1..{MAX_STEPS}, got {self.max_steps}")


def make_generator(seed: int | None, device: torch.device | None = None) -> torch.Generator:
    """A generator seeded with ``seed``, or from OS entropy when None."""
    gen = torch.Generator(device=device or "cpu")
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(seed)
    return gen


def sample_tokens(logits: Tensor, previous: Tensor, cfg: SamplingConfig, generator: torch.Generator) -> Tensor:
    """logits (B, V) float32, MODIFIED IN PLACE by the penalty; previous (B, L) int64 -> (B,) int64."""
    if previous.shape[1] and cfg.repetition_penalty != 1.0:
        score = logits.gather(1, previous)
        score = torch.where(score < 0, score * cfg.repetition_penalty, score / cfg.repetition_penalty)
        logits.scatter_(1, previous, score)
    scores = logits
    if cfg.top_p < 1.0:
        sorted_logits, order = torch.sort(scores, descending=True)
        cumulative = torch.cumsum(torch.softmax(sorted_logits, dim=-1), dim=-1)
        drop_sorted = cumulative > cfg.top_p
        drop_sorted[:, 0] = False  # keep at least one
        drop = drop_sorted.scatter(1, order, drop_sorted)
        scores = scores.masked_fill(drop, float("-inf"))
    scores = scores / max(cfg.temperature, 1e-5)
    pivot = torch.topk(scores, min(cfg.top_k, scores.shape[-1])).values[:, -1:]
    scores = torch.where(scores < pivot, float("-inf"), scores)
    probs = torch.softmax(scores, dim=-1)
    noise = torch.empty_like(probs).exponential_(1.0, generator=generator)
    return torch.argmax(probs / noise, dim=-1)


@dataclass
class DecodeResult:
    """One sequence's outcome, in the official return convention."""

    y: Tensor
    """(Tp + n,) int64: prompt followed by the kept generated tokens (official ``y``)."""
    idx: int
    """Official ``idx``: the step index at the stop (0 for reference-free single decoding)."""
    prompt_len: int
    """Tp, the number of prompt tokens at the start of ``y``."""
    eos: bool
    """True when the sequence ended on EOS (False: early stop or step cap)."""
    logits: list[Tensor] = field(default_factory=list)
    """Raw logits (V,) of every step, when recording was asked for."""

    @property
    def generated(self) -> Tensor:
        """The generated tokens without the prompt."""
        return self.y[self.prompt_len :]

    @property
    def official_semantic(self) -> Tensor:
        """What the official inference hands to SoVITS: ``y[-idx:]`` (all of y when idx is 0)."""
        return self.y[-self.idx :] if self.idx else self.y


def decode_stream(
    runtime: T2SRuntime,
    phones: Tensor,
    bert: Tensor,
    prompt: Tensor | None,
    cfg: SamplingConfig,
    generator: torch.Generator,
    record_logits: bool = False,
    threads: AdaptiveThreads | None = None,
) -> Generator[int, None, DecodeResult]:
    """Decode one sequence (official ``infer_panel_naive``), yielding each kept token as it is made.

    phones (P,) int64, bert (1024, P) float32, prompt (Tp,) int64 or None (reference-free). The
    generator's return value is the :class:`DecodeResult`. ``threads`` governs the thread count of
    each one-token step (the prefill keeps torch's count).
    """
    cfg.validate()
    model, eos = runtime.model, runtime.model.config.eos
    # inference_mode is entered per step, never across a yield: a suspended generator must not
    # leave the caller's thread in inference mode.
    with torch.inference_mode():
        x = model.embed_text(phones[None], bert[None])
        text_len = x.shape[1]
        prompt_len = 0 if prompt is None else int(prompt.shape[0])
        if prompt is not None and prompt_len:
            x = torch.cat([x, model.embed_audio(prompt[None])], dim=1)
        attend: Tensor | None = prefix_mask(text_len, prompt_len, x.device)
        cache = runtime.new_cache(1, text_len + prompt_len + min(cfg.max_steps, 256), x.device)
        history = torch.zeros(1, prompt_len + cfg.max_steps, dtype=torch.long, device=x.device)
        if prompt is not None:
            history[0, :prompt_len] = prompt
    n = prompt_len
    logs: list[Tensor] = []
    step_input, idx, ended_on_eos = x, 0, False
    for idx in range(cfg.max_steps):
        with torch.inference_mode():
            if idx == 0 or threads is None:
                logits = runtime.forward(step_input, cache, attend)
            else:
                with threads.unit(device=step_input.device):
                    logits = runtime.forward(step_input, cache, attend)
            attend = None
            if record_logits:
                logs.append(logits[0].clone())
            if idx < EOS_FREE_STEPS:
                logits = logits[:, :-1]
            token = sample_tokens(logits, history[:, :n], cfg, generator)
            ended_on_eos = int(logits.argmax(dim=-1)[0]) == eos or int(token[0]) == eos
            early = cfg.early_stop_num != -1 and (n + 1 - prompt_len) > cfg.early_stop_num
            if ended_on_eos:
                break
            history[0, n] = token[0]
            n += 1
            step_input = model.embed_audio(token.view(1, 1), prompt_len + idx)
        yield int(token[0])
        if early:
            break
    return DecodeResult(
        y=history[0, :n].clone(),
        idx=0 if prompt is None else idx,
        prompt_len=prompt_len,
        eos=ended_on_eos,
        logits=logs,
    )


def decode(
    runtime: T2SRuntime,
    phones: Tensor,
    bert: Tensor,
    prompt: Tensor | None,
    cfg: SamplingConfig,
    generator: torch.Generator,
    record_logits: bool = False,
) -> DecodeResult:
    """:func:`decode_stream` run to the end."""
    stream = decode_stream(runtime, phones, bert, prompt, cfg, generator, record_logits)
    while True:
        try:
            next(stream)
        except StopIteration as stop:
            result: DecodeResult = stop.value
            return result


def decode_batch(
    runtime: T2SRuntime,
    phones: Sequence[Tensor],
    berts: Sequence[Tensor],
    prompt: Tensor | None,
    cfg: SamplingConfig,
    generator: torch.Generator,
) -> list[DecodeResult]:
    """Decode several sentences together (official ``infer_panel_batch_infer``).

    Texts are embedded with their own positions and LEFT-padded to the longest; pad columns are
    never attended. All items share ``prompt`` (Tp,). Finished items leave the batch. As
    officially, every item's last generated token is dropped (the EOS on an EOS stop, a real token
    on the early stop). Without a prompt the official code decodes item by item; so does this.
    """
    cfg.validate()
    if len(phones) != len(berts) or not phones:
        raise ValueError("decode_batch needs one bert matrix per phone sequence and at least one item")
    if prompt is None or prompt.shape[0] == 0:
        return [decode(runtime, p, b, None, cfg, generator) for p, b in zip(phones, berts, strict=True)]
    model, eos = runtime.model, runtime.model.config.eos
    batch, prompt_len = len(phones), int(prompt.shape[0])
    with torch.inference_mode():
        max_len = max(int(p.shape[0]) for p in phones)
        x = torch.zeros(batch, max_len, model.config.hidden_dim, device=prompt.device)
        valid = torch.ones(batch, 1, 1, max_len + prompt_len + cfg.max_steps, dtype=torch.bool, device=x.device)
        for i, (p, b) in enumerate(zip(phones, berts, strict=True)):
            pad = max_len - int(p.shape[0])
            x[i, pad:] = model.embed_text(p[None], b[None])[0]
            valid[i, :, :, :pad] = False
        y = model.embed_audio(prompt[None].expand(batch, -1))
        xy = torch.cat([x, y], dim=1)
        total = max_len + prompt_len
        attend: Tensor = prefix_mask(max_len, prompt_len, x.device)[None, None] & valid[:, :, :, :total]
        cache = runtime.new_cache(batch, total + min(cfg.max_steps, 256), x.device)
        history = torch.zeros(batch, prompt_len + cfg.max_steps, dtype=torch.long, device=x.device)
        history[:, :prompt_len] = prompt
        n, rows = prompt_len, list(range(batch))
        results: list[DecodeResult | None] = [None] * batch
        step_input = xy
        for idx in range(cfg.max_steps):
            logits = runtime.forward(step_input, cache, attend)
            if idx < EOS_FREE_STEPS:
                logits = logits[:, :-1]
            tokens = sample_tokens(logits, history[:, :n], cfg, generator)
            history[:, n] = tokens
            n += 1
            done = (tokens == eos) | (logits.argmax(dim=-1) == eos)
            if bool(done.any()):
                for j in done.nonzero().flatten().tolist():
                    results[rows[j]] = DecodeResult(history[j, : n - 1].clone(), idx, prompt_len, eos=True)
                keep = (~done).nonzero().flatten()
                rows = [rows[j] for j in keep.tolist()]
                history, valid = history[keep], valid[keep]
                cache.keep_rows(keep)
            if (cfg.early_stop_num != -1 and n - prompt_len > cfg.early_stop_num) or idx == cfg.max_steps - 1:
                for j, r in enumerate(rows):
                    results[r] = DecodeResult(history[j, : n - 1].clone(), idx, prompt_len, eos=False)
                break
            if not rows:
                break
            step_input = model.embed_audio(history[:, n - 1 : n], prompt_len + idx)
            attend = valid[:, :, :, : cache.length + 1]
    return [r for r in results if r is not None]
