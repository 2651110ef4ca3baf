"""A pynetdicom Storage SCP for the receiver tests (the user's receiver stand-in).

python tests/peers/store_scp.py PORT AET [--ts UID ...] [--max-assoc N] [--require-called]
"""

from __future__ import annotations

import argparse
import logging
import threading

from pynetdicom import AE, AllStoragePresentationContexts, evt

p = argparse.ArgumentParser()
p.add_argument("port", type=int)
p.add_argument("aet")
p.add_argument("--ts", action="append", default=None, help="accepted transfer syntaxes")
p.add_argument("--max-assoc", type=int, default=10)
p.add_argument("--require-called", action="store_true")
a = p.parse_args()
logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
ae = AE(ae_title=a.aet)
ae.require_called_aet = a.require_called
ae.maximum_associations = a.max_assoc
ts = a.ts or ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]
for cx in AllStoragePresentationContexts:
    assert cx.abstract_syntax is not None
    ae.add_supported_context(cx.abstract_syntax, ts)
ae.add_supported_context("1.2.840.10008.1.1")
ae.start_server(("127.0.0.1", a.port), block=False, evt_handlers=[(evt.EVT_C_STORE, lambda e: 0)])
print("listening", flush=True)  # after the bind: the server thread serves from here on
threading.Event().wait()
