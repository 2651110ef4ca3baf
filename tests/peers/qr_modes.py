"""Q/R behaviours a real PACS shows and dcmtk/Orthanc cannot be made to: on top of the
pynetdicom QrFixture (tests/dicom_fixtures.py), a C-MOVE that stops sending pending responses
after the first sub-operation, and one answered 0x0122 (SOP Class not supported, PS3.7 C)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dicom_fixtures import QrFixture

STALL = "stall"
NOT_SUPPORTED = "not-supported"


@dataclass
class QrModes(QrFixture):
    behaviour: str = STALL

    def _on_move(self, event: Any) -> Iterator[Any]:
        self.moves += 1
        images = self._study(str(getattr(event.identifier, "StudyInstanceUID", "") or ""))
        dest = self.destinations.get(str(event.move_destination).strip())
        yield dest
        yield len(images)
        if self.behaviour == NOT_SUPPORTED:
            yield 0x0122, None
            return
        yield 0xFF00, images[0]  # one sub-operation, its pending response, then silence
        end = time.monotonic() + 60
        while not self._stop.wait(0.02) and time.monotonic() < end:
            if event.is_cancelled:
                self.cancelled = True
                yield 0xFE00, None  # Cancel (PS3.4 C.4.2.1.5)
                return
            if not event.assoc.is_established:
                return
