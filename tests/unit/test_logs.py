"""The log formatter of ``collab serve``: one line per record, and no exception
message or source text, whatever an exception or a client string holds."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from collab.logs import JsonFormatter, SafeFormatter, user_ref

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


# -- --log-format json ------------------------------------------------------------------

JSON_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def test_json_is_one_object_with_the_same_exception_rendering():
    rec = record("handled %s", "x", exc_info=caught())
    line = JsonFormatter(FORMAT).format(rec)
    assert len(line.splitlines()) == 1 and MARKER not in line and "Traceback" not in line
    entry = json.loads(line)
    assert set(entry) == {"ts", "level", "logger", "message", "exception"}
    assert JSON_TS.fullmatch(entry["ts"])
    assert (entry["level"], entry["logger"], entry["message"]) == (
        "ERROR",
        "collab.test",
        "handled x",
    )
    text = SafeFormatter(FORMAT).format(record("handled %s", "x", exc_info=caught()))
    assert text.endswith(" | exception: " + entry["exception"])
    assert entry["exception"].startswith("ValueError at ")


@pytest.mark.parametrize("brk", ["\n", "\r", "\x1b[2J", "\u2028", "\x85", "\x7f"])
def test_json_messages_are_escaped_as_in_text(brk):
    rec = record("user said %s", f"a{brk}b")
    line = JsonFormatter(FORMAT).format(rec)
    assert len(line.splitlines()) == 1
    assert all(ch >= " " and ch not in "\x7f\x85\u2028\u2029" for ch in line), repr(line)
    text = SafeFormatter("%(message)s").format(record("user said %s", f"a{brk}b"))
    assert json.loads(line)["message"] == text


def test_json_stack_and_cached_text():
    rec = record(
        "here",
        stack_info='Stack (most recent call last):\n  File "/a/b/c.py", line 3, in f\n    secret()',
    )
    rec.exc_text = "Traceback (most recent call last):\n  " + MARKER
    entry = json.loads(JsonFormatter(FORMAT).format(rec))
    assert entry["stack"] == "b/c.py:3 in f"
    assert entry["exception"] == "(text left out)"
    assert MARKER not in json.dumps(entry)


def test_configure_logging_json_covers_every_way_a_record_reaches_stderr():
    """As the text test above, with ``log_format="json"``: every line is a
    JSON object, nothing of the marker, access lines off by default."""
    script = textwrap.dedent(
        f"""
        import logging, threading, warnings
        from collab.logs import configure_logging
        configure_logging("info", log_format="json")
        mark = {MARKER!r}
        logging.getLogger("collab.x").error("handled", exc_info=ValueError(mark))
        def work():
            raise KeyError(mark)
        thread = threading.Thread(target=work, name="worker")
        thread.start()
        thread.join()
        warnings.warn("deprecated\\n" + mark)
        logging.getLogger("aiohttp.access").info("GET /" + mark)
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
    assert MARKER not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    entries = [json.loads(line) for line in proc.stderr.splitlines()]
    got = [(e["level"], e["logger"], e["message"], e.get("exception", "")) for e in entries]
    assert [g[:3] for g in got] == [
        ("ERROR", "collab.x", "handled"),
        ("ERROR", "collab", "uncaught exception in thread worker"),
        ("WARNING", "py.warnings", "UserWarning at <string>:12"),
        ("CRITICAL", "collab", "uncaught exception"),
    ]
    assert got[0][3] == "ValueError"
    assert got[1][3].startswith("KeyError at ") and got[3][3].startswith("RuntimeError at ")


@pytest.mark.parametrize(("mode", "written"), [("off", False), ("scrubbed", True), ("full", True)])
def test_the_access_log_setting_drives_the_access_logger(mode, written):
    script = textwrap.dedent(
        f"""
        import logging
        from collab.logs import configure_logging
        configure_logging("error", access_log={mode!r})
        logging.getLogger("aiohttp.access").info("request method=GET status=200")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 0
    assert ("request method=GET" in proc.stderr) is written, proc.stderr


def test_user_ref_is_stable_per_process_and_names_no_one():
    email = "jane.doe@example.org"
    ref = user_ref(email)
    assert re.fullmatch(r"h-[0-9a-f]{12}", ref)
    assert user_ref(email) == ref and user_ref("john@example.org") != ref
    assert "jane" not in ref and "example" not in ref
    script = f"from collab.logs import user_ref; print(user_ref({email!r}))"
    other = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert re.fullmatch(r"h-[0-9a-f]{12}", other.stdout.strip())
    assert other.stdout.strip() != ref, "another process keys its references apart"
