"""Where PCP nonces are kept between runs (RFC 6887 11.1: a mapping belongs to its nonce).

A PCP server renews or deletes a mapping only for the nonce that created it, so `forward
--natpmp` run twice, or `forward --remove` in a later run, needs the first run's nonce. It is
kept, per gateway, client address, protocol and internal port, in a small JSON file of this
user: $REVERSEPROBE_STATE_DIR, else $XDG_STATE_HOME/reverseprobe, else
~/.local/state/reverseprobe. A file we cannot read or write only costs the renewal (the nonce
then lives for this run), so every failure here is swallowed and reported as False/None.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

FILE_NAME = "pcp-nonces.json"
_MAX_FILE = 64 * 1024
_NONCE_HEX = 24


def state_dir(environ: Mapping[str, str]) -> Path:
    if environ.get("REVERSEPROBE_STATE_DIR"):
        return Path(environ["REVERSEPROBE_STATE_DIR"])
    if environ.get("XDG_STATE_HOME"):
        return Path(environ["XDG_STATE_HOME"]) / "reverseprobe"
    return Path(environ.get("HOME") or Path.home()) / ".local" / "state" / "reverseprobe"


def key(gateway: str, client: str, protocol: str, internal_port: int) -> str:
    return f"{gateway}|{client}|{protocol.upper()}|{internal_port}"


class NonceStore:
    """The file, with an in-memory copy so this run keeps its nonces when the file fails."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / FILE_NAME
        self._mem: dict[str, bytes | None] = {}

    def _read(self) -> dict[str, object]:
        """The file as a JSON object: {} when missing, too big, or not one."""
        try:
            if self.path.stat().st_size > _MAX_FILE:
                return {}
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): v for k, v in data.items()} if isinstance(data, dict) else {}

    def _drop_key(self, k: str, data: dict[str, object]) -> bool:
        if k not in data:
            return True
        del data[k]
        return self._save(data)

    def _load(self) -> dict[str, str]:
        return {
            k: v
            for k, v in self._read().items()
            if isinstance(v, str) and len(v) == _NONCE_HEX and _is_hex(v)
        }

    def get(self, k: str) -> bytes | None:
        if k in self._mem:
            return self._mem[k]
        v = self._load().get(k)
        return bytes.fromhex(v) if v else None

    def put(self, k: str, nonce: bytes) -> bool:
        self._mem[k] = nonce
        data = self._load()
        data[k] = nonce.hex()
        return self._save(data)

    def drop(self, k: str) -> bool:
        self._mem[k] = None
        return self._drop_key(k, dict(self._load()))

    def _save(self, data: Mapping[str, object]) -> bool:
        """Write atomically (temp file + rename), readable by this user only."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".pcp-", suffix=".tmp")
        except OSError:
            return False
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1, sort_keys=True)
            os.replace(tmp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            return False
        return True


def _is_hex(v: str) -> bool:
    try:
        bytes.fromhex(v)
    except ValueError:
        return False
    return True


PINHOLE_FILE = "pinholes.json"


@dataclass(frozen=True)
class OwnedPinhole:
    """An IPv6 pinhole this program opened: what `forward --remove` may remove, and only that
    (UPnP by its UniqueID, PCP by its nonce, RFC 6887 15)."""

    via: str  # "upnp" | "pcp"
    router: str
    client: str
    protocol: str
    internal_port: int
    unique_id: int | None = None
    nonce: bytes | None = None
    service_url: str | None = None


def pinhole_key(router: str, client: str, protocol: str, internal_port: int, via: str) -> str:
    return f"{via}|{router}|{client}|{protocol.upper()}|{internal_port}"


class PinholeStore(NonceStore):
    """The pinholes we own, in `pinholes.json` beside the PCP nonces (same rules: private,
    atomic, failures swallowed, an in-memory copy for this run)."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.path = directory / PINHOLE_FILE
        self._owned: dict[str, OwnedPinhole | None] = {}

    def _records(self) -> dict[str, dict[str, object]]:
        return {k: v for k, v in self._read().items() if isinstance(v, dict)}

    def get_pinhole(self, k: str) -> OwnedPinhole | None:
        if k in self._owned:
            return self._owned[k]
        return _owned(self._records().get(k))

    def put_pinhole(self, k: str, p: OwnedPinhole) -> bool:
        self._owned[k] = p
        data = self._records()
        data[k] = {
            "via": p.via,
            "router": p.router,
            "client": p.client,
            "protocol": p.protocol,
            "internal_port": p.internal_port,
            "unique_id": p.unique_id,
            "nonce": p.nonce.hex() if p.nonce is not None else None,
            "service_url": p.service_url,
        }
        return self._save(data)

    def drop_pinhole(self, k: str) -> bool:
        self._owned[k] = None
        return self._drop_key(k, dict(self._records()))


def _owned(v: object) -> OwnedPinhole | None:
    """A record of the file, or None for one that is not well-formed (never trusted blindly:
    a wrong UniqueID would remove another program's pinhole)."""
    if not isinstance(v, dict):
        return None
    via, uid, nonce, port = v.get("via"), v.get("unique_id"), v.get("nonce"), v.get("internal_port")
    texts = [v.get(n) for n in ("router", "client", "protocol")]
    if via not in ("upnp", "pcp") or not all(isinstance(t, str) and t for t in texts):
        return None
    if not isinstance(port, int) or not 1 <= port <= 65535:
        return None
    if via == "upnp" and not (isinstance(uid, int) and 0 <= uid <= 65535):
        return None
    raw = None
    if via == "pcp":
        if not (isinstance(nonce, str) and len(nonce) == _NONCE_HEX and _is_hex(nonce)):
            return None
        raw = bytes.fromhex(nonce)
    url = v.get("service_url")
    return OwnedPinhole(
        via=str(via),
        router=str(texts[0]),
        client=str(texts[1]),
        protocol=str(texts[2]),
        internal_port=port,
        unique_id=uid if via == "upnp" and isinstance(uid, int) else None,
        nonce=raw,
        service_url=url if isinstance(url, str) else None,
    )
