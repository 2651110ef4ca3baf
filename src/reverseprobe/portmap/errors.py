"""UPnP IGD errors with their codes, meanings and fixes (UPnP IGD WANIPConnection:2, 2.5).

miniupnpc raises a plain `Exception` whose message is only the error *name* (strupnperror() in
miniupnpc/src/upnperrors.c); `from_miniupnpc()` maps the name back to the code and says what it
means for a DICOM port forward and what to do about it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorInfo:
    code: int | None
    name: str
    meaning: str
    fix: str


_ADMIN = "add the forwarding rule by hand in the router's admin page"

# UPnP Device Architecture 1.1 3.2.2 (4xx/6xx) and IGD WANIPConnection:2 2.5 (7xx).
_TABLE: tuple[ErrorInfo, ...] = (
    ErrorInfo(401, "Invalid Action", "the router does not implement this UPnP action",
              f"{_ADMIN}"),
    ErrorInfo(402, "Invalid Args", "the router rejected the arguments of the request",
              f"check the port numbers and protocol; else {_ADMIN}"),
    ErrorInfo(501, "Action Failed",
              "the router could not carry out the action; miniupnpd says this when its WAN "
              "address is private or shared (double NAT), where forwarding cannot help",
              "check the router's external address (double NAT?); else restart the router's "
              f"UPnP service or {_ADMIN}"),
    ErrorInfo(600, "Argument Value Invalid", "a value in the request was invalid",
              f"check the port numbers; else {_ADMIN}"),
    ErrorInfo(601, "Argument Value Out of Range", "a value in the request was out of range",
              f"choose a port from 1024 to 65535 or a shorter lease; else {_ADMIN}"),
    ErrorInfo(602, "Optional Action Not Implemented", "the router lacks this optional action",
              _ADMIN),
    ErrorInfo(603, "Out of Memory", "the router ran out of memory", "restart the router"),
    ErrorInfo(604, "Human Intervention Required", "the router wants someone at its admin page",
              _ADMIN),
    ErrorInfo(605, "String Argument Too Long", "the description is too long for the router",
              "use a shorter --description"),
    ErrorInfo(606, "Action not authorized",
              "the router's rules refuse this mapping: a port outside what it allows (miniupnpd "
              "allows only 1024-65535 by default, so 104 is refused) or an internal address "
              "other than the requesting PC (secure mode)",
              "use a port from 1024 to 65535 (11112 is the IANA DICOM port), allow the port in "
              f"the router's UPnP settings, or {_ADMIN}"),
    ErrorInfo(701, "PinholeSpaceExhausted", "the router's IPv6 pinhole table is full",
              "remove unused pinholes on the router"),
    ErrorInfo(702, "FirewallDisabled", "the router's IPv6 firewall is off", "nothing to open"),
    ErrorInfo(703, "InboundPinholeNotAllowed", "the router does not allow inbound pinholes",
              _ADMIN),
    ErrorInfo(704, "NoSuchEntry", "no such pinhole", "nothing to remove"),
    ErrorInfo(705, "ProtocolNotSupported", "the router does not support this protocol",
              "use TCP (DICOM is TCP)"),
    ErrorInfo(706, "InternalPortWildcardingNotAllowed", "a wildcard internal port is refused",
              "give an explicit --port"),
    ErrorInfo(707, "ProtocolWildcardingNotAllowed", "a wildcard protocol is refused", "use TCP"),
    ErrorInfo(708, "InvalidLayer2Address", "invalid layer-2 address", _ADMIN),
    ErrorInfo(709, "NoTrafficReceived", "no traffic received", "nothing to do"),
    ErrorInfo(713, "SpecifiedArrayIndexInvalid", "no mapping at this index (end of the list)",
              "nothing to do"),
    ErrorInfo(714, "NoSuchEntryInArray", "the router holds no such mapping",
              "nothing to remove; `reverseprobe forward --list` shows what the router holds"),
    ErrorInfo(715, "WildCardNotPermittedInSrcIP", "the router wants a specific remote host",
              _ADMIN),
    ErrorInfo(716, "WildCardNotPermittedInExtPort", "the router wants a specific external port",
              "give --external-port"),
    ErrorInfo(718, "ConflictInMappingEntry",
              "the external port is already mapped, to another LAN host or another internal port",
              "free the port on the router (`reverseprobe forward --list` shows who holds it) or "
              "choose another --external-port and give that port to the PACS administrator"),
    ErrorInfo(724, "SamePortValuesRequired",
              "the router maps only when the external port equals the internal port",
              "leave --external-port out (or make it equal to --port)"),
    ErrorInfo(725, "OnlyPermanentLeasesSupported", "the router accepts only permanent mappings",
              "use --lease 0 (reverseprobe retries as permanent by itself)"),
    ErrorInfo(726, "RemoteHostOnlySupportsWildcard", "the router maps only for any remote host",
              "do not restrict the remote host"),
    ErrorInfo(727, "ExternalPortOnlySupportsWildcard", "the router picks the external port",
              _ADMIN),
    ErrorInfo(728, "NoPortMapsAvailable", "the router's mapping table is full",
              "remove mappings no longer used (`reverseprobe forward --list` shows them), or "
              f"{_ADMIN}"),
    ErrorInfo(729, "ConflictWithOtherMechanisms",
              "the port is taken by another mechanism on the router (a static rule, NAT-PMP/PCP)",
              "look at the router's port forwarding page, or choose another --external-port"),
    ErrorInfo(730, "PortMappingNotFound", "the router holds no such mapping", "nothing to remove"),
    ErrorInfo(731, "ReadOnly", "the mapping cannot be changed through UPnP",
              "change it in the router's admin page"),
    ErrorInfo(732, "WildCardNotPermittedInIntPort", "a wildcard internal port is refused",
              "give an explicit --port"),
    ErrorInfo(733, "InconsistentParameters", "the router found the request inconsistent",
              _ADMIN),
)  # fmt: skip

# miniupnpc's own errors (negative UPNPCOMMAND_* / UPNPDISCOVER_* codes): no UPnP code.
_LOCAL: tuple[ErrorInfo, ...] = (
    ErrorInfo(None, "Miniupnpc Unknown Error", "no usable answer from the router (miniupnpc)",
              "retry; if it persists, " + _ADMIN),
    ErrorInfo(None, "Miniupnpc Invalid Arguments", "miniupnpc refused the arguments",
              "check the port numbers and protocol"),
    ErrorInfo(None, "Miniupnpc Invalid response", "the router's SOAP answer was not valid",
              "the router's UPnP is faulty: " + _ADMIN),
    ErrorInfo(None, "Miniupnpc HTTP error", "the router's UPnP control URL answered an HTTP error",
              "the router's UPnP is faulty or off: " + _ADMIN),
    ErrorInfo(None, "Miniupnpc Socket error", "no connection to the router's UPnP service",
              "check that UPnP is on in the router; else " + _ADMIN),
    ErrorInfo(None, "Miniupnpc Memory allocation error", "miniupnpc ran out of memory", "retry"),
    ErrorInfo(None, "No UPnP device discovered",
              "the device description could not be read (no IGD at that address)",
              "turn UPnP on in the router, or " + _ADMIN),
    ErrorInfo(None, "UnknownError", "the router answered an error code miniupnpc does not know",
              _ADMIN),
    ErrorInfo(None, "Timeout", "the router's UPnP service did not answer in time",
              "retry with a longer --timeout; else " + _ADMIN),
)  # fmt: skip

# UPnP-gw-WANIPv6FirewallControl-v1 2.4 (its 7xx codes overlap WANIPConnection's: 708 and 709
# mean something else there). `pinhole_error` reads a pinhole action's code with this table.
_PINHOLE: tuple[ErrorInfo, ...] = (
    ErrorInfo(606, "Action not authorized",
              "the router refuses this pinhole: another address than the asking PC's, or a port "
              "below 1024 (miniupnpd allows pinholes only from 1024 up)",
              "use a port from 1024 to 65535 (11112 is the IANA DICOM port), or open the port "
              "in the router's IPv6 firewall page"),
    ErrorInfo(708, "WildCardNotPermittedInSrcIP", "the router wants a specific internal address",
              "open the port in the router's IPv6 firewall page"),
    ErrorInfo(709, "NoPacketSent", "no packet has passed the pinhole yet",
              "nothing to do: the pinhole is in place"),
)  # fmt: skip
PINHOLE_BY_CODE: Mapping[int, ErrorInfo] = {
    **{e.code: e for e in _TABLE if e.code is not None and 701 <= e.code <= 707},
    **{e.code: e for e in _PINHOLE if e.code is not None},
}

BY_CODE: Mapping[int, ErrorInfo] = {e.code: e for e in _TABLE if e.code is not None}
_BY_NAME: Mapping[str, ErrorInfo] = {e.name.casefold(): e for e in (*_TABLE, *_LOCAL)}


class PortmapError(Exception):
    """Base of the errors of `reverseprobe.portmap`."""


class UpnpError(PortmapError):
    """A UPnP IGD request failed; `code` is the UPnP error code where one is known."""

    def __init__(self, code: int | None, name: str, meaning: str, fix: str) -> None:
        super().__init__(f"{code} {name}" if code is not None else name)
        self.code = code
        self.name = name
        self.meaning = meaning
        self.fix = fix

    @classmethod
    def from_info(cls, info: ErrorInfo) -> UpnpError:
        return cls(info.code, info.name, info.meaning, info.fix)

    @classmethod
    def for_code(cls, code: int) -> UpnpError:
        info = BY_CODE.get(code) or ErrorInfo(code, "UnknownError", f"UPnP error {code}", _ADMIN)
        return cls.from_info(info)

    def describe(self) -> str:
        """One line: '606 Action not authorized: <meaning>'."""
        return f"{self}: {self.meaning}"


class UpnpTimeout(UpnpError):
    """The router did not answer a UPnP request within its share of the deadline."""

    def __init__(self, what: str, timeout: float) -> None:
        info = _BY_NAME["timeout"]
        super().__init__(None, info.name, f"{what}: no answer within {timeout:.1f} s", info.fix)
        self.timeout = timeout


def pinhole_error(exc: UpnpError) -> UpnpError:
    """`exc` from a WANIPv6FirewallControl action, with that service's meaning of its code."""
    info = PINHOLE_BY_CODE.get(exc.code) if exc.code is not None else None
    if info is None or isinstance(exc, UpnpGarbage | UpnpTimeout):
        return exc
    return UpnpError.from_info(info)


def lookup(name: str) -> ErrorInfo | None:
    """The table entry for a miniupnpc error name (case and spaces ignored at the ends)."""
    return _BY_NAME.get(name.strip().casefold())


def from_miniupnpc(exc: BaseException) -> UpnpError:
    """Translate an exception raised by miniupnpc into a UpnpError with code and fix."""
    if isinstance(exc, UpnpError):
        return exc
    text = str(exc.args[0]) if exc.args else str(exc)
    info = lookup(text)
    if info is not None:
        return UpnpError.from_info(info)
    return UpnpError(None, text or type(exc).__name__, f"miniupnpc: {text or exc!r}", _ADMIN)


class UpnpGarbage(UpnpError):
    """The router answered, but with something that is not a valid UPnP answer: too long, not
    XML, a value out of range (a port of 99999999999, an internal client that is no address).

    Distinct from "no IGD answered": the router is there and broken (or hostile)."""

    def __init__(self, what: str, detail: str) -> None:
        super().__init__(
            None,
            "Router answered garbage",
            f"{what}: {detail}",
            "the router's UPnP is faulty: restart the router or " + _ADMIN,
        )
        self.what = what
        self.detail = detail
