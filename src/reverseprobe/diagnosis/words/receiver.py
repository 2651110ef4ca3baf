"""The words of the receiver's answers to a C-MOVE: it refused the images, stalled, is busy,
rejects an AE title or a context (diagnosis/receiver.py). Upper-case fragments: formatted by
the rule and passed as a field ("" when absent)."""

from __future__ import annotations

from collections.abc import Mapping

from reverseprobe.diagnosis.words import DEFAULT, Text

_T = Text

# how to make a receiver take the images, or the PACS send another syntax

RECEIVER_FIXES = (
    "dcmtk storescp: run it with +xa (accept all transfer syntaxes), or -xf with a config "
    "file listing the syntaxes and SOP classes, and for a fixed called AE title -aet with the "
    "title the PACS calls; Orthanc: add the PACS's storage AE to DicomModalities (or "
    "DicomAlwaysAllowStore true) and accept the transfer syntax (AcceptedTransferSyntaxes); "
    "pynetdicom: supported_contexts with every transfer syntax (AllStoragePresentationContexts "
    "and ALL_TRANSFER_SYNTAXES); dcm4chee: the AE's transfer capabilities and accepted calling "
    "AE titles; DicomObjects: add the syntax to the Listen's accepted transfer syntaxes"
)
PACS_SENDS_OTHER = (
    "its storage sender's proposal for this AE: Orthanc transcodes to "
    "DicomScuPreferredTransferSyntax when the receiver refuses the stored syntax (the "
    "modality's AllowTranscoding true); dcmqrscp proposes what -x= / -xy / -xv... say, and "
    "converts only with the codec; dcm4chee: the destination AE's transfer capabilities or a "
    "compression rule; e.g. uncompressed Explicit VR Little Endian, which every receiver accepts"
)
_ACCEPT_THEM = (
    "Either accept them in the receiver (" + RECEIVER_FIXES + "), or have the PACS send "
    "another transfer syntax (" + PACS_SENDS_OTHER + ")."
)

# MOVE_STORE_REJECTED: what the receiver refused, joined by "; " into {what}
WHAT_CONTEXTS = "contexts refused: {contexts}"
WHAT_STATUSES = "C-STORE statuses {statuses}"
WHAT_REJECTED = "{count} association(s) rejected"
LATER = (
    "; the preflight found no refused context, so the refusal came later: the "
    "storage sender's AE title or address, or the C-STORE itself (the receiver's "
    "log says which)"
)
ORTHANC_STORE = (
    ". Orthanc accepts the association of a sender it does not know, then refuses "
    "its C-STORE and aborts when DicomAlwaysAllowStore is false (its log: "
    '"Rejected Store request from remote DICOM modality"): add the PACS\'s storage '
    "AE title and address to its DicomModalities"
)
TAKES_ONLY = "accepts it only in {syntaxes}"
TAKES_NONE = "accepts it in no syntax"
OF_IMAGES = " of {expected} image(s)"
ALSO = " (and {more} more SOP class(es))"
# LISTENER_REJECTS_CONTEXT's parts
CONTEXT_LINE = "{sop_class} in {syntax} ({result})"
AND_MORE = "; and {more} more"
MAY_CLASS = "it accepts SOP class {sop_class} {takes}, and refuses it in {refused}"
MAY_TAKES_ONLY = "only in {syntaxes}"
MAY_TAKES_NONE = "in no syntax proposed"
MAY_MORE = "; and {more} more SOP class(es)"
MAY_ARRIVED = (
    " This study arrived, so the PACS sent it in a syntax the receiver takes; a study "
    "it holds compressed may still be refused."
)
UNTESTED = (
    " {untested} pair(s) past the 128-context limit of one association were not "
    "tested (SOP classes {sop_classes})."
)

