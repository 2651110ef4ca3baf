"""`--json`: the report model serialized, one document on stdout."""

from __future__ import annotations

import json

from reverseprobe.model import Report


def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=False, default=str) + "\n"
