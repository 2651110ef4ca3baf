"""Shared by the receiver tests: a JPEG Baseline study (pydicom's encapsulate(), no codec: no
peer decodes pixel data on the network path) and dcmqrscp on loopback serving it."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path
from typing import Any

from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit

from conftest import free_port, wait_listening
from dicom_fixtures import (
    DCMQRIDX,
    DCMQRSCP,
    ORTHANC,
    dcmqrscp_config,
    make_study,
    orthanc_config,
    write_study,
)

JPEG_BASELINE = str(JPEGBaseline8Bit)
# A tiny JPEG frame (SOI ... EOI): its content is never decoded on the way.
FRAME = bytes.fromhex("ffd8ffdb004300") + bytes(64) + bytes.fromhex("ffd9")


def jpeg_study(n: int) -> list:  # type: ignore[type-arg]
    """`n` images stored as JPEG Baseline (encapsulated Pixel Data, PS3.5 A.4)."""
    study = make_study(n)
    for ds in study:
        ds.PixelData = encapsulate([FRAME])
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
        ds.PhotometricInterpretation = "YBR_FULL_422"
    return study


@contextmanager
def dcmqrscp(
    tmp: Path,
    study: list,  # type: ignore[type-arg]
    dest: tuple[str, str, int],
    *options: str,
    aet: str = "DQ",
) -> Iterator[int]:
    """dcmqrscp on 127.0.0.1 (port returned) knowing one Move Destination `dest`; `options`
    e.g. -xy: propose JPEG Baseline on its C-STORE sub-associations (default: uncompressed)."""
    port = free_port()
    cfg, db = dcmqrscp_config(tmp / "dq", aet=aet, port=port, hosts={"me": dest})
    files = write_study(tmp / "study", study)
    subprocess.run([DCMQRIDX, str(db), *map(str, files)], check=True, capture_output=True)
    log = open(tmp / "dcmqrscp.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([DCMQRSCP, "-dhl", *options, "-c", str(cfg)], stdout=log, stderr=log)
    try:
        wait_listening(port)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@contextmanager
def orthanc_pacs(
    tmp: Path,
    dest_port: int,
    study: list,  # type: ignore[type-arg]
    *,
    extra: Mapping[str, Any] | None = None,
    aet: str = "MYSCU",
) -> Iterator[int]:
    """Orthanc on loopback (DICOM and HTTP on free ports) knowing our AE as a modality, the
    study stored over its REST API (POST /instances, bytes as given: still JPEG). `extra`:
    more configuration keys, over orthanc_config's (e.g. DICOM TLS, issue 15)."""
    port, http = free_port(), free_port()
    cfg = orthanc_config(tmp / "orthanc", aet="ORTHANC", port=port, http_port=http,
                         modalities={"me": (aet, "127.0.0.1", dest_port)},
                         always_allow=True)  # fmt: skip
    if extra:
        cfg.write_text(json.dumps({**json.loads(cfg.read_text()), **extra}, indent=1))
    log_path = tmp / "orthanc.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([ORTHANC, "--verbose", str(cfg)], stdout=log, stderr=log)
    try:
        end = time.monotonic() + 60
        while "Orthanc has started" not in log_path.read_text():
            assert proc.poll() is None and time.monotonic() < end, log_path.read_text()[-800:]
            time.sleep(0.1)
        wait_listening(port)
        for ds in study:
            buf = BytesIO()
            ds.save_as(buf, enforce_file_format=True)
            rq = urllib.request.Request(f"http://127.0.0.1:{http}/instances", data=buf.getvalue(),
                                        method="POST")  # fmt: skip
            with urllib.request.urlopen(rq, timeout=30) as r:  # loopback Orthanc
                assert json.loads(r.read())["Status"] in ("Success", "AlreadyStored")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


PEERS = Path(__file__).parent / "peers"


def wait_log(log: Path, text: str, timeout: float = 60.0, proc: Any = None) -> None:
    """Poll `log` until it holds `text` (a peer's readiness line): no fixed sleep."""
    end = time.monotonic() + timeout
    while text not in (log.read_text() if log.exists() else ""):
        dead = proc is not None and proc.poll() is not None
        if dead or time.monotonic() > end:
            tail = log.read_text()[-800:] if log.exists() else "(no log)"
            raise TimeoutError(f"{text!r} not in {log.name} within {timeout} s: {tail}")
        time.sleep(0.05)


def port_bound(port: int) -> bool:
    """The port is in LISTEN state (bind without connecting: no association is started,
    which a receiver with maximum_associations=1 would count)."""
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False
