"""What move-test knows about the addresses between us and the PACS (pure helpers)."""

from __future__ import annotations

from dataclasses import dataclass

from reverseprobe.addresses import is_behind_nat_address, is_publicly_routable


@dataclass(frozen=True)
class AddressView:
    """This PC's addresses as the PACS may see them (None: not known)."""

    lan: str | None = None  # source address of the default route
    toward_pacs: str | None = None  # source address the kernel uses to reach the PACS
    pacs_ip: str | None = None
    public: str | None = None
    public_consistent: bool | None = None
    public_note: str | None = None  # why the public address is unknown


def behind_nat(view: AddressView) -> bool:
    src = view.toward_pacs or view.lan
    return bool(view.public and src and src != view.public and not is_publicly_routable(src))


def pacs_outside(pacs_ip: str | None) -> bool:
    """Whether the PACS is beyond this network's NAT: any address but a private, shared,
    link-local or loopback one (a name that did not resolve counts as outside)."""
    return pacs_ip is None or not is_behind_nat_address(pacs_ip)
