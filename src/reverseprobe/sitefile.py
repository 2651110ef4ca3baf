"""The checklist's site file (docs/reference.md "checklist"): TOML -> a validated `Site`.

TOML is parsed by tomllib (tomli before Python 3.11); this module only checks what the parsed
document says. Every error is one line that names the file, the line and the key, because the
person reading it is editing that file. tomllib reports lines for syntax errors only, so for a
semantic error (an unknown key, a bad value) the key's line is found by asking tomllib itself:
each textual occurrence of the key is renamed in turn, the text re-parsed, and the occurrence
whose rename moves exactly that key is the one (a key inside a multi-line string or a comment
never does), so no TOML grammar is re-implemented here.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from reverseprobe import config as c
from reverseprobe.config.validate import (
    parse_aet,
    parse_host,
    parse_pacs_entry,
    parse_port,
    parse_study_uid,
    parse_timeout,
    parse_url,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found, no-redef, unused-ignore]

SITE_TARGET = "site"  # the `target` of findings about this PC (a PACS is named by its name)
MAX_PACS = 32
MAX_SITE_BYTES = 1024 * 1024  # a site file is a few KiB; 1 MiB is far more than any needs
_FIND_TRIES = 8  # re-parses, one per occurrence, when renaming all at once did not tell

_SITE_KEYS = (
    "name",
    "aet",
    "port",
    "reflector",
    "ip_services",
    "upnp",
    "public_ip",
    "expect_process",
    "require_listener",
    "check_timeout",
)
_PACS_KEYS = (
    "name",
    "host",
    "port",
    "aet",
    "study",
    "try_cget",
    "grace",
    "timeout",
    "entry",  # issue 13: the entry the PACS already has for us
    "receive_port",  # issue 14: where this PC receives that PACS's C-MOVE ([site] port if unset)
)
_SENTINEL = "reverseprobe_sentinel_key_0x5f"
_SYNTAX_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_T = TypeVar("_T")

Path_ = tuple[str | int, ...]  # a key's path in the document: ("pacs", 1, "port")


@dataclass(frozen=True)
class PacsSpec:
    """One PACS to run move-test against."""

    name: str
    host: str
    port: int
    aet: str
    study: str | None = None
    try_cget: bool = False
    grace: float = 5.0
    timeout: float | None = None  # None: a fair share of what is left of the deadline
    # issue 13: the entry this PACS's administrator made for us (AET@HOST:PORT), checked
    # against the measured one in the checklist's move-test run
    entry: c.PacsEntryGiven | None = None
    receive_port: int | None = None  # None: the site's port


@dataclass(frozen=True)
class Site:
    """This workstation (the C-MOVE destination) and the PACS it must receive from."""

    name: str
    aet: str
    port: int = c.DEFAULT_PORT
    reflector: str | None = None
    ip_services: tuple[str, ...] | None = None
    upnp: bool = True
    public_ip: bool = True
    expect_process: str | None = None
    require_listener: bool = False
    check_timeout: float | None = None
    pacs: tuple[PacsSpec, ...] = ()
    path: Path | None = None


def load_site(path: Path) -> Site:
    """Read and validate a site file; BadInput names the file, line and key."""
    from reverseprobe.userfile import read_regular_file

    raw = read_regular_file(path, MAX_SITE_BYTES, what="site file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise c.BadInput(f"{path}:{line}: not UTF-8 text (TOML files are UTF-8)") from None
    return parse_site(text.removeprefix("\ufeff"), path)  # a BOM, as editors on Windows write


def parse_site(text: str, path: Path) -> Site:
    doc = _parse_toml(text, path)
    return _Validator(text, doc, path).site()


def _parse_toml(text: str, path: Path) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = tomllib.loads(text)
    except RecursionError:  # tomllib recurses per level of nested arrays / inline tables
        raise c.BadInput(f"{path}: TOML syntax error: nested too deeply") from None
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _SYNTAX_AT.search(msg)
        if m:
            why = msg[: m.start()]
            raise c.BadInput(
                f"{path}:{m.group(1)}:{m.group(2)}: TOML syntax error: {why}"
            ) from None
        raise c.BadInput(f"{path}: TOML syntax error: {msg}") from None
    return doc


class _Validator:
    """Walks the parsed document; every error carries the key's path, mapped to its line."""

    def __init__(self, text: str, doc: dict[str, Any], path: Path) -> None:
        self.text = text
        self.doc = doc
        self.path = path

    # -- errors -------------------------------------------------------------------------

    def error(self, where: Path_, message: str) -> c.BadInput:
        line = key_line(self.text, self.doc, where)
        loc = f"{self.path}:{line}" if line else str(self.path)
        return c.BadInput(f"{loc}: {_describe(self.doc, where)}: {message}")

    def value(self, where: Path_, fn: Callable[[], _T]) -> _T:
        """Run a config validator; its BadInput gets the file, line and key prefixed."""
        try:
            return fn()
        except c.BadInput as exc:
            raise self.error(where, str(exc)) from None

    # -- typed getters ----------------------------------------------------------------

    def _get(self, table: Mapping[str, Any], where: Path_, key: str, kind: type, what: str) -> Any:
        if key not in table:
            return None
        v = table[key]
        ok = isinstance(v, kind) and not (kind is not bool and isinstance(v, bool))
        if kind is float:
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        if not ok:
            raise self.error((*where, key), f"must be {what}, not {_toml_type(v)}")
        return v

    def string(self, t: Mapping[str, Any], where: Path_, key: str) -> str | None:
        v: str | None = self._get(t, where, key, str, "a string")
        return v

    def integer(self, t: Mapping[str, Any], where: Path_, key: str) -> int | None:
        v: int | None = self._get(t, where, key, int, "a whole number")
        return v

    def boolean(self, t: Mapping[str, Any], where: Path_, key: str) -> bool | None:
        v: bool | None = self._get(t, where, key, bool, "true or false")
        return v

    def seconds(self, t: Mapping[str, Any], where: Path_, key: str) -> float | None:
        v = self._get(t, where, key, float, "a number of seconds")
        if v is None:
            return None
        return self.value((*where, key), lambda: parse_timeout(v, what=key))

    def required(self, where: Path_, key: str, value: _T | None) -> _T:
        if value is None:
            raise self.error(where, f'the key "{key}" is missing')
        return value

    def known(self, t: Mapping[str, Any], where: Path_, keys: tuple[str, ...]) -> None:
        for k in t:
            if k not in keys:
                near = difflib.get_close_matches(k, keys, n=1, cutoff=0.5)
                hint = f'; did you mean "{near[0]}"?' if near else f" (known: {', '.join(keys)})"
                raise self.error((*where, k), f"unknown key{hint}")

    # -- the document -----------------------------------------------------------------

    def site(self) -> Site:
        self.known(self.doc, (), ("site", "pacs"))
        st = self.doc.get("site")
        if not isinstance(st, dict):
            if st is None:
                raise c.BadInput(f'{self.path}: the [site] table is missing (it needs "aet")')
            raise self.error(("site",), f"must be a table, not {_toml_type(st)}")
        w: Path_ = ("site",)
        self.known(st, w, _SITE_KEYS)
        aet_raw = self.required(w, "aet", self.string(st, w, "aet"))
        aet = self.value((*w, "aet"), lambda: parse_aet(aet_raw))
        port_raw = self.integer(st, w, "port")
        port = c.DEFAULT_PORT
        if port_raw is not None:
            port = self.value((*w, "port"), lambda: parse_port(port_raw))
        reflector_raw = self.string(st, w, "reflector")
        reflector = None
        if reflector_raw is not None:
            reflector = self.value((*w, "reflector"), lambda: parse_url(reflector_raw))
        services = self._url_list(st, w, "ip_services")
        name = self.string(st, w, "name") or self.path.stem
        expect = self.string(st, w, "expect_process")
        if expect is not None and not expect.strip():
            raise self.error((*w, "expect_process"), "must not be empty")
        site = Site(
            name=name.strip() or self.path.stem,
            aet=aet,
            port=port,
            reflector=reflector,
            ip_services=services,
            upnp=_default(self.boolean(st, w, "upnp"), True),
            public_ip=_default(self.boolean(st, w, "public_ip"), True),
            expect_process=expect,
            require_listener=_default(self.boolean(st, w, "require_listener"), False),
            check_timeout=self.seconds(st, w, "check_timeout"),
            pacs=self._pacs_list(),
            path=self.path,
        )
        return site

    def _url_list(self, t: Mapping[str, Any], where: Path_, key: str) -> tuple[str, ...] | None:
        if key not in t:
            return None
        v = t[key]
        if not isinstance(v, list) or not all(isinstance(u, str) for u in v):
            raise self.error((*where, key), f"must be a list of URL strings, not {_toml_type(v)}")
        urls = []
        for u in v:
            try:
                urls.append(parse_url(u))
            except c.BadInput as exc:
                raise self.error((*where, key), str(exc)) from None
        return tuple(urls)

    def _pacs_list(self) -> tuple[PacsSpec, ...]:
        raw = self.doc.get("pacs", [])
        if not isinstance(raw, list) or not all(isinstance(p, dict) for p in raw):
            raise self.error(("pacs",), "must be tables: write each PACS as [[pacs]]")
        if len(raw) > MAX_PACS:
            raise self.error(("pacs",), f"at most {MAX_PACS} PACS per site file")
        out: list[PacsSpec] = []
        seen: dict[str, int] = {}
        for i, t in enumerate(raw):
            spec = self._pacs(i, t)
            key = spec.name.casefold()
            if key in seen:
                raise self.error(
                    ("pacs", i, "name"), f"the name {spec.name!r} is used twice (PACS #{seen[key]})"
                )
            seen[key] = i + 1
            out.append(spec)
        return tuple(out)

    def _pacs(self, i: int, t: Mapping[str, Any]) -> PacsSpec:
        w: Path_ = ("pacs", i)
        self.known(t, w, _PACS_KEYS)
        name = self.required(w, "name", self.string(t, w, "name")).strip()
        if not name or len(name) > 64 or any(ord(ch) < 0x20 for ch in name):
            raise self.error((*w, "name"), "must be 1-64 printable characters")
        if name.casefold() == SITE_TARGET:
            raise self.error((*w, "name"), f'"{SITE_TARGET}" names this PC; choose another name')
        host_raw = self.required(w, "host", self.string(t, w, "host"))
        host = self.value((*w, "host"), lambda: parse_host(host_raw))
        port_raw = self.required(w, "port", self.integer(t, w, "port"))
        port = self.value((*w, "port"), lambda: parse_port(port_raw))
        aet_raw = self.required(w, "aet", self.string(t, w, "aet"))
        aet = self.value((*w, "aet"), lambda: parse_aet(aet_raw, what="PACS AE title"))
        study = self.string(t, w, "study")
        if study is not None:
            self.value((*w, "study"), lambda: parse_study_uid(study))
        recv_raw = self.integer(t, w, "receive_port")
        receive_port = None
        if recv_raw is not None:
            receive_port = self.value((*w, "receive_port"), lambda: parse_port(recv_raw))
        return PacsSpec(
            name=name,
            host=host,
            port=port,
            aet=aet,
            study=study,
            try_cget=_default(self.boolean(t, w, "try_cget"), False),
            grace=_default(self.seconds(t, w, "grace"), 5.0),
            timeout=self.seconds(t, w, "timeout"),
            entry=self._entry(t, w),
            receive_port=receive_port,
        )

    def _entry(self, t: Mapping[str, Any], w: Path_) -> c.PacsEntryGiven | None:
        """`entry = "AET@HOST:PORT"`, validated like check's --pacs-entry."""
        raw = self.string(t, w, "entry")
        if raw is None:
            return None
        return self.value((*w, "entry"), lambda: parse_pacs_entry(raw, what="entry"))


