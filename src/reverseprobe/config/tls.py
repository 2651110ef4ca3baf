"""--tls and its files (DICOM TLS, PS3.15 B.1), for the commands that associate (issue 15)."""

from __future__ import annotations

import argparse
import os
import re

from reverseprobe.config import BadInput
from reverseprobe.model.tls import TlsSettings


def tls_settings(args: argparse.Namespace) -> TlsSettings | None:
    """--tls and its files; a file option without --tls, or an unreadable file, is bad input."""
    files = {
        "--tls-ca": getattr(args, "tls_ca", None),
        "--tls-cert": getattr(args, "tls_cert", None),
        "--tls-key": getattr(args, "tls_key", None),
    }
    name = getattr(args, "tls_name", None)
    if not getattr(args, "tls", False):
        given = [k for k, v in files.items() if v] + (["--tls-name"] if name else [])
        if given:
            raise BadInput(f"invalid {given[0]}: it needs --tls")
        return None
    for opt, path in files.items():
        if path is not None and not os.access(path, os.R_OK):
            raise BadInput(f"invalid {opt} {path!r}: not a readable file")
    if files["--tls-key"] and not files["--tls-cert"]:
        raise BadInput("invalid --tls-key: it needs --tls-cert")
    if name is not None and not _TLS_NAME.match(name):
        raise BadInput(f"invalid --tls-name {name!r}: not a host name or IP address")
    return TlsSettings(
        ca=files["--tls-ca"], cert=files["--tls-cert"], key=files["--tls-key"], name=name
    )


_TLS_NAME = re.compile(r"^[A-Za-z0-9._:-]{1,253}$")  # a host name (RFC 1123) or an address
