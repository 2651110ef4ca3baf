"""The words of move-test's C-MOVE (diagnosis/move.py; the receiver's: words/receiver.py).
Sentences a rule adds only in some cases are the upper-case fragments below: the rule
formats them and passes the result as a field ("" when absent), like words/network.py's
FIREWALL_OTHER_OPEN."""

from __future__ import annotations

from collections.abc import Mapping

from reverseprobe.diagnosis.words import DEFAULT, Text

_T = Text

_CANNOT_CONVERT = (
    "The PACS proposed only uncompressed transfer syntaxes, which move-test's receiver "
    "accepted, and still failed {failed} sub-operation(s): it cannot send the study in "
    "the syntax it stores (compressed) and cannot convert it. On dcmqrscp run it with -xy "
    "(or the option proposing the stored syntax); on another PACS, configure its storage "
    "sender to offer the stored transfer syntax (JPEG, JPEG-LS, JPEG 2000) for this AE."
)

# --- fragments (formatted by the rule, passed as a field) -------------------------------------

# the entry the PACS needs (move.py _Ctx.entry_fix): {entry_fix} of several codes
ENTRY_FIX = "At the PACS, the entry for the Move Destination must be {register}."
ENTRY_FIX_NAT = (
    " This PC is behind NAT: the router must forward TCP port {port} to "
    "{toward}:{port} (`reverseprobe forward --upnp --port {port}`)."
)
ENTRY_FIX_CGET = " Or retrieve with C-GET, which this PACS accepts: it needs no connection back."
# MOVE_NO_CONNECT_BACK's optional sentences
OBSERVED = (
    " (Observed from the connection table every 20 ms: an association shorter "
    "than that can be missed; your receiver's log is the proof{note}.)"
)
BACKGROUND = " (A PACS that moves in the background reports success before it tries.)"
WAY_CLOSED = " The way in is closed: {evidence} (see the inbound finding)."
OUT_OF_TIME = (
    " move-test's --timeout ({timeout:g} s) ended the wait: a PACS that waits "
    "out its own connect timeout answers later; rerun with a longer --timeout to "
    "see its final status."
)
# MOVE_INCOMPLETE's reasons, joined by "; " into {why}
WHY_FAILED = "{failed} sub-operation(s) failed"
WHY_NO_RESPONSE = "no final response ({no_response})"
WHY_FINAL = "final status ({status})"
WHY_MISSING = "{received} of {want} image(s) arrived"
WHY_CANNOT_CONVERT = "the PACS cannot send the study's transfer syntax"
WHY_TIMEOUT = "move-test's --timeout ({timeout:g} s) ran out first"
WHY_OBSERVER = "connections may be missing: {note}"
WHY_NONE = "images missing"
_AFTER = "during the move and {grace:g} s after it"
_NO_CONNECTION = " and no connection reached port {port} on this PC " + _AFTER + ".{observed}"
_ASK_LOG = (
    "Ask the PACS administrator what the PACS logged for these sub-operations; the timeline "
    "shows which association ended how."
)

