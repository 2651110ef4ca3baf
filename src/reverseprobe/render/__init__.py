"""Renderers: the only code that formats output."""
