"""The words of the network between: public address, NAT, the router's UPnP, the
reflector's dial-back, the local firewall (diagnosis/network.py, inbound.py, story.py)."""

from __future__ import annotations

from collections.abc import Mapping

from reverseprobe.diagnosis.words import DEFAULT, Text

_T = Text

# sentences more than one code's template shares
DYNAMIC_NOTE = (
    "If {public} is a dynamic address (most home and many business lines), it changes "
    "when the line reconnects and the PACS entry breaks: ask the ISP for a static address, "
    "or give the PACS a dynamic-DNS name that follows it."
)
_BY_HAND = "forward TCP {port} to {lan}:{port} by hand in {admin}"
_UPNP_ON = (
    "Turn on UPnP in the router so `reverseprobe forward --upnp --port {port}` "
    "can open the port, or " + _BY_HAND + "."
)
_UPNP_FAULTY = "The router's UPnP service is faulty: restart the router, or " + _BY_HAND + "."

TEXTS: Mapping[str, Mapping[str, Text]] = {
    "PUBLIC_IP_UNKNOWN": {
        variant: _T(
            summary,
            "Check that this PC reaches the internet over HTTPS (a proxy-only network "
            "blocks the services), pass --ip-service URL of a service you trust, or read "
            "the WAN address on the status page of {gateway}.",
        )
        for variant, summary in (
            (DEFAULT, "No source could tell this network's public address."),
            ("reason", "No source could tell this network's public address ({reason})."),
        )
    },
    "PUBLIC_IP_INCONSISTENT": {
        DEFAULT: _T(
            "Sources disagree about the public address: {listing}.",
            "A multi-WAN router, a proxy or a VPN makes services see different addresses, "
            "and a PACS can dial only one. Find the line the PACS's connection will arrive "
            "on (turn off the VPN/proxy for the test, or ask your network administrator), "
            "and give the PACS that address; {address} got the most votes.",
        ),
    },
    "NAT_DOUBLE": {
        # router: the router's external address shows it (v6_note: what IPv6 adds, or "")
        "router": _T(
            "Double NAT: {why}. Forwarding TCP {port} on your own router "
            "cannot make this PC reachable over IPv4 on its own.{v6_note}",
            "Ask the ISP for a public IPv4 address (or put the ISP's modem/router in "
            "bridge mode so your router gets it), then forward TCP "
            "{port} to {lan}:{port}. Otherwise the outer NAT must forward the port too, "
            "or connect the sites by VPN, or use C-GET where the PACS supports it.",
        ),
        # path: a hop in 100.64/10 on the way out (diagnosis/virtual.py path_rules)
        "path": _T(
            "Double NAT: the path toward {toward} crosses {shared}, in "
            "100.64.0.0/10, the shared space of carrier-grade NAT (RFC 6598): the ISP "
            "translates this network's address again. Forwarding on your own router cannot "
            "make this PC reachable on its own.",
            "Ask the ISP for a public IPv4 address (or a port forward on its carrier-grade NAT), "
            "or connect the sites by VPN, or use C-GET where the PACS supports it.",
        ),
    },
    "NAT_NONE": {
        DEFAULT: _T(
            "The public address {public} is on this PC: no NAT in between, the PACS can "
            "dial it directly.",
            DYNAMIC_NOTE.replace("{public}", "{dynamic}"),
        ),
    },
    "NAT_DETECTED": {
        "public": _T(
            "Behind NAT: this PC is {lan}, the internet sees {public}. A PACS outside "
            "this network must dial {public}, and the router must forward TCP {port} "
            "to {lan}.{v6_note}",
            "Give the PACS administrator {public} port {port} (not {lan}), and forward "
            "TCP {port} on the router to {lan}:{port}: `reverseprobe forward --upnp "
            "--port {port}`, or by hand in {admin}. " + DYNAMIC_NOTE,
        ),
        "private_only": _T(
            "This PC's address {lan} is private: a PACS outside this network cannot "
            "dial it, and the public address is not known.",
            "Find the public address (see PUBLIC_IP_UNKNOWN), give it to the PACS "
            "administrator with port {port}, and forward TCP {port} on the router to "
            "{lan}:{port} (`reverseprobe forward --upnp --port {port}`, or {admin}).",
        ),
    },
    "UPNP_UNAVAILABLE": {
        # natpmp: the NAT-PMP sentence where NAT-PMP answered, or ""
        variant: _T(summary + "{natpmp}", fix)
        for variant, summary, fix in (
            ("no_igd", "No UPnP IGD answered (asked {asked}).", _UPNP_ON),
            (
                "garbage",  # it is there and broken (or hostile): not "no UPnP" (issue 16)
                "The router's UPnP IGD at {location} answered garbage, so its port "
                "mappings could not be read: {error}.",
                _UPNP_FAULTY,
            ),
            (
                "timeout",
                "The router's UPnP IGD at {location} answered discovery, then stopped "
                "answering: {error}.",
                _UPNP_FAULTY,
            ),
            ("unusable", "The UPnP IGD at {location} could not be used: {error}.", _UPNP_ON),
        )
    },
    "UPNP_MAPPING_MISSING": {
        # double: the NAT_DOUBLE sentence where the router sits behind another NAT, or ""
        "none": _T(
            "The router has no mapping for TCP {port}: a connection to the public "
            "address on port {port} stops at the router.{double}",
            "`reverseprobe forward --upnp --port {port}` (maps TCP {port} to {lan}), or "
            + _BY_HAND
            + ".",
        ),
        **{
            variant: _T(
                summary + "{double}",
                "Replace it: `reverseprobe forward --upnp --port {port} --force`, or "
                + _BY_HAND
                + ".",
            )
            for variant, summary in (
                (
                    "other_port",
                    "The router forwards TCP {port} to this PC's port {internal_port}, not {port}.",
                ),
                (
                    "disabled",
                    "The router forwards TCP {port} to this PC, but the mapping is disabled.",
                ),
            )
        },
    },
    "UPNP_MAPPING_OTHER_HOST": {
        DEFAULT: _T(
            "The router forwards TCP {port} to {client}:{internal_port} "
            "({description!r}), not to this PC ({lan}): the PACS's connection reaches "
            "that machine instead.",
            "Remove or change that mapping in {admin} (or, if {client} does not "
            "need it, `reverseprobe forward --upnp --port {port} --force`), or give this "
            "PC another port and register that port at the PACS.",
        ),
    },
    "UPNP_MAPPING_OK": {
        "lease": _T(
            "The router forwards TCP {port} to this PC ({client}:{port}, "
            "{description!r}, lease {lease} s left).{double}",
            "A mapping with a lease ends when it runs out or the router restarts: renew it "
            "with `reverseprobe forward --upnp`, or make a permanent rule in the router.",
        ),
        "permanent": _T(
            "The router forwards TCP {port} to this PC ({client}:{port}, "
            "{description!r}, permanent).{double}",
        ),
    },
    # the reflector's dial-back (diagnosis/inbound.py)
    "INBOUND_NOT_TESTED": {
        "unfinished": _T(
            "The echo-back probe did not finish ({status}): {reason}.",
            "Re-run with a longer --timeout; if it persists, check that the reflector "
            "answers (curl URL/healthz).",
        ),
        "skipped": _T(
            "Inbound reachability of port {port} was not tested: {reason}.",
            "Run `reverseprobe reflector` on a server outside this network (best beside "
            "the PACS) and pass --reflector URL, or set REVERSEPROBE_REFLECTOR; only a "
            "connection from outside proves that the PACS can connect back.",
        ),
        # refused:<why>: the reflector answered our request with an HTTP error
        **{
            variant: _T("The reflector {reflector} refused the probe: {reason}.", fix)
            for variant, fix in (
                (
                    "refused:401",
                    "The reflector wants a bearer token: give it in the URL as "
                    "https://:TOKEN@host:8470/ (better in REVERSEPROBE_REFLECTOR than on the "
                    "command line).",
                ),
                (
                    "refused:403",
                    "The reflector does not dial port {port}: ask its operator to add it to "
                    "--allow-ports, or use port {dicom_port}.",
                ),
                (
                    "refused:busy",
                    "The reflector is rate limiting or busy: wait a minute and re-run.",
                ),
                (
                    "refused",
                    "Check that the URL names a reverseprobe reflector of a compatible version.",
                ),
            )
        },
        # deadline: the probe ran out of time (diagnosis/story.py); :need when its need is known
        **{
            variant: _T("The echo-back probe was not measured in time ({had:.1f} s).", fix)
            for variant, fix in (
                (
                    "deadline:need",
                    "Re-run with --timeout {need:.0f} or more: {names} need about {need:.0f} s.",
                ),
                (
                    "deadline:need:one",  # one probe was cut short: singular
                    "Re-run with --timeout {need:.0f} or more: {names} needs about {need:.0f} s.",
                ),
                ("deadline", "Re-run with a longer --timeout: {names} did not finish."),
            )
        },
        "no_result": _T(
            "The reflector gave no result for port {port}.",
            "Re-run; if it persists, the reflector is not a compatible version.",
        ),
    },
    "REFLECTOR_UNREACHABLE": {
        DEFAULT: _T(
            "The reflector {reflector} did not answer properly: {reason}.",
            "Check the URL, that the reflector runs (its /healthz answers) and that this network "
            "lets HTTP(S) out to it; inbound reachability was not tested.",
        ),
    },
    "INBOUND_OK": {
        "nonce": _T(
            "The reflector connected to {dialed} and reached this PC: the temporary listener "
            "saw the one-time calling AE title arrive."
        ),
        "fingerprint": _T(
            "The reflector connected to {dialed} and reached this PC: the listener answered "
            "it exactly as it answers this PC."
        ),
        "unconfirmed": _T(
            "The reflector connected to {dialed} and reached a listener ({dicom}), "
            "but could not confirm that it is this PC's listener.",
            "To prove it, stop the receiver on port {port} and re-run `check`: it then "
            "holds the port itself and has the reflector call it with a one-time AE title.",
        ),
    },
    "INBOUND_OTHER_HOST": {
        # by how this PC's own listener was told apart (InboundMode)
        variant: _T(
            "The reflector's connection to {dialed} was accepted by another listener ({who}), "
            + why
            + ": the router forwards port {port} to another machine, or a device on the way "
            "answers.",
            "Point the router's forwarding rule for TCP {port} at this PC ({here}): "
            "`reverseprobe forward --upnp --port {port} --force` where UPnP is on, or the "
            "router's admin page; the images would otherwise go to that other machine.",
        )
        for variant, why in (
            (
                "temporary_listener",
                "but the temporary listener on this PC never saw its one-time AE title",
            ),
            ("not_held", "although nothing listens on that port on this PC"),
            ("fingerprint", "but this PC's listener answers as {local}"),
        )
    },
    "PORT_ISP_BLOCKED": {
        # by how the dial-back to the low port failed; the high control port got through
        variant: _T(
            "Measured: the reflector's connection to {dialed} "
            + how
            + ", while the high control port {control_port} reached this PC through the "
            "same router: the ISP (or a filter beyond the router) blocks inbound port {port}.",
            "Use port {dicom_port} (the IANA-registered DICOM port) for the "
            "receiver, forward that port to this PC ({here}), and give the PACS "
            "administrator the new port.",
        )
        for variant, how in (("timeout", "timed out"), ("refused", "was refused"))
    },
    "INBOUND_REFUSED": {
        # temporary_listener: our own listener held the port, so something listened
        variant: _T(
            "The reflector's connection to {dialed} was refused: the router has no "
            "forwarding for port {port}" + tail,
            "Forward TCP port {port} on the router to this PC ({here}): "
            "`reverseprobe forward --upnp --port {port}` where UPnP is on, else the "
            "router's admin page; then start the receiver on port {port} and re-run.",
        )
        for variant, tail in ((DEFAULT, ", or nothing listens on it."), ("temporary_listener", "."))
    },
    "INBOUND_TIMEOUT": {
        # timed_out | icmp, and ":low_port" where the ISP may block a port below 1024
        f"{variant}{low}": _T(
            "The reflector's connection to {dialed} "
            + how
            + ": a firewall filters it (this PC's, the router's, or one between the sites)"
            + tail,
            "Allow inbound TCP port {port} in this PC's firewall and check that the "
            "router forwards it to this PC ({here}); where the PACS is behind its own "
            "firewall, its administrator must allow connections out to port {port}.",
        )
        for variant, how in (
            ("timed_out", "timed out"),
            ("icmp", "was rejected with an ICMP error"),
        )
        for low, tail in (("", "."), (":low_port", ", or the ISP blocks port {port}."))
    },
    "REFLECTOR_INSIDE": {
        DEFAULT: _T(
            "The reflector {reflector} is inside this network: {why}. Its dial-back is shown "
            "but proves nothing about a connection from outside (dial-back: {seen}).",
            "Run `reverseprobe reflector` on a server outside this network (best beside the PACS) "
            "and pass its URL with --reflector; only a connection from outside proves that the "
            "PACS can connect back.",
        ),
    },
}

