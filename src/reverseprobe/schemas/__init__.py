"""JSON Schemas (draft 2020-12) of every command's `--json` report and of the reflector's HTTP
answers: the contract for JSON consumers (docs/reference.md "JSON reports").

The files are package data; each has an `$id` under `BASE`, and refers to the others by
relative name (`report.schema.json`, `finding.schema.json`), so a validator needs them all.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

BASE = "https://reverseprobe.invalid/schemas/1/"  # RFC 2606 .invalid: an id, never fetched
COMMANDS = ("check", "forward", "move-test", "checklist", "reflector")
SHARED = ("report", "finding")


def names() -> tuple[str, ...]:
    """Every schema file's name, commands first."""
    return tuple(f"{n}.schema.json" for n in (*COMMANDS, *SHARED))


def load(name: str) -> dict[str, Any]:
    """One schema by file name (`check.schema.json`) or command (`check`)."""
    file = name if name.endswith(".schema.json") else f"{name}.schema.json"
    if file not in names():
        raise KeyError(name)
    text = resources.files(__name__).joinpath(file).read_text(encoding="utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc
