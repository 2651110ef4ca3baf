"""What `forward` found on the router and what it did: the `router` and `mapping` probe results.

A field left None was not read (tailscale netcheck's rule): `lease_granted` None means the
router was not asked, never "permanent" (that is 0).
"""

from __future__ import annotations

from reverseprobe.model.forward import DONE as DONE
from reverseprobe.model.forward import Action as Action
from reverseprobe.model.forward import MappingResult as MappingResult
from reverseprobe.model.forward import PortmapRouterResult as PortmapRouterResult
from reverseprobe.model.forward import Request as Request
from reverseprobe.model.forward import Via as Via

# The name before the move to model/forward.py (commands/forward.py and forward_keep.py use it);
# check's router probe result is model.check.RouterResult, a different class.
RouterResult = PortmapRouterResult
