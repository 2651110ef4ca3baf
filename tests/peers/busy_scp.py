"""A pynetdicom Storage SCP that takes one association at a time and holds its first C-STORE
until it has refused a second association from a given implementation (issue 11: two moves
at once at a receiver with maximum_associations=1). The hold is an event, not a sleep: the
first move's sub-association is open for sure while the second move's is refused, and the
first move then completes.

python tests/peers/busy_scp.py PORT AET --hold-until-refused OFFIS_DCMTK [--hold-timeout S]

Log lines (stdout, flushed): listening | accepted IMPL CALLING | refused IMPL CALLING |
holding | released refused|timeout | stored N
"""

from __future__ import annotations

import argparse
import logging
import threading
from typing import Any

from pynetdicom import AE, AllStoragePresentationContexts, evt

p = argparse.ArgumentParser()
p.add_argument("port", type=int)
p.add_argument("aet")
p.add_argument("--max-assoc", type=int, default=1)
p.add_argument("--hold-until-refused", default="", help="implementation version name prefix")
p.add_argument("--hold-timeout", type=float, default=120.0, help="a bound, never reached")
a = p.parse_args()
logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)

refused = threading.Event()
lock = threading.Lock()
state = {"stored": 0, "held": False}


def say(line: str) -> None:
    with lock:
        print(line, flush=True)


def _who(event: Any) -> tuple[str, str]:
    rq = event.assoc.requestor
    try:
        name = rq.implementation_version_name
        calling = rq.primitive.calling_ae_title if rq.primitive is not None else ""
    except Exception as exc:  # said in the log, never a silent miss
        say(f"error reading the requestor: {exc!r}")
        return "-", "-"
    return str(name or "-").strip(), str(calling or "-").strip()


def on_rejected(event: Any) -> None:
    impl, calling = _who(event)
    say(f"refused {impl} {calling}")
    if a.hold_until_refused and impl.startswith(a.hold_until_refused):
        refused.set()


def on_accepted(event: Any) -> None:
    impl, calling = _who(event)
    say(f"accepted {impl} {calling}")


def on_store(event: Any) -> int:
    with lock:
        first = not state["held"]
        state["held"] = True
    if first and a.hold_until_refused:
        say("holding")
        ok = refused.wait(a.hold_timeout)
        say("released " + ("refused" if ok else "timeout"))
    with lock:
        state["stored"] += 1
        n = state["stored"]
    say(f"stored {n}")
    return 0


ae = AE(ae_title=a.aet)
ae.maximum_associations = a.max_assoc
ae.dimse_timeout = a.hold_timeout + 30
ae.network_timeout = a.hold_timeout + 30
for cx in AllStoragePresentationContexts:
    assert cx.abstract_syntax is not None
    ae.add_supported_context(cx.abstract_syntax, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
ae.add_supported_context("1.2.840.10008.1.1")
handlers: list[Any] = [
    (evt.EVT_C_STORE, on_store),
    (evt.EVT_REJECTED, on_rejected),
    (evt.EVT_ACCEPTED, on_accepted),
]
ae.start_server(("127.0.0.1", a.port), block=False, evt_handlers=handlers)
say("listening")  # after the bind: the server thread serves from here on
threading.Event().wait()