TEXTS: Mapping[str, Mapping[str, Text]] = {
    "LISTENER_NONE": {
        "running": _T(
            "Nothing listens on port {port}: start the receiver before the move "
            "(--receiver running asks to test the receiver already running).",
            "Start your DICOM receiver on port {port}, or use --receiver own.",
        ),
    },
    "PACS_REJECTED_ASSOCIATION": {
        "move_context": _T(
            "The PACS {pacs} accepted the association but refused the Study Root "
            "C-MOVE presentation context.",
            "Ask the administrator to allow C-MOVE (retrieve) for {aet!r}.",
        ),
    },
    "MOVE_CALLED_AET_MISMATCH": {
        # called: the titles it called, each repr'd, ", "-joined
        DEFAULT: _T(
            "The PACS connected back but called AE title {called}, "
            "not the Move Destination {aet!r}.",
            "In the PACS's entry for {aet!r} set the AE title to exactly {aet!r}; "
            "a receiver that checks the called AE title will refuse these connections.",
        ),
    },
    "MOVE_FINAL_BEFORE_IMAGES": {
        DEFAULT: _T(
            "{late} image(s) arrived after the PACS's final C-MOVE "
            "response ({final_code}): a client that stops listening at the final "
            "response loses them.",
            "Keep your SCU's Storage SCP running all the time, not only while a C-MOVE is "
            'in progress; the PACS is faulty (Orthanc: set "SynchronousCMove": true).',
        ),
    },
    "MOVE_TLS_MISMATCH": {
        # by the side that expected what (move.py _tls_direction)
        "plain-at-tls": _T(
            "The PACS ({peer}) opened its C-STORE sub-association with plain DICOM, but the "
            "receiver on port {port} expects DICOM over TLS: {reason}.",
            'Either turn TLS on for {aet!r} in the PACS (PS3.15 B.1; Orthanc: "UseDicomTls": '
            "true in its DicomModalities entry, with DicomTlsCertificate/DicomTlsPrivateKey "
            "and the CA of the receiver's certificate in DicomTlsTrustedCertificates; dcmtk: "
            "+tls; pynetdicom: an ssl_context), or run the receiver without TLS "
            "(move-test without --tls).",
        ),
        "handshake": _T(
            "The PACS ({peer}) and the receiver on port {port} both speak DICOM over TLS, "
            "but the handshake failed: {reason}.",
            "Give each side the CA that signed the other's certificate (move-test --tls-ca: the "
            "PACS's CA; Orthanc: DicomTlsTrustedCertificates), and check that neither "
            "certificate has expired.",
        ),
        "tls-at-plain": _T(
            "The PACS ({peer}) opened its C-STORE sub-association with TLS, but the receiver "
            "on port {port} speaks plain DICOM: {reason}.",
            'Either turn TLS off for {aet!r} in the PACS (Orthanc: "UseDicomTls": false in '
            "its DicomModalities entry), or run the receiver with TLS (move-test --tls "
            "--tls-cert CERT --tls-key KEY; dcmtk storescp +tls KEY CERT; pynetdicom: "
            "ssl_context; port {tls_port} by convention) and give the PACS the CA that "
            "signed its certificate.",
        ),
    },
    "MOVE_PORT_BUSY": {
        # holders: "; "-joined "process (PID n) on address:port"; "holder": the first has a PID
        variant: _T(
            "Port {port} is already taken by {holders}: move-test cannot listen there, and the "
            "PACS's images would go to that program.",
            stop + " while you test, or pass a free --port (and register that port at the "
            "PACS). If that program is your DICOM receiver, test it with `reverseprobe check "
            "--port {port} --aet {aet}` instead. Exactly one program may listen on port {port}.",
        )
        for variant, stop in ((DEFAULT, "Stop it"), ("holder", "Stop {process} (PID {pid})"))
    },
    "MOVE_DESTINATION_UNKNOWN": {
        DEFAULT: _T(
            "The PACS does not know the Move Destination {aet!r} (status "
            "{final_code}, no sub-operation attempted).",
            "Ask the PACS administrator to add {register}.",
        ),
    },
    "MOVE_DELIVERED_ELSEWHERE": {
        # {status}: "0xCODE, meaning" or "none"; {entry_fix}: ENTRY_FIX (+ _NAT, _CGET)
        "none_arrived": _T(
            "The PACS reports {completed} image(s) sent ({status}), but no connection "
            "reached port {port} on this PC " + _AFTER + ": they went to another receiver.",
            "The PACS's entry for {aet!r} points to another machine or port, or the "
            "router forwards port {port} to another PC. {entry_fix}",
        ),
        "partial": _T(
            "Only {received} of the {completed} image(s) the PACS reports sent arrived on "
            "port {port}: the rest went to another receiver.",
            "Another program or PC shares the destination (two listeners on port {port}, or a "
            "router forwarding to several PCs). {entry_fix}",
        ),
    },
    "MOVE_NO_CONNECT_BACK": {
        # <how the move ended>:<what the PACS's counts and the way in say>; {observed}:
        # OBSERVED in running mode; {closed}: WAY_CLOSED; {out_of_time}: OUT_OF_TIME; or ""
        # {background}: BACKGROUND where the final status is success, or ""
        f"{ended}:{known}": _T(
            summary + _NO_CONNECTION + "{background}{closed}", fix + "{out_of_time}"
        )
        for ended, summary in (
            ("no_response", "The C-MOVE got no final response ({no_response})"),
            ("success", "The PACS reported success ({status}) without sub-operations,"),
            ("failed", "The C-MOVE failed ({status})"),
        )
        for known, fix in (
            (
                "tried:closed",
                "The PACS knows {aet!r} and tried {failed} sub-operation(s), but the "
                "way in to port {port} is closed: open it as the inbound finding says. "
                "{entry_fix}",
            ),
            (
                # its own counts say it knew the AE title and tried (PS3.4 C.4.2.1.4)
                "tried",
                "The PACS knows {aet!r} and tried {failed} sub-operation(s) (its own "
                "failed count), but it dials an address that does not reach port {port} on "
                "this PC, or the way in (router, firewall) is closed. {entry_fix}",
            ),
            (
                "closed",
                "The way in to port {port} is closed: open it first, as the inbound finding "
                "says; then, if the move still fails, the PACS lacks the entry or it points "
                "elsewhere. {entry_fix}",
            ),
            (
                "unknown",
                "The PACS lacks the entry for {aet!r} (some PACS say 0xC000, not 0xA801) "
                "or its entry points to an address that does not reach this PC. "
                "{entry_fix}",
            ),
        )
    },
    "PACS_ENTRY_WRONG": {
        # the way in is open and the PACS tried, yet nothing arrived (move.py _delivery)
        "move": _T(
            "The PACS knows {aet!r} and tried {failed} sub-operation(s), but it "
            "dials somewhere that is not this PC: the way in to port {port} is open (the "
            "reflector got through) and no connection from the PACS arrived. Its entry's "
            "address or port is wrong.",
            "In the PACS's AE table the entry for {aet!r} must be {must}.",
        ),
    },
    "MOVE_OK": {
        # via: ", "-joined "peer calling 'AET'"; own:not_qr when no sender used the Q/R title
        **{
            variant: _T(
                "All {received} image(s) arrived on port {port} (from {via}); final status "
                "{status}. The storage sender your receiver must allow is {via}" + tail + "."
            )
            for variant, tail in (
                ("own", ""),
                ("own:not_qr", " (not the Q/R AE title {pacs_aet!r})"),
            )
        },
        "running": _T(
            "The PACS reports all {completed} sub-operation(s) completed ({status}) and "
            "connected from {peers} to {owners} on port {port}. The storage sender your "
            "receiver must allow connects from {peers} (its calling AE title is often not "
            "{pacs_aet!r}: see the receiver's log)."
        ),
    },
    "MOVE_INCOMPLETE": {
        # why: the WHY_* reasons, "; "-joined
        **{
            variant: _T(
                "The PACS connected back to port {port} ({connections} connection(s)) but the "
                "move was incomplete: {why}.",
                fix,
            )
            for variant, fix in (
                ("own", _ASK_LOG),
                ("own:cannot_convert", _CANNOT_CONVERT),
                (
                    "own:timeout",
                    "Rerun with a longer --timeout, or test with a smaller study (--study UID); "
                    "the connection back works.",
                ),
            )
        },
        **{
            variant: _T(
                "The PACS connected to your receiver on port {port} "
                "({connections} connection(s)) but the move was incomplete ({status}" + why + ").",
                "Look in your receiver's log for these associations (the timeline gives their "
                "times and source addresses); ask the PACS administrator what it logged for "
                "them. A receiver that refuses the images says why there: the transfer syntax "
                "(archives mostly store JPEG, JPEG-LS or JPEG 2000: dcmtk storescp needs +xa, "
                "Orthanc its accepted transfer syntaxes), the SOP class, or the storage "
                "sender's AE title or address (Orthanc: DicomAlwaysAllowStore / "
                "DicomModalities). To measure it: stop your receiver and run move-test "
                "--receiver own --json > move.json once (its receiver records every context "
                "the PACS proposes), then --contexts-from move.json preflights your receiver "
                "with exactly those.",
            )
            for variant, why in (("running", ""), ("running:why", "; {why}"))
        },
    },
    "CGET_AVAILABLE": {
        variant: _T(
            "The PACS offers C-GET, which needs no connection back to this PC. " + measured,
            "If your viewer or SCU supports C-GET, use it for this PACS: it avoids NAT, port "
            "forwarding and firewall problems altogether.",
        )
        for variant, measured in (
            # final: "0xCODE" or "no final status"
            ("tried", "A C-GET of the study delivered {received} image(s) ({final})."),
            (
                "accepted",
                "It accepted the Study Root C-GET presentation context; --try-cget retrieves "
                "the study to prove it.",
            ),
        )
    },
}
