"""The words of the PACS side: reaching it, its answers, its entry for us, containers and
VMs, the checklist (diagnosis/pacs.py, pacs_entry_check.py, virtual.py, checklist_run.py)."""

from __future__ import annotations

from collections.abc import Mapping

from reverseprobe.diagnosis.words import DEFAULT, Text

_T = Text

TEXTS: Mapping[str, Mapping[str, Text]] = {
    # the PACS side of move-test (diagnosis/pacs.py); {pacs} is "AET at host:port"
    "PACS_UNREACHABLE": {
        "unresolved": _T(
            "The PACS host name {host!r} does not resolve: {reason}.",
            "Check the spelling and this PC's DNS (or VPN), or give the PACS's IP address "
            "in --pacs.",
        ),
        # by how the TCP connect ended (PacsTcp)
        **{
            variant: _T("No TCP connection to the PACS {pacs}: {tcp} ({reason}).", fix)
            for variant, fix in (
                (
                    "refused",
                    "Nothing listens on {host}:{port}: check the PACS's "
                    "DICOM port with its administrator (104 and 11112 are usual) and that it runs.",
                ),
                (
                    "timeout",
                    "The connection to {host}:{port} timed out: a firewall "
                    "drops it, or the address is wrong, or the VPN to the PACS is down.",
                ),
                (
                    "unreachable",
                    "No route to {host}: check the address, this PC's network "
                    "and any VPN to the PACS.",
                ),
            )
        },
        "not_dicom": _T(
            "{host}:{port} accepts TCP but does not answer DICOM: {reason}.",
            "Check the PACS's DICOM port with its administrator; {port} may be "
            "another service (HTTP, TLS-only DICOM).",
        ),
    },
    "PACS_REJECTED_ASSOCIATION": {
        # A-ASSOCIATE-RJ (PS3.8 9.3.4): source 1 reason 7 / 3 / other, result 2 (transient)
        variant: _T(
            "The PACS {pacs} rejected the association ({what}): {result_str}, "
            "{source_str}, {reason_str} "
            "(result {result}, source {source}, reason {reason}).",
            fix,
        )
        for variant, fix in (
            (
                "called_aet",
                "Use the PACS's exact AE title (case matters): {pacs_aet!r} is not it. "
                "dcmqrscp says the same when the calling AE title is unknown: ask the "
                "administrator to register {register}.",
            ),
            ("calling_aet", "Ask the PACS administrator to register {register}."),
            (
                "caller",
                "The PACS refused this caller: ask its administrator to allow {register} "
                "(many PACS check the calling AE title and the address it comes from).",
            ),
            ("transient", "The PACS is busy or temporarily refusing (transient): try again later."),
            ("other", "Ask the PACS administrator what the PACS logged for this association."),
        )
    },
    "PACS_ABORTED": {
        "association": _T(
            "The PACS {pacs} accepted the association but aborted {what} (A-ABORT, no "
            "status): it does not know the calling AE title {aet!r}, or knows it with another "
            "address than the one this PC's connections come from.",
            "Ask the PACS administrator to register {register}; the address must be "
            "the one the PACS sees (behind NAT: the public address) and the title must match "
            "exactly.",
        ),
        "no_final_find": _T(
            "The PACS {pacs} accepted the association but gave no final C-FIND response: {reason}.",
            "Ask the PACS administrator why the query does not complete (its log for this "
            "caller, {aet!r}); a PACS that answers C-ECHO but not C-FIND often does not "
            "know the calling AE title.",
        ),
    },
    "PACS_PROTOCOL_ERROR": {
        DEFAULT: _T(
            "The PACS {pacs} answered {what} with garbage, not DICOM: {reason}.",
            "Report it to the PACS vendor with a network capture of the exchange; confirm with "
            "another Q/R client (dcmtk movescu) that it is the PACS and not the path.",
        ),
    },
    "MOVE_NOTHING_TO_MOVE": {
        "find_refused": _T(
            "The PACS {pacs} refused Study Root C-FIND, so no study could be chosen.",
            "Name a study that is on the PACS with --study UID.",
        ),
        "find_failed": _T(
            "C-FIND on the PACS {pacs} failed: {reason}.",
            "Name a study that is on the PACS with --study UID, or ask the administrator "
            "why the query fails.",
        ),
        **{
            variant: _T(
                summary,
                "Store a small test study on the PACS (or ask for one), or name one with "
                "--study UID; until then the C-MOVE cannot be tested.",
            )
            for variant, summary in (
                ("study_missing", "Study {study} is not on the PACS (C-FIND found no match)."),
                ("no_study", "The PACS {pacs} returned no study for C-FIND: nothing to move."),
            )
        },
    },
    # containers and VMs (diagnosis/virtual.py); host_fix: what to do on the host, per platform
    "NAT_VIRTUAL": {
        f"{variant}{closed}": _T(
            "This PC is {what}{where}: a second NAT, its host, stands between the PACS and "
            "the listener." + more + tail,
            todo + ". Then give the PACS administrator the HOST's address, not {address}: "
            "{aet} @ <host's LAN address>:{port} for a PACS on the same LAN, or {aet} @ "
            "<public address>:{port} (with the router forwarding TCP {port} to the host) for "
            "a PACS outside.",
        )
        for variant, more, todo in (
            (
                "reached",
                " The host sends port {port} on: the dial-back got in and reached this listener.",
                "Keep the host's forwarding of port {port} (it works)",
            ),
            (
                "not_reached",
                " Nothing reaches port {port} here unless the host sends it on.",
                "On the host: {host_fix}",
            ),
        )
        for closed, tail in (("", ""), (":closed", " The dial-back did not get in."))
    },
    "LISTENER_IN_CONTAINER": {
        DEFAULT: _T(
            "Port {port} on this PC is published to a container: connections go on to "
            "{address}:{container_port}. The receiver is the program in that container.",
            "Check the receiver inside the container ({address}:{container_port}): its AE "
            "title and its storage. The PACS still dials this PC's address and port {port}.",
        ),
    },
    # the PACS's entry for us, as given with --pacs-entry (diagnosis/pacs_entry_check.py)
    "PACS_ENTRY_WRONG": {
        DEFAULT: _T(
            "The PACS's entry {aet}@{host}:{port} is wrong: {wrong}.",
            "In the PACS's AE table change {changes}: the entry must be {must}.",
        ),
    },
    "PACS_ENTRY_OK": {
        DEFAULT: _T("The PACS's entry {aet}@{host}:{port} matches what was measured."),
    },
    "NAT_HAIRPIN": {
        variant: _T(
            "The PACS is inside this site but its entry gives the public address {public}: "
            "its connection must turn around on the router (hairpin NAT). " + measured,
            "Give the PACS this PC's LAN address: {aet} @ {lan}:{port}.",
        )
        for variant, measured in (
            ("hairpins", "Measured: the router hairpins (this PC reached its own public address)."),
            ("no_hairpin", "Measured: the router does not hairpin: the connection cannot arrive."),
            ("not_measured", "Whether the router hairpins was not measured."),
        )
    },
}

# the checklist's own findings (commands/checklist_run.py); {what}: "PACS 'name'" | "this PC"
CHECKLIST_TEXTS: Mapping[str, Mapping[str, Text]] = {
    "CHECKLIST_INCOMPLETE": {
        "broken": _T(
            "{command} for {what} did not complete: {reason}. Nothing about it was measured.",
            "Run `reverseprobe {command}` for {what} by hand to see what happens "
            "(add --debug for the traceback), or raise --timeout.",
        ),
        "not_run": _T(
            "move-test for PACS {name!r} was not run: {reason}.",
            "Run the checklist again with a longer --timeout, or test this PACS alone with "
            "`reverseprobe move-test`.",
        ),
    },
}
