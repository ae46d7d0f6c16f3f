"""The server log: one line per record, and never an exception's text.

Session content is health information, so the log must not carry it even
when a bug lets it near: an exception's message can hold whatever input
caused it, and a traceback's source excerpt can quote it too. So
:class:`SafeFormatter` writes an exception as its class and its frames
(``file:line in function``), never its message, its locals or source text,
and escapes every line break or control character left in the final line:
nothing a client sends can start a line of its own. Callers still quote
client strings with :func:`crdt.text.quote`; the escape is the last line of
defence, not the first.

:class:`JsonFormatter` writes the same record as one JSON object per line
(``--log-format json``). :class:`ScrubbedAccessLogger` is the access log
that names no one (``--access-log scrubbed``). :func:`configure_logging` is
``collab serve``'s logging setup.

The log still carries identifiers: room ids, user ids (a token's ``sub``),
Engine.IO session ids and client addresses. Treat it as PHI-adjacent.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import sys
import threading
import types
import warnings
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

__all__ = [
    "FORMAT",
    "SCRUBBED_LINE",
    "JsonFormatter",
    "SafeFormatter",
    "ScrubbedAccessLogger",
    "WebSocketAccessLog",
    "access_log_options",
    "configure_logging",
    "escape_controls",
    "user_ref",
]

#: Every line starts with the time, the level and the logger's name.
FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

#: Frames written per exception: the innermost ones, where it was raised.
MAX_FRAMES = 16
#: Exceptions written per record (the chain and the members of groups).
MAX_EXCEPTIONS = 8

# Line breaks by str.splitlines and every other control character (C0 but
# tab, DEL, C1): a terminal escape sequence rewrites what an operator sees.
_CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r"}

# One frame of a formatted stack (``stack_info``): its source line is dropped.
_STACK_FRAME = re.compile(r'^\s*File "(?P<file>[^"]*)", line (?P<line>\d+), in (?P<func>.*)$')


def escape_controls(text: str) -> str:
    """``text`` without a control character: ``\\n``, ``\\r``, ``\\xNN``, ``\\uNNNN``."""
    return _CONTROLS.sub(_escape_one, text)


#: The key of :func:`user_ref`, made up per process and never written down.
_USER_REF_KEY = secrets.token_bytes(32)


def user_ref(user_id: str) -> str:
    """How a log line should name a user: ``h-`` and 12 hex digits of a keyed
    hash of the id (a token's ``sub``, often an email address).

    The same user gets the same reference for as long as the process runs,
    so one user's lines can be followed; the key lives only in memory, so
    the reference cannot be turned back into the id or matched against a
    list of addresses, and means nothing on another node or after a restart.
    Who it was is in the audit log, which keeps the id itself.
    """
    digest = hmac.new(_USER_REF_KEY, user_id.encode("utf-8", "surrogatepass"), hashlib.sha256)
    return "h-" + digest.hexdigest()[:12]


def _escape_one(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def _short_path(filename: str) -> str:
    """The last two parts of a path (``collab/admin.py``, ``asyncio/events.py``)."""
    parts = filename.replace("\\", "/").rsplit("/", 2)
    return "/".join(parts[-2:])


def _frames(tb: types.TracebackType | None) -> str:
    """``file:line in function`` for each frame, outermost first; read from
    the frame objects, so no source file is opened."""
    frames = []
    while tb is not None:
        code = tb.tb_frame.f_code
        frames.append(f"{_short_path(code.co_filename)}:{tb.tb_lineno} in {code.co_name}")
        tb = tb.tb_next
    if len(frames) > MAX_FRAMES:
        left_out = len(frames) - MAX_FRAMES
        frames = [f"(+{left_out} frames)", *frames[-MAX_FRAMES:]]
    return " > ".join(frames)


def _class_name(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def describe_exception(exc: BaseException) -> str:
    """One line fragment: each exception of the chain (and of groups) as its
    class and frames, the last raised first. Never a message."""
    parts: list[str] = []
    seen: set[int] = set()
    pending: list[tuple[str, BaseException]] = [("", exc)]
    while pending:
        how, current = pending.pop(0)
        if id(current) in seen:
            continue
        if len(parts) == MAX_EXCEPTIONS:
            parts.append("(more exceptions left out)")
            break
        seen.add(id(current))
        frames = _frames(current.__traceback__)
        parts.append(f"{how}{_class_name(current)}" + (f" at {frames}" if frames else ""))
        if isinstance(current, BaseExceptionGroup):
            pending.extend(("member: ", member) for member in current.exceptions)
        if current.__cause__ is not None:
            pending.append(("caused by: ", current.__cause__))
        elif current.__context__ is not None and not current.__suppress_context__:
            pending.append(("while handling: ", current.__context__))
    return "; ".join(parts)


def describe_stack(stack_info: str) -> str:
    """A formatted stack (``stack_info=True``) as ``file:line in function`` frames."""
    frames = [
        f"{_short_path(m['file'])}:{m['line']} in {m['func']}"
        for m in map(_STACK_FRAME.match, stack_info.splitlines())
        if m is not None
    ]
    return " > ".join(frames[-MAX_FRAMES:])


def _message(record: logging.LogRecord) -> str:
    """The record's message (``%`` arguments applied); of the ``asyncio``
    logger's, the first line only: the lines after it are ``repr()``\\ s of
    tasks and futures, which include an exception's message."""
    message = record.getMessage()
    return message.partition("\n")[0] if record.name == "asyncio" else message


def _exception(record: logging.LogRecord) -> str | None:
    """The record's exception as :func:`describe_exception` writes it, if any."""
    if record.exc_info and record.exc_info[1] is not None:
        return describe_exception(record.exc_info[1])
    if record.exc_text:
        # Text another formatter wrote (a full traceback): not ours to print.
        return "(text left out)"
    return None


class SafeFormatter(logging.Formatter):
    """A Formatter whose every record is one line without exception text.

    The message is formatted as usual (``%`` arguments), then an exception
    is appended as `` | exception: <class> at <file:line in function> > ...``
    and a stack as `` | stack: ...``; finally every control character is
    escaped. Records of the ``asyncio`` logger keep only their first line.
    """

    def format(self, record: logging.LogRecord) -> str:
        record.message = _message(record)
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        exception = _exception(record)
        if exception is not None:
            line += " | exception: " + exception
        if record.stack_info:
            line += " | stack: " + describe_stack(record.stack_info)
        return escape_controls(line)

    def formatException(self, ei: Any) -> str:
        """The exception as :func:`describe_exception` writes it (one line)."""
        exc = ei[1] if ei else None
        return describe_exception(exc) if isinstance(exc, BaseException) else ""

    def formatStack(self, stack_info: str) -> str:
        return describe_stack(stack_info)


class JsonFormatter(SafeFormatter):
    """One JSON object per line: ``ts`` (UTC, ISO 8601, milliseconds),
    ``level``, ``logger``, ``message``, and ``exception`` and ``stack`` when
    the record has them, written as :class:`SafeFormatter` writes them (class
    and frames, never a message, a traceback's text or source). Each string
    has its control characters escaped as in the text format before it is
    encoded, so a message reads the same in both and a line is one record.
    """

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, tz=UTC)
        entry = {
            "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": escape_controls(record.name),
            "message": escape_controls(_message(record)),
        }
        exception = _exception(record)
        if exception is not None:
            entry["exception"] = escape_controls(exception)
        if record.stack_info:
            entry["stack"] = escape_controls(describe_stack(record.stack_info))
        return orjson.dumps(entry).decode("utf-8")


