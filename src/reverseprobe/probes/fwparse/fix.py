"""Moved to diagnosis/firewall_fix.py: the fix is advice, a rule's words (pure)."""

from __future__ import annotations

from reverseprobe.diagnosis.firewall_fix import SOCKETFILTERFW as SOCKETFILTERFW
from reverseprobe.diagnosis.firewall_fix import allow_command as allow_command
