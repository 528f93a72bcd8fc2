"""Shared CLI plumbing: the engine from arguments, JSON/text output, progress lines."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from anchorvoice.engine.engine import Engine, EngineConfig
from anchorvoice.engine.paths import user_data_dir
from anchorvoice.engine.store.resident import StoreConfig


def plugin_allowlist() -> list[str] | None:
    """ANCHORVOICE_PLUGINS (comma list) restricts third-party plugins; unset = all."""
    raw = os.environ.get("ANCHORVOICE_PLUGINS")
    if raw is None:
        return None
    return [p.strip() for p in raw.split(",") if p.strip()]


def home_of(args: argparse.Namespace) -> Path:
    return Path(args.home).expanduser() if getattr(args, "home", None) else user_data_dir()


def make_engine(args: argparse.Namespace, store: StoreConfig | None = None) -> Engine:
    """Build the Engine the arguments describe (home, threads, plugin allowlist; ``store``: the ``[store]``
    limits of a settings file)."""
    cfg = EngineConfig(home=home_of(args), plugin_allowlist=plugin_allowlist(), threads=getattr(args, "threads", None))
    if store is not None:
        cfg.store = store
    if getattr(args, "config_dir", None):
        cfg.configs_dir = Path(args.config_dir)
    return Engine(cfg)


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    """Print ``data`` as JSON with --json, else ``text``."""
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, default=str))
    else:
        print(text)


def progress(args: argparse.Namespace, message: str) -> None:
    """A progress line on stderr (silent with --json so stdout stays parseable... and stderr quiet)."""
    if not getattr(args, "json", False) and not getattr(args, "quiet", False):
        print(f"… {message}", file=sys.stderr, flush=True)


def timing_rows(timings: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"stage": t.name, "seconds": round(t.seconds, 4), "audio_seconds": round(t.audio_seconds, 3),
         "rtf": None if t.audio_seconds <= 0 else round(t.rtf, 4)}
        for t in timings.values()
    ]


def format_timings(rows: list[dict[str, Any]]) -> str:
    lines = [f"  {'stage':<32} {'time s':>8} {'audio s':>8} {'RTF':>7}"]
    for r in rows:
        rtf = "-" if r["rtf"] is None else f"{r['rtf']:.3f}"
        lines.append(f"  {r['stage']:<32} {r['seconds']:>8.3f} {r['audio_seconds']:>8.2f} {rtf:>7}")
    return "\n".join(lines)
