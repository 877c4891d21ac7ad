"""JSON log lines carry the request and job ids of their context and the record's own fields."""

from __future__ import annotations

import json
import logging

from api.core import logs


def test_a_record_is_one_json_line_with_the_ids_of_its_context() -> None:
    record = logging.LogRecord("vardmatch.job", logging.INFO, __file__, 1, "job %s", ("started",), None)
    record.kind = "what_if"
    record.color_message = "\x1b[1mjob started\x1b[0m"
    request, job = logs.request_id.set("req-42"), logs.job_id.set(7)
    try:
        line = json.loads(logs.JsonFormatter().format(record))
    finally:
        logs.request_id.reset(request)
        logs.job_id.reset(job)
    assert line["message"] == "job started" and line["level"] == "info" and line["logger"] == "vardmatch.job"
    assert (line["request_id"], line["job_id"], line["kind"]) == ("req-42", 7, "what_if")
    assert "color_message" not in line
    outside = json.loads(logs.JsonFormatter().format(record))
    assert "request_id" not in outside and "job_id" not in outside
