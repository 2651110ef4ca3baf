"""The REVERSEPROBE_* fallbacks, read here only, and what check's probes ask (the options
check and watch share)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from reverseprobe.config import ENV_IP_SERVICES, ENV_REFLECTOR
from reverseprobe.config.validate import parse_url, split_env_list


def reflector_url(given: str | None, environ: Mapping[str, str]) -> str | None:
    """--reflector, else $REVERSEPROBE_REFLECTOR (validated like the option), else None."""
    if given is not None:
        return given
    value = environ.get(ENV_REFLECTOR)
    return parse_url(value, what=ENV_REFLECTOR) if value else None


def ip_service_urls(
    given: list[str] | tuple[str, ...] | None, environ: Mapping[str, str]
) -> tuple[str, ...] | None:
    """--ip-service (repeatable), else $REVERSEPROBE_IP_SERVICES, else None (the built-in list)."""
    if given:
        return tuple(given)
    items = split_env_list(environ.get(ENV_IP_SERVICES))
    return tuple(parse_url(u, what=f"URL in {ENV_IP_SERVICES}") for u in items) or None


def probe_targets(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, Any]:
    """What check's probes ask, from the options check and watch share (and the environment)."""
    return {
        "port": args.port,
        "aet": args.aet,
        "reflector": reflector_url(args.reflector, environ),
        "ip_services": ip_service_urls(args.ip_services, environ),
        "upnp": not args.no_upnp,
        "public_ip": not args.no_public_ip,
    }
