"""Which client sent a request: the TCP peer, or what a trusted reverse proxy says it forwarded for."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
SCHEMES = ("http", "https")


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """Addresses and CIDR blocks (`127.0.0.1`, `10.0.0.0/8`, `::1`); ValueError names a bad entry."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or CIDR block") from None
    return tuple(networks)


def parse_address(text: str) -> Address | None:
    """An IP address as a proxy may write it (`1.2.3.4`, `1.2.3.4:5678`, `::1`, `[::1]:80`); None if none."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # IPv4 with a port; bare IPv6 has two colons or more
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class TrustedProxies:
    """The proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed."""

    networks: tuple[Network, ...] = ()

    def trusts(self, address: Address | None) -> bool:
        """Whether `address` is one of the trusted proxies."""
        return address is not None and any(address in network for network in self.networks)

    def client_address(self, peer: str | None, forwarded_for: Iterable[str]) -> str | None:
        """The client's address: the right-most `X-Forwarded-For` entry that is no trusted proxy.

        Only a trusted peer's header counts; entries are read from the right because each proxy
        appends the address it saw, and anything left of the last trusted hop was written by the
        client itself. An unreadable entry stops the walk at the trusted hop right of it.
        """
        address = parse_address(peer) if peer else None
        if not self.trusts(address):
            return peer
        nearest = peer
        hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
        for hop in reversed(hops):
            address = parse_address(hop)
            if address is None:
                return nearest
            nearest = str(address)
            if not self.trusts(address):
                return nearest
        return nearest

    def client_scheme(self, peer: str | None, scheme: str, forwarded_proto: str | None) -> str:
        """`scheme` of the connection, or a trusted peer's `X-Forwarded-Proto` (its right-most http/https)."""
        if not forwarded_proto or not self.trusts(parse_address(peer) if peer else None):
            return scheme
        claimed = forwarded_proto.split(",")[-1].strip().lower()
        return claimed if claimed in SCHEMES else scheme
