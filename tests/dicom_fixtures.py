"""DICOM test material: tiny synthetic images (pydicom), a Q/R SCP of our own (pynetdicom)
for the faults real PACS will not produce on demand, and config writers for the real ones
(dcmtk dcmqrscp, Orthanc).

    study = make_study(3)                      # in memory
    paths = write_study(tmp_path, study)       # DICOM files, for dcmqrscp/Orthanc
    with QrFixture(study, destinations={"MYSCU": ("127.0.0.1", port)}) as pacs:
        ... move-test --pacs 127.0.0.1:{pacs.port} --pacs-aet FIXTURE ...

Every image is a 4x4 8-bit Secondary Capture with a made-up patient: nothing real.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

QR_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
QR_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
QR_GET = "1.2.840.10008.5.1.4.1.2.2.3"
VERIFICATION = "1.2.840.10008.1.1"


# --- images ---------------------------------------------------------------------------------


def make_study(
    n: int, *, study_uid: str | None = None, patient_id: str = "RP-TEST"
) -> list[Dataset]:
    """`n` tiny images of one study and one series (with file meta, ready to save)."""
    study_uid = study_uid or generate_uid()
    series_uid = generate_uid()
    out = []
    for i in range(n):
        ds = Dataset()
        ds.SOPClassUID = SecondaryCaptureImageStorage
        ds.SOPInstanceUID = generate_uid()
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.PatientID = patient_id
        ds.PatientName = "Synthetic^Test"
        ds.StudyID = "1"
        ds.StudyDate = "20240101"
        ds.StudyTime = "120000"
        ds.AccessionNumber = ""
        ds.Modality = "OT"
        ds.SeriesNumber = 1
        ds.InstanceNumber = i + 1
        ds.Rows = ds.Columns = 4
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
        ds.PixelRepresentation = 0
        ds.PixelData = bytes(range(16))
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
        out.append(ds)
    return out


def write_study(directory: Path, study: Sequence[Dataset]) -> list[Path]:
    """Save each image as <directory>/<SOPInstanceUID>.dcm (absolute paths: dcmqridx keeps
    paths as given)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for ds in study:
        p = (directory / f"{ds.SOPInstanceUID}.dcm").resolve()
        ds.save_as(p, enforce_file_format=True)
        paths.append(p)
    return paths


# --- a Q/R SCP of our own -------------------------------------------------------------------


class QrMode(str, enum.Enum):
    NORMAL = "normal"  # C-STOREs over a new association, pending responses, then final
    FINAL_BEFORE_IMAGES = "final-before-images"  # final success first, images afterwards
    UNKNOWN = "unknown"  # 0xA801 for every destination
    SILENT = "silent"  # never answers the C-MOVE (until stopped)
    ABORT = "abort"  # A-ABORT instead of a C-MOVE response
    ENDLESS = "endless"  # C-STOREs and Pending responses that never end (and ignore C-CANCEL)


