"""Read a file the user named (site file, token file) without letting it hang or exhaust us.

`Path.read_bytes()` blocks forever on a FIFO with no writer and reads /dev/zero until memory
runs out. Here the file is opened non-blocking, must be a regular file (fstat, POSIX
S_ISREG), and at most `max_bytes` are read: anything else is BadInput, one line, exit 2.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from reverseprobe.config import BadInput


def read_regular_file(
    path: str | Path, max_bytes: int, *, what: str, truncate: bool = False
) -> bytes:
    """The bytes of the regular file `path`, at most `max_bytes`; BadInput names `what`.

    A longer file is BadInput, or with `truncate` its first `max_bytes` (the caller judges)."""
    name = str(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(name, flags)
    except OSError as exc:
        raise BadInput(f"cannot read {what} {name!r}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BadInput(f"cannot read {what} {name!r}: not a regular file")
        if st.st_size > max_bytes and not truncate:
            raise BadInput(
                f"cannot read {what} {name!r}: {st.st_size} bytes, more than {max_bytes}"
            )
        chunks: list[bytes] = []
        total = 0
        while total <= max_bytes:
            chunk = os.read(fd, min(65536, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes and truncate:
            return b"".join(chunks)[:max_bytes]
        if total > max_bytes:  # it grew while we read it
            raise BadInput(f"cannot read {what} {name!r}: more than {max_bytes} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise BadInput(f"cannot read {what} {name!r}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