#: Methods the scrubbed access log names; any other is ``OTHER`` (the method
#: is a token the client chooses).
_ACCESS_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


#: The scrubbed access line: method, status, duration and size only.
SCRUBBED_LINE = "request method=%s status=%d duration_ms=%.1f bytes=%d"


class ScrubbedAccessLogger(AbstractAccessLogger):
    """``--access-log scrubbed``: one line per request with its method,
    status, duration and response size, and nothing that says who asked or
    for what: no path (it names the room: ``/r/clinic-7/patient-jane-doe``),
    no query, no address, no Referer, no User-Agent."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        method = request.method if request.method in _ACCESS_METHODS else "OTHER"
        self.logger.info(
            SCRUBBED_LINE,
            method,
            response.status,
            time * 1000.0,
            response.body_length,
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


class WebSocketAccessLog:
    """The access line of a WebSocket collab.front serves (aiohttp never
    sees it), in ``--access-log``'s form: written when the open is answered
    (101, or engine.io's 401), with the time the open took. ``full`` writes
    aiohttp's default line; ``scrubbed`` :class:`ScrubbedAccessLogger`'s."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.logger = logging.getLogger(ACCESS_LOGGER)

    @property
    def wants_request(self) -> bool:
        """Whether a line names the request (its line, Referer and User-Agent)."""
        return self.mode == "full"

    def log(
        self,
        *,
        status: int,
        duration_s: float,
        size: int,
        peer: str,
        request: tuple[str, str, str] | None,
    ) -> None:
        """``request``: the request line, Referer and User-Agent (``full`` only)."""
        if self.mode == "off" or not self.logger.isEnabledFor(logging.INFO):
            return
        if self.mode == "scrubbed":
            self.logger.info(
                SCRUBBED_LINE,
                "GET",
                status,
                duration_s * 1000.0,
                size,
            )
            return
        line, referer, agent = request or ("-", "-", "-")
        now = datetime.now().astimezone().strftime("[%d/%b/%Y:%H:%M:%S %z]")
        self.logger.info(
            '%s %s "%s" %d %d "%s" "%s"', peer, now, line, status, size, referer, agent
        )


def access_log_options(mode: str) -> dict[str, Any]:
    """aiohttp ``AppRunner`` keyword arguments for ``--access-log``: ``off``
    builds no access logger at all, ``scrubbed`` uses
    :class:`ScrubbedAccessLogger`, ``full`` aiohttp's own line (address,
    time, request line, status, size, Referer, User-Agent)."""
    if mode == "off":
        return {"access_log": None}
    if mode == "scrubbed":
        return {"access_log_class": ScrubbedAccessLogger}
    return {}


#: Libraries that log through their own handler, or one line per packet, and
#: the level below which their records are dropped. engineio and socketio add
#: a bare StreamHandler (full tracebacks, no time) to a logger whose level is
#: unset, and at INFO log packets with their data.
QUIET_LOGGERS = {
    "engineio.server": logging.ERROR,
    "socketio.server": logging.ERROR,
}

#: aiohttp's access log: a line per request at INFO. ``--access-log`` decides
#: (off by default: the path names the room, and a reverse proxy keeps
#: access logs of its own); when it is on, its lines are written whatever
#: ``--log-level`` says.
ACCESS_LOGGER = "aiohttp.access"

_FORMATTERS: dict[str, type[SafeFormatter]] = {"text": SafeFormatter, "json": JsonFormatter}


def configure_logging(
    level: str, *, log_format: str = "text", access_log: str = "off", stream: Any = None
) -> None:
    """Send every record to ``stream`` (stderr) through :class:`SafeFormatter`
    (``log_format`` ``text``) or :class:`JsonFormatter` (``json``) at
    ``level`` (``debug``, ``info``, ...): the root handler, warnings (their
    class and place only), and exceptions nothing caught (the main thread's
    and other threads'). ``access_log`` (``off``, ``scrubbed``, ``full``)
    says whether aiohttp's access lines pass; which line is written is
    :func:`access_log_options`'s part. Call before the server is built:
    engineio and socketio look at their loggers' levels then."""
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(_FORMATTERS[log_format](FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    for name, quiet in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(quiet)
    logging.getLogger(ACCESS_LOGGER).setLevel(
        logging.WARNING if access_log == "off" else logging.INFO
    )
    warnings.showwarning = _log_warning
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _log_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """A warning as its class and where it was raised; its text, like an
    exception's, may hold whatever input caused it."""
    logging.getLogger("py.warnings").warning(
        "%s at %s:%d", category.__name__, _short_path(filename), lineno
    )


def _log_uncaught(
    kind: type[BaseException], exc: BaseException, tb: types.TracebackType | None
) -> None:
    logging.getLogger("collab").critical("uncaught exception", exc_info=(kind, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or isinstance(args.exc_value, SystemExit):
        return  # as threading's own hook: a thread's SystemExit is quiet
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("collab").error(
        "uncaught exception in thread %s",
        name,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )
