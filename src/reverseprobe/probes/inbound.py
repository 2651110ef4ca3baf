"""The inbound (echo-back) probe of `check` (docs/reference.md "inbound"): can the outside reach us?

A reflector outside the network dials the port back on the address it sees us at. Where the
port is free, a temporary Verification SCP holds it and the reflector calls with a one-time
calling AE title (a nonce): seeing the nonce arrive proves the connection reached *this*
machine. Where the port is taken, the listener's fingerprint (association result,
implementation class UID and version name, PS3.7 D.3.3.2) seen from outside is compared
with the one seen locally. For a port below 1024 that is not reachable, a temporary high
control port, mapped by UPnP IGD to a temporary listener, tells an ISP block from a router or
firewall problem. Every temporary listener and mapping is removed, also on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import secrets
import string
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from reverseprobe.concurrent import start
from reverseprobe.config import CheckConfig
from reverseprobe.dicom.echo import DEFAULT_CALLING_AET, EchoResult, echo
from reverseprobe.dicom.scp import VerificationScp, on_exit
from reverseprobe.dicom.tcp import TcpState
from reverseprobe.model import Status
from reverseprobe.model.inbound import ControlOutcome as ControlOutcome
from reverseprobe.model.inbound import ControlResult as ControlResult
from reverseprobe.model.inbound import Fingerprint as Fingerprint
from reverseprobe.model.inbound import InboundMode as InboundMode
from reverseprobe.model.inbound import InboundResult as InboundResult
from reverseprobe.model.inbound import PortProbe, ProbeAnswer
from reverseprobe.reflector.client import Endpoint, ReflectorError, ask_probe
from reverseprobe.runner import Deadline, Probe

if TYPE_CHECKING:
    from reverseprobe.probes.listeners import LocalOnce

NONCE_PREFIX = "RP"
NONCE_LENGTH = 16  # the longest AE title (PS3.5 6.2, AE VR)
SLACK_S = 1.0  # beyond the dial budget: HTTP round trip and the reflector's own work
STOP_RESERVE_S = 0.8  # kept back to stop temporary listeners and remove the mapping
CONTROL_LEASE_S = 120  # a mapping we fail to remove expires by itself
CONTROL_DESCRIPTION = "reverseprobe control port (temporary)"
LOCAL_ECHO_S = 3.0
NONCE_WAIT_S = 0.3


class Asker(Protocol):
    def __call__(  # noqa: PLR0913 - the reflector client's keyword-only signature
        self,
        url: str,
        ports: list[int],
        *,
        called_aet: str,
        calling_aet: str,
        dial_timeout: float,
        http_timeout: float,
    ) -> ProbeAnswer: ...


IgdFinder = Callable[[str | None, Deadline], Any]  # portmap.igd.find_igd


def make_nonce() -> str:
    """A one-time calling AE title: 16 characters of A-Z and 0-9 (valid in any AE title)."""
    alphabet = string.ascii_uppercase + string.digits
    return NONCE_PREFIX + "".join(
        secrets.choice(alphabet) for _ in range(NONCE_LENGTH - len(NONCE_PREFIX))
    )


def check_probe(cfg: CheckConfig) -> Probe:
    return lambda deadline: probe_inbound(cfg, deadline)


def probe_inbound(
    cfg: CheckConfig,
    deadline: Deadline,
    *,
    ask: Asker = ask_probe,
    find_igd: IgdFinder | None = None,
    once: LocalOnce | None = None,
) -> InboundResult:
    if not cfg.reflector:
        return InboundResult(
            status=Status.SKIPPED,
            port=cfg.port,
            reason="no reflector configured (--reflector URL or REVERSEPROBE_REFLECTOR)",
        )
    url = cfg.reflector
    shown = Endpoint.parse(url).display
    nonce = make_nonce()
    search = _IgdSearch(find_igd, deadline) if cfg.port < 1024 and cfg.upnp else None
    sockets = _listening(cfg.port, once)
    with contextlib.ExitStack() as stack:
        scp, mode, note = _hold(cfg.port, sockets, stack)
        local = (
            _LocalEcho(cfg, sockets, deadline, once)
            if mode is InboundMode.EXISTING_LISTENER
            else None
        )
        calling = nonce if scp is not None else DEFAULT_CALLING_AET
        dial = _dial_budget(deadline, control=search is not None)
        # check --tls (issue 15): the receiver that listens is dialled over TLS; our own
        # temporary listener is plain, so it is not
        tls: dict[str, Any] = {}
        if cfg.tls is not None and mode is InboundMode.EXISTING_LISTENER:
            tls = {"tls": True, "tls_server_name": _sni(cfg.tls.name)}
        try:
            answer = ask(
                url,
                [cfg.port],
                called_aet=cfg.called_aet,
                calling_aet=calling,
                dial_timeout=dial,
                http_timeout=dial + SLACK_S,
                **tls,
            )
        except ReflectorError as exc:
            return InboundResult(
                status=Status.ERROR,
                reason=exc.message,
                mode=mode,
                http_status=exc.http_status,
                reflector_error=exc.kind.value,
                port=cfg.port,
                reflector=shown,
            )
        if tls and cfg.tls is not None:
            answer = _verified(answer, cfg.tls.ca, cfg.tls.name or answer.observed_ip)
        main = answer.for_port(cfg.port)
        opened = main is not None and main.tcp is TcpState.OPEN
        seen = None
        if scp is not None:  # the association ended before the answer: a short wait suffices
            seen = scp.wait_for(nonce, NONCE_WAIT_S if opened else 0.0) is not None
        local_fps = local.result() if local is not None else ()
        control = None
        if search is not None and main is not None and main.tcp is not TcpState.OPEN:
            control = _control_probe(cfg, search, nonce, deadline, ask)
        if ":" in answer.observed_ip and mode is InboundMode.TEMPORARY_LISTENER:
            note = "the reflector saw this PC over IPv6; the temporary listener holds IPv4 only"
        return InboundResult(
            status=Status.OK,
            mode=mode,
            observed_ip=answer.observed_ip,
            results=answer.results,
            nonce=nonce if scp is not None else None,
            nonce_seen=seen,
            calling_aets_seen=scp.calling_aets() if scp is not None else (),
            connections_seen=tuple(c.address for c in scp.connections()) if scp else (),
            local_fingerprints=local_fps,
            remote_fingerprint=Fingerprint.of_probe(main) if main is not None else None,
            control=control,
            note=note,
            port=cfg.port,
            reflector=shown,
        )


def _sni(name: str | None) -> str | None:
    """--tls-name as the reflector's SNI: a host name only (RFC 6066 3 carries no address)."""
    if not name or ":" in name or name.replace(".", "").isdigit():
        return None
    return name


