"""The operator's JSON logs: every line is one JSON object of the runtime's record shape."""

from __future__ import annotations

import io
import json
import logging
import warnings
from collections.abc import Iterator

import kopf
import pytest

from backgroundjobs.controller import logs
from backgroundjobs.runtime import _logging as runtime_logging
from backgroundjobs.runtime.logrecord import parse_record

# kopf's settings as an object log record carries them; Events off, so that kopf's poster
# (installed once kopf's logging was configured, by an earlier test) posts nothing.
QUIET = kopf.OperatorSettings()
QUIET.posting.enabled = False

pytestmark = pytest.mark.unit


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


def parsed_lines(text: str) -> list[dict[str, object]]:
    """Every line of ``text`` as a JSON object; fails naming the first line that is not."""
    records = []
    for line in text.splitlines():
        record = parse_record(line)
        assert record is not None, f"not a JSON object: {line!r}"
        records.append(record)
    return records


@pytest.mark.usefixtures("restore_root_logging")
def test_every_operator_line_is_json_whatever_the_message_holds() -> None:
    stream = io.StringIO()
    logs.configure("json", stream=stream)
    log = logging.getLogger("backgroundjobs.controller.test")
    log.info('handler "mail.send" said: {"a": 1}\tand \\ backslash')
    log.warning("two\nlines, and unicode: é ✓")
    try:
        raise ValueError('bad "quoted" value')
    except ValueError:
        log.exception("reconcile of %s failed", 'ns/"odd"')
    # a kopf object logger's record: its reference and bookkeeping as extras
    ref = {"apiVersion": "backgroundjobs.dev/v1", "kind": "BackgroundJob", "name": "j1"}
    logging.getLogger("kopf.objects").warning(
        "patching failed",
        extra={"k8s_ref": {**ref, "namespace": "team-a"}, "k8s_skip": False, "settings": QUIET},
    )
    warnings.warn('a deprecation with "quotes"', DeprecationWarning, stacklevel=1)

    records = parsed_lines(stream.getvalue())

    assert [r["level"] for r in records] == ["info", "warning", "error", "warning", "warning"]
    assert records[0]["message"] == 'handler "mail.send" said: {"a": 1}\tand \\ backslash'
    assert records[1]["message"] == "two\nlines, and unicode: é ✓"
    assert records[2]["message"] == 'reconcile of ns/"odd" failed'
    assert 'ValueError: bad "quoted" value' in str(records[2]["exception"])
    assert records[3]["job"] == "j1" and records[3]["namespace"] == "team-a"
    assert "settings" not in records[3] and "k8s_skip" not in records[3]
    assert records[4]["logger"] == "py.warnings"


@pytest.mark.usefixtures("restore_root_logging")
def test_operator_and_runtime_records_have_one_shape() -> None:
    operator_stream, runtime_stream = io.StringIO(), io.StringIO()
    logs.configure("json", stream=operator_stream)
    logging.getLogger("backgroundjobs.controller").info("x")
    runtime_logging.configure(stream=runtime_stream)
    logging.getLogger("handler").info("y")

    operator_record = parsed_lines(operator_stream.getvalue())[0]
    runtime_record = parsed_lines(runtime_stream.getvalue())[0]
    shape = {"time", "level", "logger", "message", "job", "namespace", "run", "handler"}
    assert set(operator_record) == shape
    assert set(runtime_record) == shape


@pytest.mark.usefixtures("restore_root_logging")
def test_text_format_stays_text() -> None:
    stream = io.StringIO()
    logs.configure("text", stream=stream)
    logging.getLogger("backgroundjobs.controller").info("plain")
    line = stream.getvalue().strip()
    assert line.endswith("INFO backgroundjobs.controller plain")
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)
