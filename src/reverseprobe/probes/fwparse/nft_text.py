"""A compact nft-like text of a rule from its JSON (libnftables-json(5)), for findings: close
to what `nft list ruleset` prints, never used to decide anything."""

from __future__ import annotations

import json
from typing import Any

Json = Any


def rule_text(exprs: list[Json]) -> str:
    parts = [expr_text(e) for e in exprs if not (isinstance(e, dict) and "counter" in e)]
    return " ".join(p for p in parts if p) or "(empty rule)"


def expr_text(e: Json) -> str:  # noqa: PLR0911 - one return per nft expression kind
    if not isinstance(e, dict) or len(e) != 1:
        return "?"
    key, val = next(iter(e.items()))
    if key == "match" and isinstance(val, dict):
        op = val.get("op", "==")
        op_s = "" if op in ("==", "in") else f"{op} "
        return f"{_val_text(val.get('left'))} {op_s}{_val_text(val.get('right'))}"
    if key in ("accept", "drop", "return", "continue", "reject"):
        return str(key)
    if key in ("jump", "goto") and isinstance(val, dict):
        return f"{key} {val.get('target')}"
    if key == "vmap" and isinstance(val, dict):
        return f"{_val_text(val.get('key'))} vmap {_val_text(val.get('data'))}"
    if key == "xt" and isinstance(val, dict):
        return f"xt {val.get('type')} {val.get('name')}"
    if key in ("log", "limit", "quota", "queue"):
        return str(key)
    return ""


def _val_text(v: Json) -> str:  # noqa: PLR0911 - one return per nft value kind
    if isinstance(v, dict) and len(v) == 1:
        k, s = next(iter(v.items()))
        if k == "payload" and isinstance(s, dict):
            return f"{s.get('protocol')} {s.get('field')}"
        if k in ("meta", "ct") and isinstance(s, dict):
            key = s.get("key")
            return str(key) if k == "meta" else f"ct {key}"
        if k == "set" and isinstance(s, list):
            return "{ " + ", ".join(_val_text(x) for x in s[:20]) + " }"
        if k == "range" and isinstance(s, list) and len(s) == 2:
            return f"{_val_text(s[0])}-{_val_text(s[1])}"
        if k == "prefix" and isinstance(s, dict):
            return f"{s.get('addr')}/{s.get('len')}"
        if k == "fib":
            return "fib"
    if isinstance(v, list):
        if len(v) == 2 and isinstance(v[1], dict):  # map element
            return f"{_val_text(v[0])} : {expr_text(v[1])}"
        return "{ " + ", ".join(_val_text(x) for x in v[:20]) + " }"
    if isinstance(v, str):
        return v if v.startswith("@") or v.isidentifier() else json.dumps(v)
    return str(v)