def _verified(answer: ProbeAnswer, ca: str | None, name: str) -> ProbeAnswer:
    """The certificate the reflector saw, verified here against --tls-ca for `name` (the
    reflector trusts nothing and has none of our CAs): the problem goes into its TlsFacts."""
    from reverseprobe.dicom.tls import verify_pem

    out = []
    for r in answer.results:
        t = r.tls
        if t is not None and t.problem is None and t.certificate_pem:
            problem, words = verify_pem(t.certificate_pem, ca, name)
            t = dataclasses.replace(t, problem=problem, detail=words, verified_by="reflector-pem")
            out.append(dataclasses.replace(r, tls=t))
        else:
            out.append(r)
    return dataclasses.replace(answer, results=tuple(out))


def _dial_budget(deadline: Deadline, *, control: bool) -> float:
    """The reflector's dial budget: what is left less our reserve; half of it when a control
    port may have to be probed after the first answer."""
    left = deadline.remaining() - STOP_RESERVE_S - SLACK_S * (2 if control else 1)
    return max(0.3, left / 2 if control else left)


def _listening(port: int, once: LocalOnce | None = None) -> list[Any] | None:
    """The sockets listening on the port (the run's one scan when it shares one), or None
    when they cannot be listed."""
    from reverseprobe.probes.listeners import listening_sockets

    try:
        if once is not None and once.port == port:
            return once.sockets()[0]
        return list(listening_sockets(port)[0])
    except Exception:  # noqa: BLE001 - unreadable: binding will tell whether it is free
        return None


def _hold(
    port: int, sockets: list[Any] | None, stack: contextlib.ExitStack
) -> tuple[VerificationScp | None, InboundMode, str | None]:
    if sockets:
        return None, InboundMode.EXISTING_LISTENER, None
    scp = VerificationScp(port)
    try:
        scp.start()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return None, InboundMode.EXISTING_LISTENER, None
        why = (
            f"listening on port {port} needs administrator/root rights"
            if exc.errno in (errno.EACCES, errno.EPERM)
            else f"could not listen on port {port}: {exc.strerror or exc}"
        )
        return None, InboundMode.NOT_HELD, why
    stack.callback(scp.stop)
    return scp, InboundMode.TEMPORARY_LISTENER, None


class _LocalEcho:
    """C-ECHO to the local listener(s), concurrently, while the reflector dials from outside."""

    def __init__(
        self,
        cfg: CheckConfig,
        sockets: list[Any] | None,
        deadline: Deadline,
        once: LocalOnce | None = None,
    ) -> None:
        from reverseprobe.probes.listeners import echo_target

        targets = sorted({echo_target(s) for s in sockets}) if sockets else ["127.0.0.1"]
        self._budget = deadline.share(LOCAL_ECHO_S, reserve=STOP_RESERVE_S)
        budget = self._budget

        def one(host: str) -> Callable[[], EchoResult]:
            return lambda: echo(host, cfg.port, called_aet=cfg.called_aet, timeout=budget)

        # The listeners probe's echo when the run shares one (check: LocalOnce), started with
        # the listeners' budget whoever asks first; this probe waits only its own.
        from reverseprobe.probes.listeners import ECHO_BUDGET_S

        shared = once is not None and bool(sockets) and once.port == cfg.port
        self._calls = [
            once.get(host, deadline.share(ECHO_BUDGET_S)) if once is not None and shared
            else start(one(host), name="inbound-local-echo")
            for host in targets
        ]  # fmt: skip

    def result(self) -> tuple[Fingerprint, ...]:
        until = Deadline.after(self._budget + 0.5)
        out = []
        for call in self._calls:
            call.wait(until.remaining())
            echoed = call.outcome()
            if isinstance(echoed, EchoResult):
                out.append(Fingerprint.of_echo(echoed))
        return tuple(out)


