"""Log lines: JSON objects, written once per event-loop turn on the loop and at once elsewhere, never lost."""

from __future__ import annotations

import asyncio
import datetime
import io
import json
import logging
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credop import audit, logs
from credop.logs import JsonFormatter, TurnBatchingHandler, configure_logging


class CountedWrites(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def a_logger(stream: CountedWrites) -> logging.Logger:
    handler = TurnBatchingHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.Logger("credop.test", logging.INFO)
    logger.addHandler(handler)
    return logger


def messages(stream: CountedWrites) -> list[str]:
    return [json.loads(line)["message"] for line in stream.getvalue().splitlines()]


async def test_the_lines_of_one_loop_turn_are_written_together_at_its_end() -> None:
    stream = CountedWrites()
    logger = a_logger(stream)
    for number in range(3):
        logger.info("line %d", number)
    assert stream.getvalue() == ""
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert messages(stream) == ["line 0", "line 1", "line 2"]
    assert stream.writes == 1


async def test_a_line_from_another_thread_is_written_at_once_after_the_loop_lines_before_it() -> None:
    stream = CountedWrites()
    logger = a_logger(stream)
    logger.info("on the loop")
    thread = threading.Thread(target=logger.info, args=("from a thread",))
    thread.start()
    thread.join()
    assert messages(stream) == ["on the loop", "from a thread"]
    await asyncio.sleep(0)
    assert messages(stream) == ["on the loop", "from a thread"]


def test_a_line_logged_off_the_loop_is_written_at_once() -> None:
    stream = CountedWrites()
    a_logger(stream).info("no loop here")
    assert messages(stream) == ["no loop here"]


async def test_lines_still_waiting_for_their_turn_are_written_at_shutdown() -> None:
    stream = CountedWrites()
    logger = a_logger(stream)
    logger.info("last words")
    logging.shutdown(handlerList=[lambda: logger.handlers[0]])  # what the interpreter runs at exit
    assert messages(stream) == ["last words"]


def configured(monkeypatch: pytest.MonkeyPatch, *, json_format: bool = True) -> CountedWrites:
    """``configure_logging`` onto a stream, undone after the test."""
    for flag in ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing"):
        monkeypatch.setattr(logging, flag, getattr(logging, flag))
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    monkeypatch.setattr(logs, "_json_lines", [])
    stream = CountedWrites()
    configure_logging(level="INFO", stream=stream, json_format=json_format)
    return stream


def test_configured_logs_are_json_lines_on_the_given_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = configured(monkeypatch)
    logging.getLogger("credop.audit").info("audit: %s", "Rotated", extra={"audit": {"action": "Rotated"}})
    entry = json.loads(stream.getvalue())
    assert entry["level"] == "info" and entry["logger"] == "credop.audit" and entry["message"] == "audit: Rotated"
    assert entry["audit"] == {"action": "Rotated"} and "name" not in entry


FIELDS = {"uid": "0b1c", "client_id": 'team-a/"quoted" \\ ünïcode', "scope": "read write", "issued_at": 1, "jti": None}


def test_an_audit_line_past_the_logging_machinery_is_the_line_the_formatter_writes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = configured(monkeypatch)
    audit.record("TokenIssued", kind="ApiClient", namespace="team-a", name="ci", **FIELDS)
    fast = json.loads(stream.getvalue().splitlines()[0])
    monkeypatch.setattr(logs, "_json_lines", [])  # now through a LogRecord and JsonFormatter
    audit.record("TokenIssued", kind="ApiClient", namespace="team-a", name="ci", **FIELDS)
    usual = json.loads(stream.getvalue().splitlines()[-1])
    assert fast.pop("time")[:16] == usual.pop("time")[:16]
    assert fast == usual
    assert fast["audit"]["client_id"] == FIELDS["client_id"] and "jti" not in fast["audit"]


def test_text_logs_get_audit_lines_as_text(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = configured(monkeypatch, json_format=False)
    audit.record("Rotated", kind="ServiceAccountKey", namespace="team-a", name="ci")
    assert stream.getvalue().rstrip().endswith("credop.audit: audit: Rotated ServiceAccountKey team-a/ci")


@pytest.mark.parametrize("created", [0.0, 1796317887.678, 1796317887.9999996, 1796317887.0004999, 1796317887.9995])
def test_a_line_s_time_is_the_timestamp_s_iso_form_to_the_millisecond(created: float) -> None:
    assert logs._time(created) == iso_milliseconds(created)


@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))
def test_every_line_time_is_the_timestamp_s_iso_form_to_the_millisecond(created: float) -> None:
    assert logs._time(created) == iso_milliseconds(created)


def iso_milliseconds(created: float) -> str:
    return datetime.datetime.fromtimestamp(created, datetime.UTC).isoformat(timespec="milliseconds")
