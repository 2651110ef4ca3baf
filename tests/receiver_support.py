"""Shared by the receiver tests: a JPEG Baseline study (pydicom's encapsulate(), no codec: no
peer decodes pixel data on the network path) and dcmqrscp on loopback serving it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit

from conftest import free_port, wait_listening
from dicom_fixtures import DCMQRIDX, DCMQRSCP, dcmqrscp_config, make_study, write_study

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