class _IgdSearch:
    """UPnP IGD discovery started at once, in parallel with the first dial-back."""

    def __init__(self, finder: IgdFinder | None, deadline: Deadline) -> None:
        self.reason: str | None = None
        self._call = start(lambda: self._find(finder, deadline), name="inbound-igd")

    @staticmethod
    def _find(finder: IgdFinder | None, deadline: Deadline) -> Any:
        if finder is None:
            from reverseprobe.portmap.igd import find_igd

            finder = find_igd
        from reverseprobe.probes.interfaces import default_gateway

        return finder(default_gateway()[0], deadline)

    def wait(self, timeout: float) -> Any:
        if not self._call.wait(timeout):
            self.reason = "UPnP discovery did not finish in time"
            return None
        igd = self._call.outcome()
        if isinstance(igd, Exception):  # UpnpError and the unexpected alike
            self.reason = f"UPnP discovery failed: {igd}"
            return None
        if isinstance(igd, BaseException):
            raise igd
        if igd is None:
            self.reason = "no UPnP router answered, so no control port could be opened"
        return igd


def _control_probe(
    cfg: CheckConfig, search: _IgdSearch, nonce: str, deadline: Deadline, ask: Asker
) -> ControlResult:
    """Map a temporary high port to a temporary listener, ask for a dial-back, remove both."""
    from reverseprobe.portmap.errors import UpnpError

    igd = search.wait(deadline.share(3.0, reserve=STOP_RESERVE_S + SLACK_S + 0.5))
    if igd is None:
        return ControlResult(ControlOutcome.NOT_TESTED, reason=search.reason)
    lan = str(igd.lan_address or "")
    low = None
    with contextlib.suppress(UpnpError):
        m = igd.get_mapping(cfg.port)
        low = f"{m.internal_client}:{m.internal_port}" if m is not None else None
    removed: list[bool] = []
    with contextlib.ExitStack() as stack:
        scp = VerificationScp(0)
        try:
            scp.start()
        except OSError as exc:
            return ControlResult(ControlOutcome.NOT_TESTED, reason=f"no control listener: {exc}")
        stack.callback(scp.stop)
        port = scp.port
        try:
            _add_mapping(igd, port, lan)
        except UpnpError as exc:
            return ControlResult(
                ControlOutcome.NOT_TESTED,
                reason=f"the router refused a control mapping: {exc.describe()}",
                port=port,
                lan_address=lan,
                low_port_mapping=low,
            )

        def remove() -> None:
            if removed:
                return
            try:
                igd.delete_mapping(port)
                removed.append(True)
            except UpnpError:
                removed.append(False)

        unregister = on_exit(remove)  # Ctrl-C: the interpreter's exit still removes it
        stack.callback(unregister)
        stack.callback(remove)
        dial = max(0.3, deadline.remaining() - STOP_RESERVE_S - SLACK_S)
        result: PortProbe | None = None
        seen, why = False, None
        try:
            answer = ask(
                cfg.reflector or "",
                [port],
                called_aet=cfg.called_aet,
                calling_aet=nonce,
                dial_timeout=dial,
                http_timeout=dial + SLACK_S,
            )
        except ReflectorError as exc:
            why = f"the reflector failed on the control port: {exc}"
        else:
            result = answer.for_port(port)
            seen = scp.wait_for(nonce, NONCE_WAIT_S) is not None
    reached = result is not None and result.tcp is TcpState.OPEN and seen
    return ControlResult(
        ControlOutcome.REACHED
        if reached
        else (ControlOutcome.NOT_TESTED if result is None else ControlOutcome.NOT_REACHED),
        reason=why,
        port=port,
        lan_address=lan,
        result=result,
        nonce_seen=seen,
        mapping_removed=removed[0] if removed else None,
        low_port_mapping=low,
    )


def _add_mapping(igd: Any, port: int, lan: str) -> None:
    """AddPortMapping with a lease, as permanent where the router only takes those (725)."""
    from reverseprobe.portmap.errors import UpnpError

    try:
        igd.add_mapping(port, lan, port, CONTROL_DESCRIPTION, lease=CONTROL_LEASE_S)
    except UpnpError as exc:
        if exc.code != 725:
            raise
        igd.add_mapping(port, lan, port, CONTROL_DESCRIPTION, lease=0)
