"""Whether the router's external address shows another NAT beyond it (pure, one place for
`check` and `forward`). RFC 6598 shared space is carrier-grade NAT; a private or reserved
external address is a second router; a public one that differs from what the outside sees
is another NAT, a multi-WAN or a VPN path (miniupnp#298, #900)."""

from __future__ import annotations

from reverseprobe.addresses import AddressClass, classify

_NOT_PUBLIC = (
    AddressClass.PRIVATE,
    AddressClass.SHARED,
    AddressClass.LOOPBACK,
    AddressClass.LINK_LOCAL,
    AddressClass.RESERVED,
)


def double_nat(external: str | None, *, public: str | None = None) -> str | None:
    """Why another NAT sits beyond the router, else None.

    `external`: the router's external address; "" when the router says it has none (miniupnpd
    says Connected with no address when its WAN address is private or shared), None when it
    was not read. `public`: the public address an outside source saw, where one did."""
    if external is None:
        return None
    if external == "":
        return (
            "the router reports no external address while this network reaches the internet: "
            "another NAT sits between it and the internet"
            if public
            else "the router reports no external address (another NAT in front of it, or no "
            "internet connection)"
        )
    k = classify(external)
    if k is AddressClass.SHARED:
        return (
            f"the router's external address {external} is in 100.64.0.0/10, the shared space "
            "of carrier-grade NAT (RFC 6598): the ISP translates it again"
        )
    if k in _NOT_PUBLIC:
        return (
            f"the router's external address {external} is {k.value}, not a public address: "
            "another router NATs it again"
        )
    if public is not None and external != public:
        return (
            f"the router's external address {external} is not the public address {public}: "
            "another NAT (or a multi-WAN/VPN path) is in between"
        )
    return None
