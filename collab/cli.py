"""The ``collab`` command: ``collab serve [options]``, ``collab token ...``.

``collab serve`` exits 0 after a stop that stored everything, 1 if it
cannot start, 75 if a stop left what the store did not take in a recovery
file (replayed by the next start), 74 if it could not even write that
(collab.app.ExitCode; README, "Operating collab").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import runpy
import secrets
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields

from collab import __version__
from collab.config import ConfigError, Settings, add_arguments, settings_from
from collab.logs import configure_logging
from collab.tokens import MIN_SECRET_BYTES, load_private_key, mint_token, valid_token_id
from rooms.identity import Role

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

    token = commands.add_parser(
        "token",
        help="Print a signed token (for local use and testing).",
        description=(
            "Print a token signed with the configured HS256 secret (--jwt-secret or "
            "COLLAB_JWT_SECRET) or with a private key (--jwt-private-key or "
            "COLLAB_JWT_PRIVATE_KEY, RS256/ES256/EdDSA by its type)."
        ),
    )
    token.add_argument("--room", required=True, help="Room id or 'prefix/*' pattern.")
    token.add_argument("--role", required=True, choices=[r.value for r in Role])
    token.add_argument("--name", required=True, help="Display name.")
    token.add_argument("--sub", default=None, help="User id (default: random).")
    token.add_argument(
        "--ttl-s",
        type=float,
        default=None,
        help="Lifetime in seconds (default: one hour, or the maximum if that is less).",
    )
    token.add_argument(
        "--jwt-max-ttl-s",
        type=float,
        default=None,
        help="The server's --jwt-max-ttl-s (or COLLAB_JWT_MAX_TTL_S; default 4 hours): "
        "a longer --ttl-s is refused, as the server would refuse the token.",
    )
    token.add_argument(
        "--jti", default=None, help="Token id a revocation can name (default: random)."
    )
    token.add_argument("--kid", default=None, help="Key id header (for rotation).")
    token.add_argument("--jwt-secret", default=None)
    token.add_argument("--jwt-private-key", default=None, help="PEM file or PEM text.")
    token.add_argument("--jwt-audience", default=None)
    token.add_argument("--jwt-issuer", default=None)

    commands.add_parser(
        "bench",
        help="Run the load harness (same as python -m bench; see BENCHMARKS.md).",
        add_help=False,
    )
    return parser


def _default_max_ttl_s() -> float:
    """The server's default ``--jwt-max-ttl-s``."""
    default = next(f.default for f in fields(Settings) if f.name == "jwt_max_ttl_s")
    assert isinstance(default, float)
    return default


def _token_lifetime(args: argparse.Namespace, environ: Mapping[str, str]) -> float:
    """``--ttl-s`` (default: an hour, within the maximum); ConfigError past the
    maximum lifetime the server accepts (protocol.md §9)."""
    raw_max = args.jwt_max_ttl_s or environ.get("COLLAB_JWT_MAX_TTL_S")
    try:
        max_ttl_s = float(raw_max) if raw_max else _default_max_ttl_s()
    except ValueError:
        raise ConfigError("COLLAB_JWT_MAX_TTL_S must be a number of seconds") from None
    ttl_s = args.ttl_s if args.ttl_s is not None else min(3600.0, max_ttl_s)
    if not 0 < ttl_s <= max_ttl_s:
        raise ConfigError(
            f"--ttl-s must be positive and at most the maximum lifetime {max_ttl_s:g} s "
            "(the server refuses longer-lived tokens; see --jwt-max-ttl-s)"
        )
    return ttl_s


def mint_from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> str:
    """The token ``collab token`` prints (with ``iat`` and a ``jti``); raise
    ConfigError without a key, or for a lifetime the server would refuse."""
    secret = args.jwt_secret or environ.get("COLLAB_JWT_SECRET")
    private = args.jwt_private_key or environ.get("COLLAB_JWT_PRIVATE_KEY")
    if private:
        try:
            key, algorithm = load_private_key(private)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load the private key: {exc}") from None
    elif secret:
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"the JWT secret must be at least {MIN_SECRET_BYTES} bytes")
        key, algorithm = secret, "HS256"
    else:
        raise ConfigError("no signing key: set --jwt-secret or --jwt-private-key")
    if args.jti is not None and not valid_token_id(args.jti):
        raise ConfigError("--jti must be 1-128 printable ASCII characters, no space")
    return mint_token(
        key,
        algorithm=algorithm,
        sub=args.sub or "user-" + secrets.token_hex(6),
        name=args.name,
        room=args.room,
        role=args.role,
        ttl_s=_token_lifetime(args, environ),
        kid=args.kid,
        token_id=args.jti,
        audience=args.jwt_audience or environ.get("COLLAB_JWT_AUDIENCE"),
        issuer=args.jwt_issuer or environ.get("COLLAB_JWT_ISSUER"),
    )


def _event_loop(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop factory for ``--event-loop``: uvloop for ``uvloop`` and, where
    it is installed, ``auto``; None means asyncio's own loop."""
    if name == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["bench"]:
        # The harness talks to servers over the network like any client; it is
        # run, not imported, so the server's layers never depend on it.
        sys.argv = ["python -m bench", *arguments[1:]]
        runpy.run_module("bench", run_name="__main__")
        return 0
    args = parser.parse_args(arguments)
    if args.command == "serve":
        try:
            settings = settings_from(args, os.environ)
        except ConfigError as exc:
            parser.error(str(exc))
        # One line per record, no exception text (collab/logs.py): before the
        # server is built, so its libraries find their loggers set up.
        configure_logging(
            settings.log_level, log_format=settings.log_format, access_log=settings.access_log
        )
        # A Rust panic in pycrdt (a malformed update, contained and refused)
        # prints its message to stderr; never a backtrace as well.
        os.environ["RUST_BACKTRACE"] = "0"
        from collab.app import ExitCode, StartupError, serve

        loop_factory = _event_loop(settings.event_loop)
        if loop_factory is None and settings.event_loop == "uvloop":
            parser.error(
                "--event-loop uvloop: uvloop is not installed (pip install 'collab[uvloop]')"
            )
        try:
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                code = runner.run(serve(settings))
        except StartupError as exc:
            print(f"collab serve: cannot start: {exc}", file=sys.stderr)
            return int(ExitCode.START_FAILED)
        if code is not ExitCode.OK:
            # The log has the details (and the recovery file's name, if any).
            print(f"collab serve: stopped with unsaved changes ({code.name})", file=sys.stderr)
        return int(code)
    if args.command == "token":
        try:
            print(mint_from_args(args, os.environ))
        except ConfigError as exc:
            parser.error(str(exc))
        return 0
    parser.error(f"unknown command {args.command}")
    return 2  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
