"""The ``collab`` command: ``collab serve [options]``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from collab import __version__
from collab.config import ConfigError, add_arguments, settings_from

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="collab", description="Real-time whiteboard and chat server."
    )
    parser.add_argument("--version", action="version", version=f"collab {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="Run the server.",
        description="Run the server. Every flag also reads COLLAB_<NAME> from the environment.",
    )
    add_arguments(serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        try:
            settings = settings_from(args, os.environ)
        except ConfigError as exc:
            parser.error(str(exc))
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s %(message)s",
            stream=sys.stderr,
        )
        from collab.app import serve

        asyncio.run(serve(settings))
        return 0
    parser.error(f"unknown command {args.command}")
    return 2  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