_WILL = (
    "The receiver on {where} refuses {count} of the presentation context(s) the "
    "PACS will propose (from {contexts_from}): {will}. Images of these are refused when the "
    "PACS sends them."
)
_MAY = (
    "The receiver on {where} refuses compressed transfer syntaxes the PACS may send: "
    "{may}. The PACS did not say in which syntax it holds these images (no Available "
    "Transfer Syntax UID in its C-FIND): archives mostly hold JPEG, JPEG-LS or JPEG 2000 "
    "and many send them as stored, so they would be refused; a PACS that converts to "
    "uncompressed gets through.{arrived}"
)
TEXTS: Mapping[str, Mapping[str, Text]] = {
    "MOVE_NOT_SUPPORTED": {
        DEFAULT: _T(
            "The PACS answered the C-MOVE with 0x0122 (SOP Class not supported): it does not "
            "do C-MOVE at the Study Root information model.",
            "Try the Patient Root information model, or C-GET (no connection back needed); "
            "ask the PACS administrator which retrieve models it serves.",
        ),
    },
    "MOVE_STALLED": {
        DEFAULT: _T(
            "The PACS stopped sending pending C-MOVE responses: {pending} "
            "came, then nothing for {stall_s:.1f} s (completed {completed}, "
            "failed {failed}, remaining {remaining}).",
            "On the PACS, its C-STORE sub-association to the receiver is waiting: raise the "
            "receiver's or the PACS's DIMSE/network timeout only if the receiver is slow "
            "(dcmtk storescp and dcmqrscp: -td/--dimse-timeout, -ta/--acse-timeout; "
            "Orthanc: DicomScuTimeout on the sending side, DicomServerTimeout on the "
            "receiving one; pynetdicom: AE.dimse_timeout and network_timeout; dcm4chee and "
            "DicomObjects: the connection's response timeout); else ask the administrator "
            "what the storage sender is stuck on. On this side, raise move-test's --timeout "
            "(your SCU: its DIMSE timeout) to wait longer.",
        ),
    },
    "MOVE_STORE_REJECTED": {
        # preflight[:stand_in]: running mode, from the preflight's refusals (stand_in: the
        # PACS named no SOP class, CT and Secondary Capture stood in); {takes}: TAKES_*;
        # {of}: OF_IMAGES or ""; {also}: ALSO or ""; {some}: "some of " or ""
        variant: _T(
            "The PACS reached your receiver ({connections} connection(s) from "
            "{peers} to {who} on port {port}), but {some}the images were refused: the move "
            "failed (final status {status}; completed {completed}, failed {failed}, warning "
            "{warning}{of}), and your receiver refuses " + sop + " in {refused}{also}; it "
            "{takes}. Measured: those refusals (the preflight's association, PS3.8 9.3.3.2) "
            "and the PACS's counts and final status. Inferred: that the PACS offered the "
            "images in one of the refused syntaxes" + alike + " (it did not say which syntax "
            "it holds, and your receiver's answer to it is not visible from here: the "
            "receiver's log shows it).",
            "Either accept it in the receiver (" + RECEIVER_FIXES + "), or have the PACS send "
            "another transfer syntax (" + PACS_SENDS_OTHER + ").",
        )
        for variant, sop, alike in (
            ("preflight", "the study's SOP class {sop_class}", ""),
            (
                "preflight:stand_in",
                "SOP class {sop_class} (a stand-in: the PACS did not name the study's SOP classes)",
                " and that the study's SOP class is refused alike",
            ),
        )
    }
    | {
        # own: move-test's receiver saw the refusals ({what}: WHAT_*, "; "-joined)
        "own": _T(
            "The PACS reached the receiver, but the images were refused: {what}.", _ACCEPT_THEM
        ),
        # running, without preflight evidence; {later}: LATER or ""; {orthanc}: ORTHANC_STORE
        "running": _T(
            "The PACS ({peers}) connected {count} time(s) to {who} on port {port} and reports "
            "{failed} sub-operation(s) failed, none completed. Measured: the connections (the "
            "connection table) and the PACS's counts. Inferred: that the receiver refused the "
            "images (a PACS fails the sub-operations it could not store), or that the PACS "
            "could not convert them to the transfer syntax the receiver chose (its log says "
            "so){later}{orthanc}.",
            _ACCEPT_THEM,
        ),
    },
    "LISTENER_REJECTS_AET": {
        "preflight": _T(
            "The receiver on {where} rejects associations called {called_aet!r} "
            "({reason_str}): the PACS's C-STORE sub-associations call exactly that.",
            "Set the receiver's AE title to {called_aet!r} (dcmtk storescp: -aet "
            "{called_aet}; Orthanc: DicomAet), or register its real title at the PACS.",
        ),
    },
    "LISTENER_BUSY": {
        variant: _T(
            "The receiver on {where} rejected the {which} association as transient "
            "({reason_str}): it takes fewer associations at once than a PACS may open" + hit,
            "Raise the receiver's association limit (pynetdicom: AE.maximum_associations; "
            "dcmtk storescp: --fork, or one instance per PACS; Orthanc: it takes many, "
            "DicomThreadsCount sets its threads; dcm4chee: the network connection's "
            "association limits in its device configuration; DicomObjects: the Listen's "
            "MaxAssociations), or have the PACS open one association at a time.",
        )
        for variant, hit in (
            (DEFAULT, "."),
            ("hit:failed", "; the move's {failed} failed sub-operation(s) met the same limit."),
            (
                "hit:connected",
                "; the move met the same limit: the PACS connected {connections} time(s), "
                "stored nothing and answered {final_code} ({final_meaning}).",
            ),
        )
    },
    "LISTENER_REJECTS_CONTEXT": {
        # will: the contexts the PACS will propose (CONTEXT_LINE, "; "-joined, AND_MORE);
        # may: MAY_CLASS per SOP class ("; "-joined, MAY_MORE); {arrived}: MAY_ARRIVED or "";
        # {untested}: UNTESTED or ""
        variant: _T(summary + "{untested}", _ACCEPT_THEM)
        for variant, summary in (
            ("will", _WILL),
            ("may", _MAY),
            ("will+may", _WILL + " " + _MAY),
        )
    },
}
