"""The adapter for integrators' endpoints: which URLs ShopHook delivers to, and
one delivery, signed per Standard Webhooks, over a session that resolves each
host once, refuses non-public addresses and connects to the address it checked
(so DNS rebinding cannot swap it: chalicelib.hardened_session).

requests, requests_hardened and standardwebhooks are imported where they are
used: a webhook's cold start needs none of them."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from time import perf_counter
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
# Deprecated IPv6 forms Python still calls global: IPv4-compatible addresses
# (RFC 4291 2.5.5.1: `::7f00:1` is 127.0.0.1, `::a9fe:a9fe` the metadata
# address) and site-local ones (`fec0::/10`, RFC 3879), which some stacks route
# inside the network.
DEPRECATED_IPV6 = (ipaddress.ip_network("::/96"), ipaddress.ip_network("fec0::/10"))


def address_allowed(address: str, allow_loopback: bool) -> bool:
    """Whether ShopHook may connect to this resolved address: globally routable
    (`is_global`), not multicast, not a deprecated IPv6 form, and not one
    requests_hardened refuses (loopback only with `allow_loopback`)."""
    import requests
    from requests_hardened.ip_filter import InvalidIPAddress, filter_host

    try:
        ip = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    try:
        filter_host(str(ip), 443, allow_loopback=allow_loopback)
    except (InvalidIPAddress, requests.RequestException):
        return False
    if allow_loopback and ip.is_loopback:
        return True
    deprecated = ip.version == 6 and any(ip in network for network in DEPRECATED_IPV6)
    return ip.is_global and not ip.is_multicast and not deprecated


def _is_loopback_literal(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def url_problem(url: str, resolve: bool, allow_loopback: bool) -> str | None:
    """Why ShopHook will not deliver to `url`, or None. With `resolve`, every
    address the host resolves to must be public (each delivery checks again)."""
    if len(url) > MAX_URL_LENGTH:
        return f"the URL is longer than {MAX_URL_LENGTH} characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "the URL cannot be parsed"
    host = parts.hostname or ""
    if not host:
        return "the URL has no host"
    if parts.username or parts.password:
        return "the URL must not carry credentials"
    loopback_http = allow_loopback and _is_loopback_literal(host)
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback_http):
        return "the URL must be https"
    if not resolve:
        return None
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        resolved = {info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
    except (socket.gaierror, UnicodeError):
        return f"the host '{host}' does not resolve"
    for address in resolved:
        if not address_allowed(address, loopback_http):
            return (
                f"the host '{host}' resolves to {address}, a loopback, private, "
                "link-local, multicast or metadata address"
            )
    return None


class DeliveryOutcome(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"  # 5xx, 408, 429, timeouts, connection trouble: try later
    REFUSED = "refused"  # another 4xx, or an address ShopHook does not deliver to


@dataclass(frozen=True)
class Answered:
    outcome: str
    error: str | None = None
    status_code: int | None = None
    latency_ms: float | None = None
    # No answer within the timeout: what the circuit breaker counts.
    timed_out: bool = False


@dataclass(frozen=True)
class Endpoint:
    url: str
    # whsec_..., the current secret first; each signs (during a rotation, two).
    secrets: tuple[str, ...]


def deliver(
    endpoint: Endpoint,
    webhook_id: str,
    payload: str,
    sent_at: datetime,
    allow_loopback: bool,
    timeout: tuple[float, float],
) -> Answered:
    """POST one event, signed per Standard Webhooks (`webhook-id` is the event's id,
    so an integrator can deduplicate on it) with each of the endpoint's secrets:
    the signatures space-separated, as the standard allows, so a verifier holding
    either secret accepts it."""
    import requests
    from requests_hardened.ip_filter import InvalidIPAddress
    from standardwebhooks import Webhook

    from chalicelib.hardened_session import session

    sent_at = sent_at.astimezone(UTC)
    signatures = [Webhook(secret).sign(webhook_id, sent_at, payload) for secret in endpoint.secrets]
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": " ".join(signatures),
        "content-type": "application/json",
    }
    started = perf_counter()
    try:
        answer = session(allow_loopback, timeout).post(
            endpoint.url, data=payload.encode(), headers=headers, stream=True
        )
        answer.close()
    except InvalidIPAddress:
        return Answered(
            DeliveryOutcome.REFUSED, "the URL resolves to an address ShopHook does not deliver to"
        )
    except requests.Timeout:
        return Answered(
            DeliveryOutcome.RETRY,
            "timed out",
            latency_ms=(perf_counter() - started) * 1000,
            timed_out=True,
        )
    except requests.RequestException as error:
        return Answered(DeliveryOutcome.RETRY, f"could not connect ({type(error).__name__})")
    latency = (perf_counter() - started) * 1000
    status = answer.status_code
    if 200 <= status < 300:
        return Answered(DeliveryOutcome.DELIVERED, status_code=status, latency_ms=latency)
    retry = status in (408, 429) or status >= 500
    return Answered(
        DeliveryOutcome.RETRY if retry else DeliveryOutcome.REFUSED,
        f"answered HTTP {status}",
        status_code=status,
        latency_ms=latency,
    )