@dataclass
class QrFixture:
    """A Study Root Q/R SCP (FIND, MOVE, GET) over in-memory images, on loopback.

    `destinations` maps a Move Destination AE title to (host, port[, associate kwargs]): point
    it at another listener and the fixture reports completed sub-operations that never reach
    move-test ("delivered elsewhere"); `{"ae_title": "OTHER"}` as kwargs makes it call a
    different AE title than the Move Destination. `counts=False` leaves
    NumberOfStudyRelatedInstances out of C-FIND answers (as dcmqrscp does).
    """

    images: Sequence[Dataset]
    destinations: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    mode: QrMode = QrMode.NORMAL
    aet: str = "FIXTURE"
    host: str = "127.0.0.1"
    port: int = 0
    counts: bool = True
    get: bool = True
    moves: int = 0
    cancelled: bool = False  # a C-CANCEL arrived for a C-MOVE (PS3.7 9.3.2.3)
    pdus_received: list[str] = field(default_factory=list)  # A_ABORT_RQ, A_RELEASE_RQ, ...
    _server: Any = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _final_sent: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> QrFixture:
        from pynetdicom import AE, StoragePresentationContexts, evt
        from pynetdicom.presentation import build_context

        logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
        ae = AE(ae_title=self.aet)
        ae.connection_timeout = 2
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
        ae.supported_contexts = [build_context(u) for u in (VERIFICATION, QR_FIND, QR_MOVE)]
        if self.get:
            ae.add_supported_context(QR_GET)
            for cx in StoragePresentationContexts:  # C-GET's C-STOREs: the requestor is SCP
                assert cx.abstract_syntax is not None  # always set in pynetdicom's own lists
                ae.add_supported_context(cx.abstract_syntax, scu_role=True, scp_role=True)
        for cx in StoragePresentationContexts[:100]:
            assert cx.abstract_syntax is not None
            ae.add_requested_context(cx.abstract_syntax)
        handlers: list[evt.EventHandlerType] = [
            (evt.EVT_C_FIND, self._on_find),
            (evt.EVT_C_MOVE, self._on_move),
            (evt.EVT_C_GET, self._on_get),
            (evt.EVT_DIMSE_SENT, self._on_sent),
            (evt.EVT_PDU_RECV, self._on_pdu),
        ]
        self._server = ae.start_server((self.host, self.port), block=False, evt_handlers=handlers)
        self.port = int(self._server.server_address[1])
        self._ae = ae
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)
        if self._server is not None:
            self._server.shutdown()
            for assoc in self._server.active_associations:
                with contextlib.suppress(Exception):
                    assoc.abort()

    @property
    def study_uid(self) -> str:
        return str(self.images[0].StudyInstanceUID)

    def _study(self, uid: str) -> list[Dataset]:
        return [d for d in self.images if not uid or d.StudyInstanceUID == uid]

    def _on_find(self, event: Any) -> Iterator[tuple[int, Dataset | None]]:
        q = event.identifier
        level = str(q.QueryRetrieveLevel)
        uid = str(getattr(q, "StudyInstanceUID", "") or "")
        if level == "STUDY":
            studies: dict[str, int] = {}
            for d in self._study(uid):
                studies[d.StudyInstanceUID] = studies.get(d.StudyInstanceUID, 0) + 1
            for s, n in studies.items():
                r = Dataset()
                r.QueryRetrieveLevel = "STUDY"
                r.StudyInstanceUID = s
                if self.counts:
                    r.NumberOfStudyRelatedInstances = n
                yield 0xFF00, r
        elif level == "IMAGE":
            for d in self._study(uid):
                r = Dataset()
                r.QueryRetrieveLevel = "IMAGE"
                r.StudyInstanceUID = d.StudyInstanceUID
                r.SeriesInstanceUID = d.SeriesInstanceUID
                r.SOPInstanceUID = d.SOPInstanceUID
                r.SOPClassUID = d.SOPClassUID
                yield 0xFF00, r
        yield 0x0000, None

    def _on_pdu(self, event: Any) -> None:
        name = type(event.pdu).__name__
        if name != "P_DATA_TF":
            self.pdus_received.append(name)

    def _on_sent(self, event: Any) -> None:
        msg = event.message
        if type(msg).__name__ == "C_MOVE_RSP" and msg.command_set.Status == 0x0000:
            self._final_sent.set()

    def _on_move(self, event: Any) -> Iterator[Any]:
        self.moves += 1
        images = self._study(str(getattr(event.identifier, "StudyInstanceUID", "") or ""))
        dest = self.destinations.get(str(event.move_destination).strip())
        if self.mode is QrMode.ABORT:
            event.assoc.abort()
            return
        if self.mode is QrMode.SILENT:
            end = time.monotonic() + 60
            while not self._stop.wait(0.02) and time.monotonic() < end:
                if event.is_cancelled:
                    self.cancelled = True
                    break
            return
        if self.mode is QrMode.ENDLESS and dest is not None:
            yield dest
            yield 65535
            while not self._stop.wait(0.05) and event.assoc.is_established:
                yield 0xFF00, images[0]
            return
        if self.mode is QrMode.UNKNOWN or dest is None:
            yield None, None
            return
        if self.mode is QrMode.FINAL_BEFORE_IMAGES:
            self._final_sent.clear()
            t = threading.Thread(
                target=self._send_late,
                args=(event.assoc, dest, str(event.move_destination).strip(), images),
                daemon=True,
            )
            self._threads.append(t)
            t.start()
            yield dest
            yield 0  # no sub-operations: pynetdicom answers success at once
            return
        yield dest
        yield len(images)
        for d in images:
            yield 0xFF00, d

    def _send_late(
        self, move_assoc: Any, dest: tuple[Any, ...], aet: str, images: Sequence[Dataset]
    ) -> None:
        """What a faulty PACS does: the images over their own association, after the final
        response has gone out and the client has left the C-MOVE association."""
        if not self._final_sent.wait(10):
            return
        end = time.monotonic() + 10
        while move_assoc.is_established and time.monotonic() < end and not self._stop.is_set():
            time.sleep(0.01)
        kwargs = {"ae_title": aet, **(dest[2] if len(dest) > 2 else {})}
        assoc = self._ae.associate(dest[0], dest[1], **kwargs)
        if assoc.is_established:
            for d in images:
                assoc.send_c_store(d)
            assoc.release()

    def _on_get(self, event: Any) -> Iterator[Any]:
        images = self._study(str(getattr(event.identifier, "StudyInstanceUID", "") or ""))
        yield len(images)
        for d in images:
            yield 0xFF00, d