def _default(value: _T | None, default: _T) -> _T:
    return default if value is None else value


def _toml_type(v: Any) -> str:
    for kind, word in (
        (bool, "a boolean"),
        (int, "a whole number"),
        (float, "a number"),
        (str, "a string"),
        (list, "a list"),
        (dict, "a table"),
    ):
        if isinstance(v, kind):
            return word
    return "a date/time"


def _describe(doc: Mapping[str, Any], where: Path_) -> str:
    """'key "port" in [[pacs]] #2 ("main archive")', 'key "aet" in [site]', 'key "x"'."""
    if not where:
        return "document"
    if where[0] == "pacs" and len(where) >= 2 and isinstance(where[1], int):
        i = where[1]
        pacs = doc.get("pacs")
        name = pacs[i].get("name") if isinstance(pacs, list) and i < len(pacs) else None
        label = f"[[pacs]] #{i + 1}" + (f' ("{name}")' if isinstance(name, str) else "")
        return f'key "{where[2]}" in {label}' if len(where) > 2 else label
    if len(where) == 1:
        return f'key "{where[0]}"'
    return f'key "{where[-1]}" in [{".".join(str(p) for p in where[:-1])}]'


def key_line(text: str, doc: Mapping[str, Any], where: Path_) -> int | None:
    """The 1-based line that defines `where` (a key, or an element of an array of tables)."""
    if not where:
        return None
    if isinstance(where[-1], int):  # an [[array]] element: the line of its header
        parent = where[:-1]
        name = parent[-1]
        element = _at(doc, where)

        def moved(d2: Mapping[str, Any], sentinel: str) -> bool:
            holder = _at(d2, parent[:-1])
            return isinstance(holder, Mapping) and holder.get(sentinel) == [element]

        return _find(text, str(name), moved) or key_line(text, doc, parent)
    parent, key = where[:-1], where[-1]
    value = _at(doc, (*parent, key))

    def renamed(d2: Mapping[str, Any], sentinel: str) -> bool:
        holder = _at(d2, parent)
        return (
            isinstance(holder, Mapping)
            and key not in holder
            and sentinel in holder
            and holder[sentinel] == value
        )

    return _find(text, str(key), renamed)


