"""Make text a peer sent safe to show: pure functions, no I/O.

A router, a PACS or a LAN device can put anything in a string we display (NewInternalClient
`evil\\nhost\\x1b[2J`, a SERVER header, a description). Shown raw, an escape sequence clears or
rewrites the user's terminal, a newline forges a line of the report, a bidi override reorders
it. `printable()` replaces every C0/C1 control character (ECMA-48 5), DEL, and the Unicode bidi
controls and line separators (UAX #9) with a visible `\\xNN`/`\\uNNNN` escape; `quote()` also
caps the length, for a value quoted in a message.
"""

from __future__ import annotations

# Unicode format characters that reorder or break a line (UAX #9 2.1-2.6, UAX #14).
_BIDI = frozenset(
    "\u061c\u200e\u200f\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def _unsafe(c: str) -> bool:
    o = ord(c)
    return o < 0x20 or 0x7F <= o <= 0x9F or c in _BIDI


_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(c: str) -> str:
    if c in _SHORT:
        return _SHORT[c]
    o = ord(c)
    return f"\\x{o:02x}" if o <= 0xFF else f"\\u{o:04x}"


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with control characters shown as escapes; with `keep_newlines`, "\\n" stays."""
    if not any(_unsafe(c) for c in text):
        return text
    return "".join(
        c if not _unsafe(c) or (keep_newlines and c == "\n") else _escape(c) for c in text
    )


def quote(value: object, limit: int = 120) -> str:
    """A peer's value for a message: repr-like quotes, controls escaped, at most `limit` chars."""
    text = str(value)
    cut = len(text) > limit
    shown = printable(text[:limit])
    return f"'{shown}'" + (f"... ({len(text)} chars)" if cut else "")


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters (an ellipsis marks the cut); controls left as they are."""
    return text if len(text) <= limit else text[: max(0, limit - 3)] + "..."


def xml_safe(text: str) -> str:
    """`text` with what XML 1.0 cannot carry (2.2 Char) and other controls shown as escapes."""
    return printable(text, keep_newlines=True)
