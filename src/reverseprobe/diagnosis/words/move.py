"""The words of move-test's C-MOVE and the receiver's answers (diagnosis/move.py,
diagnosis/receiver.py)."""

from __future__ import annotations

from collections.abc import Mapping

from reverseprobe.diagnosis.words import Text

_T = Text

TEXTS: Mapping[str, Mapping[str, Text]] = {}
