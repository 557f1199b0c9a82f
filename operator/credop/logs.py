"""Structured JSON logs: one object per line, with the fields operators filter on.

Log calls pass names, IDs and reasons, never secret values; this formatter
adds nothing from the request or object beyond what the message carries.

Lines logged on an event loop are written together once per turn of the loop
(``TurnBatchingHandler``); a line waits at most until the loop's next turn;
lines from other threads, and every line at shutdown, are written at once and
in order. The credential service writes an audit line per token issued, and
the logging machinery (a record, a formatter, a handler chain) cost more than
the token's signature, so such lines can skip it: :func:`write_json_line`
writes the very line :class:`JsonFormatter` would, to the same handler.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Mapping
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any, TextIO


def _encoder() -> Callable[[Any], str]:
    """``json.dumps(value, ensure_ascii=False)`` with the C encoder built once (``dumps`` builds one per call)."""
    if c_make_encoder is None:  # pragma: no cover - CPython always has it
        return json.JSONEncoder(ensure_ascii=False).encode
    chunks = c_make_encoder(None, _refuse, encode_basestring, None, ": ", ", ", False, False, False)
    return lambda value: "".join(chunks(value, 0))


def _refuse(value: object) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_encode = _encoder()
_second: list[Any] = [None, ""]
"""The last whole second formatted, and its text up to the milliseconds."""


def _time(created: float) -> str:
    """``datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")``, the second's text reused."""
    fraction, whole = math.modf(created)
    micro = round(fraction * 1e6)  # as datetime rounds a timestamp
    second = int(whole) + micro // 1_000_000
    if _second[0] != second:
        _second[:] = [second, datetime.datetime.fromtimestamp(second, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")]
    return f"{_second[1]}.{micro % 1_000_000 // 1000:03d}+00:00"


def _entry(*, created: float, level: str, logger: str, message: str) -> dict[str, Any]:
    return {
        "time": _time(created),
        "level": level,
        "logger": logger,
        "message": message,
    }


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = _entry(
            created=record.created, level=record.levelname.lower(), logger=record.name, message=record.getMessage()
        )
        for field in ("namespace", "kind", "client_id", "reason", "remote"):
            if hasattr(record, field):
                entry[field] = getattr(record, field)
        audit = getattr(record, "audit", None)
        if isinstance(audit, dict):
            entry["audit"] = audit
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return _encode(entry)


class TurnBatchingHandler(logging.StreamHandler[TextIO]):
    """A stream handler that writes the lines of one event-loop turn with one write and one flush."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._pending: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._add(self.format(record))
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        self.acquire()
        try:
            self._write_pending()
        finally:
            self.release()

    def write_line(self, line: str) -> None:
        """Write a line formatted elsewhere, in its place among the handler's other lines."""
        self.acquire()
        try:
            self._add(line)
        finally:
            self.release()

    def _add(self, line: str) -> None:
        """Off the loop, write at once (after any lines waiting); on it, at the end of this turn."""
        self._pending.append(line + self.terminator)
        loop = _running_loop()
        if loop is None:
            self._write_pending()
        elif len(self._pending) == 1:
            loop.call_soon(self.flush)

    def _write_pending(self) -> None:
        if not self._pending:
            return
        lines, self._pending = "".join(self._pending), []
        self.stream.write(lines)
        self.stream.flush()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


_json_lines: list[TurnBatchingHandler] = []
"""The handler :func:`configure_logging` set up, when it writes JSON lines."""


def write_json_line(logger: logging.Logger, message: str, *, fields: Mapping[str, Any]) -> bool:
    """Write an INFO line as :class:`JsonFormatter` would, past the logging machinery; ``False`` when
    logging is not configured for JSON lines (the caller then logs the usual way)."""
    if not _json_lines:
        return False
    entry = _entry(created=time.time(), level="info", logger=logger.name, message=message)
    entry.update(fields)
    _json_lines[0].write_line(_encode(entry))
    return True


def configure_logging(*, level: str = "INFO", json_format: bool = True, stream: TextIO | None = None) -> None:
    """Log to ``stream`` (standard error), as JSON lines unless told otherwise."""
    handler = TurnBatchingHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json_format else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    _json_lines[:] = [handler] if json_format else []
    _skip_what_no_formatter_reads()
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def _skip_what_no_formatter_reads() -> None:
    """The logging docs' optimisations: neither format reads the caller's frame, thread or process."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
