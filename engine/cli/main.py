"""Entry point of the `anchorvoice` console script."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from anchorvoice.engine import __version__
from anchorvoice.errors import AnchorVoiceError

# Command groups, each a module with `add_parser(subparsers)`. A module that fails to import
# (a missing optional dependency) is reported when its command is used, not at start-up.
COMMAND_MODULES = [
    "anchorvoice.engine.cli.jobs",
    "anchorvoice.engine.cli.voices",
    "anchorvoice.engine.cli.dataset",
    "anchorvoice.engine.cli.plugins_cmd",
    "anchorvoice.engine.cli.demo",
    "anchorvoice.engine.cli.devices",
    "anchorvoice.engine.cli.live",
    "anchorvoice.engine.cli.serve",
    "anchorvoice.engine.cli.train",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anchorvoice",
        description="Real-time voice conversion and text-to-speech for virtual anchors.",
    )
    parser.add_argument("--version", action="version", version=f"anchorvoice {__version__}")
    parser.add_argument("--home", help="user data directory (default: $ANCHORVOICE_HOME, else the per-user data "
                        "folder: ~/.local/share/anchorvoice on Linux)")
    parser.add_argument("--config-dir", help="folder of pipeline presets (default: the presets shipped in the package)")
    parser.add_argument("--threads", type=int, help="compute threads for torch/numba")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    _accept_output_flags_everywhere(parser)
    return parser


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every (sub)command parser below ``parser``, nested ones (``voices list``) included."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # aliases share a parser
                found += [child, *_subparsers(child)]
    return found


def _accept_output_flags_everywhere(parser: argparse.ArgumentParser) -> None:
    """``--json`` and ``-q`` work before or after the command (``anchorvoice voices list --json``).

    SUPPRESS as the default keeps a flag given before the command when the command's own parser does not
    see it again.
    """
    for child in _subparsers(parser):
        child.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
        child.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress lines")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except AnchorVoiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
