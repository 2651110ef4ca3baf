"""A test CA and certificates made with the openssl CLI (DICOM TLS tests, issue 15)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _run(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(d: Path, name: str = "TestCA") -> Path:
    _run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.pem",
        "-days",
        "30",
        "-subj",
        f"/CN={name}",
        cwd=d,
    )
    return d / f"{name}.pem"


def make_server(d: Path, ca: str, name: str, san: str) -> tuple[Path, Path]:
    """A certificate for `san` (e.g. "IP:127.0.0.1") signed by the CA `ca`: (cert, key)."""
    _run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.csr",
        "-subj",
        f"/CN={name}",
        cwd=d,
    )
    (d / f"{name}.ext").write_text(f"subjectAltName={san}\n")
    _run(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        f"{ca}.pem",
        "-CAkey",
        f"{ca}.key",
        "-CAcreateserial",
        "-out",
        f"{name}.pem",
        "-days",
        "30",
        "-extfile",
        f"{name}.ext",
        cwd=d,
    )
    return d / f"{name}.pem", d / f"{name}.key"
