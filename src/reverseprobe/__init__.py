"""reverseprobe: why a C-MOVE from a PACS cannot reach this workstation, and what to do about it."""

__version__ = "0.1.0"
