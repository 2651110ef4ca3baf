"""The pynetdicom AE for every association we request, its raw socket on a Guard (guard.py).

pynetdicom's AE._create_socket is the one place a requestor's socket is made: it is wrapped
there, TLS under the guard (PS3.15 B.1), so our SCUs (echo, find, move, get) read with a
deadline and a byte budget like our SCPs (guarded_server.py).
"""

from __future__ import annotations

from typing import Any

from reverseprobe.dicom.guard import Guard, Limits


def guarded_ae(ae_title: str, limits: Limits) -> Any:
    """A pynetdicom AE whose requested associations each run on a Guard (`ae.guards`)."""
    from pynetdicom import AE

    class GuardedAE(AE):
        guards: list[Guard]

        def _create_socket(self, assoc: Any, address: Any, tls_args: Any) -> Any:
            sock: Any = super()._create_socket(assoc, address, tls_args)
            raw = sock.socket
            if tls_args:
                # Wrap under the guard, not over it: pynetdicom's own wrap would take the
                # raw socket out of it. connect() then does TCP and the handshake.
                context, server_hostname = tls_args
                raw = context.wrap_socket(raw, server_hostname=server_hostname)
                sock.tls_args = None
            guard = Guard(raw, limits, lambda: assoc.requestor.maximum_length)
            guard.assoc = assoc
            if tls_args:
                sock.__class__ = tls_association_socket()
            sock.socket = guard  # pynetdicom reads and writes through the guard from now on
            self.guards.append(guard)
            return sock

    ae = GuardedAE(ae_title=ae_title)
    ae.guards = []
    return ae


def tls_association_socket() -> Any:
    """pynetdicom asks select() whether data waits, and the SSLSocket's pending() only when
    its socket is an SSLSocket (#528): through a Guard it must ask pending() too."""
    from pynetdicom.transport import AssociationSocket

    class TlsAssociationSocket(AssociationSocket):
        @property
        def ready(self) -> bool:
            if super().ready:
                return True
            sock: Any = self.socket
            try:
                return sock is not None and bool(sock.pending())
            except (OSError, ValueError, AttributeError):
                return False

    return TlsAssociationSocket


def guard_of(ae: Any) -> Guard | None:
    """The Guard of the last association `ae` requested (None: it made none)."""
    guards = getattr(ae, "guards", None)
    return guards[-1] if guards else None
