"""Timbre families: which voices sound alike, and which base model each group of them should share.

Every voice gets speaker embeddings from the plugins (``speaker_embedding`` hook: GPT-SoVITS voices their
SoVITS style vector ``ge``; every voice with a reference clip a packaged speaker encoder's d-vector when
that plugin's weights are installed; every voice a coarse vector from the DSP statistics). Vectors are
compared only within one space: the space that covers the most voices is used, ties going to the voice's
own model (``gsv-ge``), then the speaker encoder, then the DSP statistics (:data:`SPACE_RANK`).
``similar`` ranks voices by cosine similarity; ``cluster`` groups them with k-means (k-means++ seeding,
fixed seed, so the same library gives the same groups) and names the base each group should share: the
base model most of its members already use, else the base of the member nearest the group's mean that
has one.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from anchorvoice.errors import VoiceError

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from anchorvoice.engine.voices import Voice, VoiceLibrary

SPACE_RANK = {"dsp-envelope": 0, "ge2e": 1}
"""Tie-break between spaces that cover as many voices: higher first; a space not named here (a voice's
own model, e.g. ``gsv-ge``) ranks above all."""
COARSE_SPACES = ("dsp-envelope",)
"""Spaces of signal statistics rather than a speaker model."""


@dataclass
class Embeddings:
    """Vectors of one space, by voice."""

    space: str
    vectors: dict[str, np.ndarray]
    """Voice name -> unit-length vector."""
    left_out: list[str] = field(default_factory=list)
    """Voices with no vector in this space."""
    no_model: list[str] = field(default_factory=list)
    """Voices with no speaker-model embedding at all (only signal statistics, or nothing)."""


@dataclass
class Family:
    """A group of similar voices."""

    members: list[str]
    center: str
    """The member closest to the group's mean."""
    base: dict[str, str]
    """Model kind -> the blob (SHA-256) the group should share."""
    shared_by: int
    """How many members already use that base."""


def collect(library: VoiceLibrary, embed: Callable[[Voice], Mapping[str, list[float]]]) -> Embeddings:
    """Every voice's embedding in the space that covers most voices."""
    per_voice = {}
    for name in library.names():
        try:
            per_voice[name] = embed(library.get(name))
        except Exception as exc:  # a broken voice is left out, not fatal: `voices verify` names it
            log.warning("voice %r left out of the timbre comparison: %s", name, exc)
            per_voice[name] = {}
    counts = Counter(space for spaces in per_voice.values() for space in spaces)
    if not counts:
        raise VoiceError("no voice has a speaker embedding (add voices with `anchorvoice voices add`)")
    space = max(counts, key=lambda s: (counts[s], SPACE_RANK.get(s, len(SPACE_RANK)), s))
    vectors = {}
    for name, spaces in per_voice.items():
        if space in spaces:
            v = np.asarray(spaces[space], dtype=np.float64)
            vectors[name] = v / (np.linalg.norm(v) or 1.0)
    coarse_only = sorted(n for n, spaces in per_voice.items() if not set(spaces) - set(COARSE_SPACES))
    return Embeddings(space, vectors, sorted(set(per_voice) - set(vectors)), coarse_only)


def similar(emb: Embeddings, name: str, k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` voices most like ``name`` (cosine similarity, highest first)."""
    if name not in emb.vectors:
        raise VoiceError(f"voice {name!r} has no {emb.space} embedding (voices with one: "
                         f"{', '.join(sorted(emb.vectors)) or 'none'})")
    me = emb.vectors[name]
    scores = [(other, float(me @ v)) for other, v in emb.vectors.items() if other != name]
    return sorted(scores, key=lambda x: -x[1])[:k]


def kmeans(x: np.ndarray, k: int, seed: int = 0, iterations: int = 50) -> np.ndarray:
    """Cluster labels of the rows of ``x`` (k-means++ seeding, Arthur & Vassilvitskii 2007)."""
    rng = np.random.default_rng(seed)
    centers = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d = np.min(((x[:, None, :] - np.asarray(centers)[None]) ** 2).sum(-1), axis=1)
        centers.append(x[rng.choice(len(x), p=d / d.sum())] if d.sum() > 0 else x[rng.integers(len(x))])
    c = np.asarray(centers)
    labels = np.zeros(len(x), dtype=int)
    for _ in range(iterations):
        new = ((x[:, None, :] - c[None]) ** 2).sum(-1).argmin(1)
        if np.array_equal(new, labels) and _ > 0:
            break
        labels = new
        for j in range(k):
            if np.any(labels == j):
                c[j] = x[labels == j].mean(0)
    return labels


def cluster(library: VoiceLibrary, emb: Embeddings, k: int) -> list[Family]:
    """``k`` families of similar voices, each with the base it should share."""
    names = sorted(emb.vectors)
    if not 1 <= k <= len(names):
        raise VoiceError(f"--k {k}: give 1 to {len(names)} (the voices with a {emb.space} embedding)")
    x = np.stack([emb.vectors[n] for n in names])
    labels = kmeans(x, k)
    families = []
    for j in sorted(set(labels.tolist())):
        members = [n for n, lab in zip(names, labels) if lab == j]
        mean = x[labels == j].mean(0)
        by_center = sorted(members, key=lambda n: -float(emb.vectors[n] @ mean))
        center = by_center[0]
        base_of = {n: tuple(sorted(_base_of(library, library.get(n)).items())) for n in members}
        bases = Counter(b for b in base_of.values() if b)
        common: tuple[tuple[str, str], ...] = ()
        if bases and bases.most_common(1)[0][1] > 1:  # the base most members already use
            common = bases.most_common(1)[0][0]
        else:  # none shared yet: the base of the member nearest the group's mean that has one
            common = next((base_of[n] for n in by_center if base_of[n]), ())
        count = sum(1 for b in base_of.values() if common and b == common)
        families.append(Family(members, center, dict(common), count))
    return sorted(families, key=lambda f: -len(f.members))


def _base_of(library: VoiceLibrary, voice: Voice) -> dict[str, str]:
    """Model kind -> the base blob under the voice's own deltas."""
    out = {}
    for kind, sha in voice.blobs.items():
        base = sha
        while library.blobs.exists(base) and library.blobs.info(base).base:
            base = library.blobs.info(base).base
        out[kind] = base
    return out
