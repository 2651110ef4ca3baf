"""A TCP listener that accepts and never answers.

python tests/peers/rawlisten.py HOST PORT [--reuseport]
"""

from __future__ import annotations

import socket
import sys

host, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if "--reuseport" in sys.argv:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind((host, port))
s.listen(16)
held = []
while True:
    conn, _ = s.accept()
    held.append(conn)  # hold it open, say nothing
