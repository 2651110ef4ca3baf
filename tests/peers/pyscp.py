"""A pynetdicom Verification SCP for tests.

python tests/peers/pyscp.py HOST PORT AET [--require-called]
"""

from __future__ import annotations

import argparse
import logging

from pynetdicom import AE

p = argparse.ArgumentParser()
p.add_argument("host")
p.add_argument("port", type=int)
p.add_argument("aet")
p.add_argument("--require-called", action="store_true")
a = p.parse_args()
logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
ae = AE(ae_title=a.aet)
ae.require_called_aet = a.require_called
ae.add_supported_context("1.2.840.10008.1.1")
print("listening", flush=True)
ae.start_server((a.host, a.port), block=True)
