"""The log formatter of ``collab serve``: one line per record, and no exception
message or source text, whatever an exception or a client string holds."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from collab.logs import SafeFormatter

MARKER = "MARKER-7f3a-session-content"

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def record(
    msg: str = "it failed",
    *args: object,
    name: str = "collab.test",
    exc_info: object = None,
    stack_info: str | None = None,
) -> logging.LogRecord:
    return logging.LogRecord(
        name, logging.ERROR, __file__, 1, msg, args, exc_info, sinfo=stack_info
    )


def fail_with_content(text: str) -> None:
    raise ValueError(f"bad input: {text}; MARKER-7f3a-session-content")


def caught() -> tuple[type[BaseException], BaseException, object]:
    try:
        fail_with_content(MARKER)
    except ValueError:
        info = sys.exc_info()
        assert info[0] is not None and info[1] is not None
        return info[0], info[1], info[2]
    raise AssertionError("not raised")


def test_an_exception_is_one_line_without_its_message_or_source():
    formatter = SafeFormatter(FORMAT)
    out = formatter.format(record("handler failed sid=%s", "abc", exc_info=caught()))
    # The frame that raised has the marker in its source line and in the message.
    assert MARKER not in out
    assert "Traceback" not in out
    assert len(out.splitlines()) == 1
    assert "handler failed sid=abc" in out
    assert "ValueError" in out
    assert "test_logs.py:" in out and " in fail_with_content" in out and " in caught" in out
    # A stock formatter prints both (the finding this formatter fixes).
    stock = logging.Formatter(FORMAT).format(record(exc_info=caught()))
    assert MARKER in stock and len(stock.splitlines()) > 1


def test_a_chained_exception_names_every_class_and_no_message():
    try:
        try:
            fail_with_content(MARKER)
        except ValueError as exc:
            raise KeyError(MARKER) from exc
    except KeyError:
        info = sys.exc_info()
    out = SafeFormatter(FORMAT).format(record(exc_info=info))
    assert MARKER not in out and len(out.splitlines()) == 1
    assert out.index("KeyError") < out.index("ValueError")


def test_an_exception_group_names_its_members():
    try:
        raise ExceptionGroup(MARKER, [ValueError(MARKER), TypeError(MARKER)])
    except ExceptionGroup:
        info = sys.exc_info()
    out = SafeFormatter(FORMAT).format(record(exc_info=info))
    assert MARKER not in out and len(out.splitlines()) == 1
    assert "ExceptionGroup" in out and "ValueError" in out and "TypeError" in out


def test_deep_recursion_is_cut_to_a_bounded_line():
    def down(n: int) -> None:
        if n == 0:
            raise RuntimeError(MARKER)
        down(n - 1)

    try:
        down(500)
    except RuntimeError:
        info = sys.exc_info()
    out = SafeFormatter(FORMAT).format(record(exc_info=info))
    assert MARKER not in out and len(out.splitlines()) == 1
    assert len(out) < 3000
    assert "frames" in out  # says how many were left out


@pytest.mark.parametrize("brk", ["\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x85", "\u2028"])
def test_a_line_break_in_a_message_is_escaped(brk):
    out = SafeFormatter(FORMAT).format(record("refused event=%s code=x", f"ev{brk}FORGED line"))
    assert len(out.splitlines()) == 1
    assert "FORGED line" in out  # still readable, on the same line
    assert "\\" in out


def test_terminal_escapes_are_escaped():
    out = SafeFormatter(FORMAT).format(record("name=%s", "\x1b[2J\x1b[31mred"))
    assert "\x1b" not in out and "\\x1b[2J" in out


def test_stack_info_is_one_line_without_source():
    stack = (
        "Stack (most recent call last):\n"
        '  File "/srv/collab/sync.py", line 12, in on_event\n'
        f"    handle({MARKER!r})\n"
    )
    out = SafeFormatter(FORMAT).format(record(stack_info=stack))
    assert MARKER not in out and len(out.splitlines()) == 1
    assert "collab/sync.py:12 in on_event" in out


def test_asyncio_context_lines_are_left_out():
    # asyncio's exception handler adds repr()s of the task and its exception.
    msg = (
        "Task exception was never retrieved\n"
        f"future: <Task finished exception=ValueError({MARKER!r})>"
    )
    out = SafeFormatter(FORMAT).format(record(msg, name="asyncio", exc_info=caught()))
    assert MARKER not in out and len(out.splitlines()) == 1
    assert "Task exception was never retrieved" in out


def test_text_another_formatter_cached_is_not_printed():
    rec = record(exc_info=caught())
    logging.Formatter(FORMAT).format(rec)  # caches the full traceback in rec.exc_text
    assert rec.exc_text and MARKER in rec.exc_text
    out = SafeFormatter(FORMAT).format(rec)
    assert MARKER not in out and len(out.splitlines()) == 1
    rec.exc_info = None  # only the cached text is left (a record from elsewhere)
    out = SafeFormatter(FORMAT).format(rec)
    assert MARKER not in out and len(out.splitlines()) == 1


STAMPED = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S")


def test_configure_logging_covers_every_way_a_record_reaches_stderr():
    """``collab serve``'s setup in a fresh interpreter: records, library
    loggers, warnings, and exceptions nothing caught, all one stamped line."""
    script = textwrap.dedent(
        f"""
        import logging, threading, warnings
        from collab.logs import configure_logging
        configure_logging("info")
        mark = {MARKER!r}
        logging.getLogger("collab.x").error("handled", exc_info=ValueError(mark))
        def work():
            raise KeyError(mark)
        thread = threading.Thread(target=work, name="worker")
        thread.start()
        thread.join()
        warnings.warn("deprecated\\n" + mark)
        import socketio  # adds its own handler to a logger whose level is unset
        socketio.AsyncServer(async_mode="aiohttp", logger=False, engineio_logger=False)
        logging.getLogger("engineio.server").error("fault", exc_info=RuntimeError(mark))
        logging.getLogger("aiohttp.access").info("GET /" + mark)  # one line per request
        raise RuntimeError(mark)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 1
    err = proc.stderr
    assert MARKER not in err and "Traceback" not in err, err
    lines = err.splitlines()
    for line in lines:
        assert STAMPED.match(line), line
    expected = [
        "ERROR collab.x handled | exception: ValueError",
        "ERROR collab uncaught exception in thread worker | exception: KeyError at ",
        "WARNING py.warnings UserWarning at <string>:12",
        "ERROR engineio.server fault | exception: RuntimeError",
        "CRITICAL collab uncaught exception | exception: RuntimeError at <string>:",
    ]
    assert len(lines) == len(expected), lines
    for line, start in zip(lines, expected, strict=True):
        assert start in line, (start, line)
