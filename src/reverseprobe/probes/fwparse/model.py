"""What a firewall reading says about one inbound connection, and the packet it is about.

Every parser answers the same question: what happens to a NEW inbound IPv4 TCP connection
(a SYN) to our port, arriving from a remote address we do not know on the interface of the
default route. Conditions we cannot evaluate (the source address, a rate limit, a module we
cannot read) are never guessed: they make the verdict conditional or unknown.
"""

from __future__ import annotations

from reverseprobe.model.firewall import _RANK as _RANK
from reverseprobe.model.firewall import Inbound as Inbound
from reverseprobe.model.firewall import ParseError as ParseError
from reverseprobe.model.firewall import Reading as Reading
from reverseprobe.model.firewall import Verdict as Verdict
from reverseprobe.model.firewall import worst as worst
