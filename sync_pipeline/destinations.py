"""Where webhooks to the app may go: addresses a key holder cannot point the daemon at.

Link-local addresses (169.254.0.0/16, fe80::/10, where clouds serve instance metadata and credentials),
cloud metadata addresses, unspecified, multicast and reserved addresses are always refused. Private and
loopback addresses (10/8, 172.16/12, 192.168/16, 127/8, ::1, fc00::/7, 100.64/10...) are refused for a
connection's `webhook_url_override` unless SYNC_PIPELINE_ALLOW_PRIVATE_WEBHOOK_URLS is true; the operator's
own SYNC_PIPELINE_WEBHOOK_URL may be private (an app on the same network). A host name is judged by every
address it resolves to, when the URL is given and again on every connection (DNS may change in between).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from functools import cache
from typing import Any

import certifi
import httpcore
import httpx

from sync_pipeline.settings import private_webhook_urls_allowed

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# Metadata services outside 169.254.0.0/16: AWS over IPv6, Alibaba Cloud.
METADATA_ADDRESSES = {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")}


class RefusedDestination(ValueError):
    """A webhook URL whose host is, or resolves to, an address webhooks may not go to."""


def refusal(address: Address, *, allow_private: bool) -> str | None:
    """Why webhooks may not go to `address`, or None when they may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES or address.is_link_local:
        return f"{address} is a link-local or cloud metadata address"
    # ::1 counts as reserved too (::/8): loopback is judged first, as private.
    if address.is_unspecified or address.is_multicast or (address.is_reserved and not address.is_loopback):
        return f"{address} is not a unicast address"
    if not allow_private and (address.is_loopback or not address.is_global):
        return (
            f"{address} is a private or loopback address (set SYNC_PIPELINE_ALLOW_PRIVATE_WEBHOOK_URLS=true "
            "to allow webhook_url_override to reach one)"
        )
    return None


def check_url(url: str, *, allow_private: bool | None = None) -> None:
    """Raise RefusedDestination when the URL's host is, or resolves to, a refused address.

    A host that does not resolve (yet) passes: delivery checks again when it connects.
    """
    allow = private_webhook_urls_allowed() if allow_private is None else allow_private
    try:
        host = httpx.URL(url).host
    except httpx.InvalidURL as error:
        raise RefusedDestination(f"{url!r} is not a usable URL: {error}") from None
    try:
        addresses = resolve(host)
    except OSError:
        return
    for address in addresses:
        reason = refusal(address, allow_private=allow)
        if reason:
            raise RefusedDestination(f"webhooks may not go to {host}: {reason}")


def resolve(host: str, port: int = 0) -> list[Address]:
    """Every address `host` names (a literal names itself; `2852039166` and `0x7f.1` are literals too)."""
    infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


def guarded_client(*, allow_private: bool, **options: Any) -> httpx.Client:
    """An httpx client that connects only to addresses `refusal` allows, checked at connection time."""
    return httpx.Client(transport=_GuardedTransport(allow_private), **options)


class _GuardedBackend(httpcore.SyncBackend):
    """Resolves the host itself, refuses if any address is refused, and connects to the address it checked,
    so a DNS answer that changes between the check and the connection cannot slip a private address in."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        try:
            addresses = resolve(host, port)
        except OSError as error:
            raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from None
        for address in addresses:
            reason = refusal(address, allow_private=self.allow_private)
            if reason:
                raise httpcore.ConnectError(f"refused to connect to {host}: {reason}")
        return super().connect_tcp(str(addresses[0]), port, timeout, local_address, socket_options)


@cache
def _ssl_context() -> ssl.SSLContext:
    """One per process: loading certifi's bundle for each delivery tick's clients was 5% of the daemon's samples."""
    return ssl.create_default_context(cafile=certifi.where())


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, allow_private: bool) -> None:
        super().__init__(verify=_ssl_context())
        # httpx builds its connection pool without a way to pass a network backend: build it again with ours.
        self._pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(),
            network_backend=_GuardedBackend(allow_private),
        )
