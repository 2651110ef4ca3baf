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

    def _load(self) -> dict[str, str]:
        try:
            if self.path.stat().st_size > _MAX_FILE:
                return {}
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {
            str(k): v
            for k, v in data.items()
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
        data = self._load()
        if k not in data:
            return True
        del data[k]
        return self._save(data)

    def _save(self, data: dict[str, str]) -> bool:
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