class SinkScp:
    """A plain Storage SCP that counts what it receives: the "other receiver"."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, aet: str = "SINK") -> None:
        self.host, self.port, self.aet = host, port, aet
        self.received = 0
        self.called: list[str] = []
        self._lock = threading.Lock()
        self._server: Any = None

    def __enter__(self) -> SinkScp:
        from pynetdicom import AE, AllStoragePresentationContexts, evt

        ae = AE(ae_title=self.aet)
        ae.supported_contexts = AllStoragePresentationContexts

        def on_store(event: Any) -> int:
            with self._lock:
                self.received += 1
            return 0x0000

        self._server = ae.start_server(
            (self.host, self.port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
        )
        self.port = int(self._server.server_address[1])
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()


# --- real PACS: config writers --------------------------------------------------------------

DCMQRSCP = "/usr/bin/dcmqrscp"
DCMQRIDX = "/usr/bin/dcmqridx"
ORTHANC = "/usr/sbin/Orthanc"
STORESCU = "/usr/bin/storescu"
STORESCP = "/usr/bin/storescp"
MOVESCU = "/usr/bin/movescu"


def dcmqrscp_config(
    directory: Path,
    *,
    aet: str,
    port: int,
    hosts: Mapping[str, tuple[str, str, int]],
    max_associations: int = 16,
) -> tuple[Path, Path]:
    """(config file, database dir) for dcmqrscp; `hosts`: {name: (AET, host, port)}. The
    database accepts C-STORE from any AE (`ANY`), so images can be loaded with storescu."""
    directory.mkdir(parents=True, exist_ok=True)
    db = (directory / "db").resolve()
    db.mkdir(exist_ok=True)
    table = "\n".join(f"{name} = ({a}, {h}, {p})" for name, (a, h, p) in hosts.items())
    cfg = directory / "dcmqrscp.cfg"
    cfg.write_text(
        f"NetworkTCPPort  = {port}\nMaxPDUSize      = 16384\n"
        f"MaxAssociations = {max_associations}\n\n"
        f"HostTable BEGIN\n{table}\nHostTable END\n\nVendorTable BEGIN\nVendorTable END\n\n"
        f"AETable BEGIN\n{aet} {db} RW (10000, 1024mb) ANY\nAETable END\n"
    )
    return cfg, db


def orthanc_config(
    directory: Path,
    *,
    aet: str,
    port: int,
    http_port: int,
    modalities: Mapping[str, tuple[str, str, int]],
    synchronous: bool = True,
    always_allow: bool = False,
    scu_timeout: int = 3,
) -> Path:
    """A foreground Orthanc's config: its own storage, HTTP on loopback only (REST upload),
    `modalities` {id: (AET, host, port)}. With `always_allow`, unknown calling AEs may C-FIND
    and C-MOVE (then a missing destination is the only thing wrong)."""
    directory.mkdir(parents=True, exist_ok=True)
    cfg = {
        "Name": "reverseprobe-test",
        "StorageDirectory": str((directory / "db").resolve()),
        "IndexDirectory": str((directory / "db").resolve()),
        "DicomAet": aet,
        "DicomPort": port,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomModalities": {k: list(v) for k, v in modalities.items()},
        "DicomScuTimeout": scu_timeout,
        "SynchronousCMove": synchronous,
        "DicomAlwaysAllowFind": always_allow,
        "DicomAlwaysAllowMove": always_allow,
        "DicomAlwaysAllowGet": always_allow,
        "Plugins": [],
        "ConcurrentJobs": 1,
        "StableAge": 1,
    }
    path = directory / "orthanc.json"
    path.write_text(json.dumps(cfg, indent=1))
    return path


def storescu_argv(host: str, port: int, aet: str, files: Sequence[Path]) -> list[str]:
    """dcmtk storescu sending `files` in one association (loads dcmqrscp or Orthanc)."""
    return [STORESCU, "-aet", "LOADER", "-aec", aet, host, str(port), *map(str, files)]
