"""Port mapping on the home router: UPnP IGD (via miniupnpc), NAT-PMP (RFC 6886), PCP (RFC 6887).

`ssdp` finds the IGD fast (one socket, unicast + multicast M-SEARCH); `igd` wraps miniupnpc with
a timeout on every call and real error codes; `natpmp` is our own small NAT-PMP/PCP client.
Nothing here prints; every failure is an exception from `errors` or a result value.
"""
