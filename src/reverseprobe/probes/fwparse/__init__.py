"""Pure readers of firewall output: each takes the text a tool printed and says what happens to
one new inbound TCP connection to our port (model.Reading). No I/O here: probes/firewall.py
runs the tools; tests feed recorded samples (tests/samples/firewall/).

nft.py (nft -j list ruleset), iptables.py (iptables-save), ufw.py (ufw status verbose),
firewalld.py (firewall-cmd --list-all-zones), netsh.py (Windows netsh advfirewall),
macos.py (socketfilterfw); walk.py is the chain walk shared by nft and iptables.
"""

from reverseprobe.probes.fwparse.model import Inbound, ParseError, Reading, Verdict, worst

__all__ = ["Inbound", "ParseError", "Reading", "Verdict", "worst"]