def _find(text: str, key: str, ok: Callable[[Mapping[str, Any], str], bool]) -> int | None:
    """The line of the occurrence of `key` (followed by `=`, `.` or `]`) that tomllib takes as
    the key: every occurrence is renamed at once to a sentinel of its own and the text parsed
    once (linear in the file: one rename and parse per occurrence was quadratic, 54 KB 48 s);
    should that not tell (a rename inside a string changed the value), up to _FIND_TRIES
    occurrences are renamed one at a time."""
    forms = [re.escape(key), re.escape(f'"{key}"'), re.escape(f"'{key}'")]
    rx = re.compile(rf"(?<![\w\"'-])(?:{'|'.join(forms)})(?=[ \t]*[=.\]])")
    matches = list(rx.finditer(text))
    if not matches:
        return None
    pieces: list[str] = []
    last = 0
    for i, m in enumerate(matches):
        pieces += [text[last : m.start()], f"{_SENTINEL}_{i}"]
        last = m.end()
    pieces.append(text[last:])
    try:
        d_all = tomllib.loads("".join(pieces))
    except (tomllib.TOMLDecodeError, RecursionError):
        d_all = None
    if d_all is not None:
        hits = [i for i in range(len(matches)) if ok(d_all, f"{_SENTINEL}_{i}")]
        if len(hits) == 1:
            return _line_of(text, matches[hits[0]].start())
    for m in matches[:_FIND_TRIES]:
        candidate = text[: m.start()] + _SENTINEL + text[m.end() :]
        try:
            d2 = tomllib.loads(candidate)
        except (tomllib.TOMLDecodeError, RecursionError):
            continue
        if ok(d2, _SENTINEL):
            return _line_of(text, m.start())
    return None


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _at(doc: Any, where: Path_) -> Any:
    node = doc
    for part in where:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node
