"""`forward`'s words (diagnosis/forward.py, commands/forward.py), beside check's under the
same codes."""

from __future__ import annotations

from collections.abc import Mapping

from reverseprobe.diagnosis.words import DEFAULT, Text

_T = Text


# `forward`'s words (diagnosis/forward.py, commands/forward.py), beside check's under the
# same codes. {manual}: the manual procedure (forward.manual_steps); {via}: upnp | natpmp | pcp
_NO_READBACK = (
    "NAT-PMP/PCP cannot read a mapping back: the router's answer is the proof; --verify "
    "tests it from outside."
)
_V6_FIX = (
    "IPv6 has no NAT: the router's IPv6 firewall decides. Open TCP port {port} for {addr} in the "
    "router's IPv6 firewall page ({admin}), or let the PACS reach this PC over IPv4 (the "
    "port mapping)."
)
TEXTS: Mapping[str, Mapping[str, Text]] = {
    "UPNP_UNAVAILABLE": {
        "forward": _T(
            "No router answered a port mapping request ({tried}).",
            "Turn on UPnP IGD (or NAT-PMP/PCP) in the router, or forward the port by hand. "
            "{manual}",
        ),
    },
    "NAT_DOUBLE": {
        "forward:router": _T(
            "The router is behind another NAT: {why}. A mapping on it alone cannot make this "
            "PC reachable from the internet.",
            "{manual}",
        ),
        "forward:differs": _T(
            "The router's external address {external_ip} differs from the public "
            "address {public_ip} the IP services see: another NAT, a VPN or multi-WAN "
            "lies beyond the router.",
            "{manual}",
        ),
    },
    "ROUTER_MAPPINGS": {
        # rows: one "\n    PROTO EXT -> CLIENT:PORT 'description' ..." per mapping
        "listing": _T("The router holds {count} port mapping(s):{rows}"),
        "listing:none": _T("The router holds {count} port mapping(s)."),
        "not_listed": _T(
            "The router's mappings were not listed: {reason}.",
            "Use --upnp --list where the router speaks UPnP IGD.",
        ),
    },
    "PORT_PRIVILEGED": {
        "forward": _T(
            "External port {port} is below 1024: many ISPs block inbound "
            "connections to such ports.",
            "Prefer {dicom_port} (the IANA-registered DICOM port); test it with --verify and a "
            "reflector.",
        ),
    },
    "UPNP_MAPPING_OK": {
        # done: "added", "renewed", ...; lease: "lease N s" | "permanent"; expiry: "" or a clause
        **{
            variant: _T(
                "The router forwards {external}:{port} ({via}) to this PC ({client}:"
                "{internal_port}): {done}; {lease}{expiry}.",
                fix,
            )
            for variant, fix in (("forward", ""), ("forward:unverified", _NO_READBACK))
        },
        "listed": _T(
            "The router forwards TCP port {port} to this PC ({client}:{internal_port}), {lease}.",
        ),
        # the IPv6 pinhole (issue 15); how: "UPnP pinhole ID" | "PCP"; back: how it is known
        "v6": _T(
            "The router's IPv6 firewall admits TCP port {port} to this PC {addr} "
            "({how}, {action}{lease}; {back}).",
            "A PACS that reaches you over IPv6 dials {addr} port {port} (no NAT: "
            "the address is this PC's own). Remove it with `reverseprobe forward --remove`.",
        ),
    },
    "FORWARD_PORT_CHANGED": {
        DEFAULT: _T(
            "The router mapped external port {assigned}, not "
            "{asked} as asked (port {asked} is taken or not allowed "
            "there).",
            "Give the PACS administrator port {assigned}, or free port "
            "{asked} on the router and run again.",
        ),
    },
    "UPNP_MAPPING_OTHER_HOST": {
        **{
            variant: _T(
                "The router already forwards TCP port {port} to {held_by}"
                + named
                + ", not to this PC: left untouched.",
                "If {held_by} no longer needs it, remove it there (or re-run with --force to "
                "take it over); otherwise choose another --external-port and give that port to "
                "the PACS administrator.",
            )
            for variant, named in (("held", ""), ("held:named", " ('{description}')"))
        },
        "listed": _T(
            "The router forwards TCP port {port} to {held_by}, not to this PC.",
            "Free it there, or choose another --external-port.",
        ),
        # refused: a router in secure mode (UPnP IGD: 606 Action not authorized)
        "refused": _T(
            "The router forwards TCP port {port} to {held_by} and refused to "
            "remove that mapping ({error_code} {error_name}): routers in secure mode let "
            "only the host that made a mapping delete it. Left untouched.",
            "Remove it from {held_by} (`reverseprobe forward --remove` there) or in the "
            "router's admin page, or choose another --external-port. {manual}",
        ),
    },
    "UPNP_MAPPING_MISSING": {
        "removed": _T("Removed: the router no longer forwards TCP port {port} ({via})."),
        "removed:note": _T(
            "Removed: the router no longer forwards TCP port {port} ({via}). ({note})"
        ),
        "absent": _T("Nothing to remove: the router holds no mapping for TCP port {port}."),
        **{
            variant: _T(
                "Dry run: would forward TCP port {port} to this PC ({client}:{internal_port}) "
                "via {via}" + extra + "; nothing changed.",
                "Run again without --dry-run.",
            )
            for variant, extra in (
                ("would_add", ""),
                ("would_add:replacing", " (replacing the mapping to {held_by})"),
            )
        },
        "would_remove": _T(
            "Dry run: would remove the mapping of TCP port {port} via {via}; nothing changed."
        ),
        "listed": _T(
            "The router has no mapping for TCP port {port}.",
            "Run `reverseprobe forward` (without --list) to add it.",
        ),
        # failed:<remove|forward>, and :error_fix where the router's error code has a fix
        **{
            f"failed:{doing}{tag}": _T(
                "Could not "
                + doing
                + " TCP port {port} to this PC ({client}:{internal_port}) ({via}): {why}.",
                lead + "{manual}",
            )
            for doing in ("remove", "forward")
            for tag, lead in (("", ""), (":error_fix", "{error_fix}. "))
        },
        # the IPv6 pinhole (issue 15)
        "v6:not_asked": _T("No IPv6 pinhole asked: {reason}.", _V6_FIX),
        "v6:none": _T("No IPv6 pinhole: {reason}.", _V6_FIX),
        "v6:removed": _T("The IPv6 pinhole for {addr} port {port} was removed."),
        "v6:absent": _T("No IPv6 pinhole of reverseprobe to remove: {reason}."),
        "v6:would_add": _T("Would open an IPv6 pinhole for {addr} port {port}."),
        "v6:would_remove": _T("Would remove the IPv6 pinhole {unique_id} for {addr}."),
        "v6:not_offered": _T(
            "The router offers no IPv6 pinhole: {reason}. The IPv4 part is not affected.",
            _V6_FIX,
        ),
        "v6:not_offered:alone": _T("The router offers no IPv6 pinhole: {reason}.", _V6_FIX),
        **{
            f"v6:failed{tag}": _T(
                "The IPv6 pinhole for {addr} port {port} was not opened: {reason}.",
                lead + _V6_FIX,
            )
            for tag, lead in (("", ""), (":error_fix", "{error_fix}. "))
        },
    },
    "INBOUND_NOT_TESTED": {
        "forward:skipped": _T(
            "Inbound reachability was not tested: {reason}.",
            "Run `reverseprobe reflector` outside this network and pass "
            "--reflector URL (or set REVERSEPROBE_REFLECTOR).",
        ),
    },
}