# the local firewall, per address family (diagnosis/network.py firewall_rules). A ":family"
# variant names the family ("Over IPv6, the ..."); {name}: the firewall's display name;
# {where}: " (chain inet filter input)" or ""; {tail}: FIREWALL_OTHER_OPEN/_MEASURED sentences;
# {command}: diagnosis/firewall_fix.allow_command
FIREWALL_OTHER_OPEN = " Over {family} it lets the connection in."
FIREWALL_OTHER_OPEN_RULE = " Over {family} it lets the connection in (rule `{rule}`)."
FIREWALL_MEASURED = " The reflector's dial-back came over {family}."
_BY_FORWARD = (
    "Run `reverseprobe forward --firewall --port {port}` (--dry-run shows what it "
    "runs, --remove undoes it), or allow the port by hand: {command}."
)
FIREWALL_TEXTS: Mapping[str, Mapping[str, Text]] = {
    code: {
        f"{variant}{tag}": _T(lead + summary + "{tail}", fix)
        for variant, summary, fix in rows
        for tag, lead in (("", "The "), (":family", "Over {family}, the "))
    }
    for code, rows in (
        (
            "FIREWALL_BLOCKS",
            (
                (
                    "blocked",
                    "{name} firewall{where} refuses inbound TCP {port}: rule `{rule}`.",
                    "Allow the port: {command}.",
                ),
                (
                    # {noted}: " (the chain's note)" or ""
                    "default_drop",
                    "{name} firewall{where} is active and no rule allows inbound TCP {port}: "
                    "its default refuses the connection{noted}.",
                    _BY_FORWARD,
                ),
            ),
        ),
        (
            "FIREWALL_MAY_BLOCK",
            (
                (
                    # unread: what could not be read, so the default may not be the answer
                    "default_drop",
                    "{name} firewall{where} is active and no rule allows inbound TCP {port}: "
                    "its default refuses the connection{noted}. Not everything could be read: "
                    "{unread}.",
                    _BY_FORWARD,
                ),
                (
                    "conditional",
                    "{name} firewall{where} allows inbound TCP {port} only conditionally: "
                    "{condition}.",
                    "Make sure the PACS's connection meets that condition (its address is in "
                    "the allowed range), or allow the port for every source: {command}.",
                ),
            ),
        ),
    )
}
