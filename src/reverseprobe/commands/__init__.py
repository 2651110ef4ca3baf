"""The commands: each builds its plan, runs it, and returns a Report (docs/reference.md)."""
