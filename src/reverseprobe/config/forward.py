"""argparse + environment -> ForwardConfig, and the values only `forward` takes (lease,
description, --from); bad combinations of its options exit 2."""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
from collections.abc import Mapping

from reverseprobe.config import (
    DEFAULT_KEEP_LEASE,
    DEFAULT_LEASE,
    MAX_DESCRIPTION,
    BadInput,
    ForwardAction,
    ForwardConfig,
    ForwardFamily,
    ForwardMode,
)
from reverseprobe.config.environ import ip_service_urls, reflector_url
from reverseprobe.config.validate import parse_cidr, parse_digits


def parse_description(value: str) -> str:
    """A mapping description (UPnP NewPortMappingDescription): printable ASCII, bounded."""
    if not value.strip():
        raise BadInput(f"invalid --description {value!r}: empty")
    if len(value) > MAX_DESCRIPTION:
        raise BadInput(f"invalid --description {value!r}: longer than {MAX_DESCRIPTION} characters")
    if any(not 0x20 <= ord(ch) <= 0x7E for ch in value):
        raise BadInput(f"invalid --description {value!r}: only printable ASCII")
    return value


def parse_lease(value: str) -> int:
    """A mapping lifetime in seconds; 0 is permanent (UPnP IGD NewLeaseDuration is a ui4)."""
    try:
        n = parse_digits(value, what="lease")
    except BadInput:
        raise BadInput(f"invalid lease {value!r}: not a whole number of seconds") from None
    if not 0 <= n <= 2**31 - 1:
        raise BadInput(f"invalid lease {value!r}: must be 0 (permanent) to 2147483647")
    return n


def parse_from(value: str) -> str:
    """`forward --from`: the one IPv4 source address the mapping admits. UPnP IGD's
    AddPortMapping filters on one NewRemoteHost (IGD WANIPConnection:2 2.4.16), no prefix."""
    try:
        net = ipaddress.ip_network(value.strip(), strict=True)
    except ValueError:
        raise BadInput(f"invalid --from {value!r}: not an IPv4 address or CIDR") from None
    if net.version != 4:
        raise BadInput(f"invalid --from {value!r}: the router maps IPv4 only")
    if net.num_addresses != 1:
        raise BadInput(
            f"invalid --from {value!r}: a router restricts a mapping to one source address "
            "(UPnP NewRemoteHost), not a range; give the PACS's address, e.g. "
            f"{net.network_address}/32"
        )
    return str(net.network_address)


def forward_config(args: argparse.Namespace, environ: Mapping[str, str]) -> ForwardConfig:
    action = ForwardAction(args.action or ForwardAction.ADD.value)
    if args.keep and (action is not ForwardAction.ADD or args.dry_run):
        raise BadInput(
            "invalid --keep: it only goes with adding a mapping (not --list, --remove or --dry-run)"
        )
    lease = args.lease
    if lease is None:
        lease = DEFAULT_KEEP_LEASE if args.keep else DEFAULT_LEASE
    mode = ForwardMode(args.mode or ForwardMode.UPNP.value)
    source = getattr(args, "source", None)
    router_part = args.mode is not None or not getattr(args, "firewall", False)
    remote_host = parse_from(source) if source is not None and router_part else None
    if remote_host is not None and mode is ForwardMode.NATPMP:
        raise BadInput(
            f"invalid --from {remote_host}: NAT-PMP and PCP MAP cannot restrict the source "
            "(RFC 6887: MAP has no remote-peer filter, only PEER has); use --upnp"
        )
    if remote_host is not None and (action is not ForwardAction.ADD):
        raise BadInput(f"invalid --from {remote_host}: it only goes with adding a mapping")
    cfg = ForwardConfig(
        mode=mode,
        port=args.port,
        external_port=args.external_port,
        lease=lease,
        description=None if args.description is None else parse_description(args.description),
        aet=args.aet,
        action=action,
        force=args.force,
        dry_run=args.dry_run,
        keep=args.keep,
        verify=args.verify,
        reflector=reflector_url(args.reflector, environ),
        ip_services=ip_service_urls(args.ip_services, environ),
        timeout=args.timeout,
        remote_host=remote_host,
    )
    return with_family(with_firewall_options(cfg, args), args)


def with_family(cfg: ForwardConfig, args: argparse.Namespace) -> ForwardConfig:
    """forward's --family (issue 15); --family 6 with --list or --from exits 2."""
    family = ForwardFamily(getattr(args, "family", None) or ForwardFamily.BOTH.value)
    if family is ForwardFamily.V6 and cfg.action is ForwardAction.LIST:
        raise BadInput("invalid --family 6: --list reads the router's IPv4 mappings")
    if family is ForwardFamily.V6 and cfg.remote_host is not None:
        raise BadInput(f"invalid --from {cfg.remote_host}: an IPv4 source for an IPv6 pinhole")
    if family is ForwardFamily.V6 and cfg.keep:
        raise BadInput("invalid --keep: it renews the IPv4 mapping; use --family 4 or both")
    return dataclasses.replace(cfg, family=family)


def with_firewall_options(cfg: ForwardConfig, args: argparse.Namespace) -> ForwardConfig:
    """forward's --firewall, --from, --permanent (issue 14); bad combinations exit 2."""
    fw = bool(getattr(args, "firewall", False))
    source = getattr(args, "source", None)
    permanent = bool(getattr(args, "permanent", False))
    if not fw:
        if permanent:
            raise BadInput("invalid --permanent: it only goes with --firewall")
        return cfg
    if cfg.action is ForwardAction.LIST:
        raise BadInput("invalid --firewall: it goes with opening or --remove, not --list")
    only = args.mode is None
    if only and args.keep:
        raise BadInput("invalid --keep: with --firewall alone there is no router mapping to keep")
    return dataclasses.replace(
        cfg,
        firewall=True,
        firewall_only=only,
        source=None if source is None else str(parse_cidr(source, what="--from CIDR")),
        permanent=permanent,
    )
