"""The HTTP session deliveries go out on: resolves each host once, refuses
non-public addresses, connects to the address it checked (so DNS rebinding
cannot swap it), never follows redirects. Its own module so that requests and
requests_hardened load with the first delivery, not on every cold start."""

from __future__ import annotations

from functools import cache

import requests
from requests_hardened import Config, Manager
from requests_hardened.ip_filter import InvalidIPAddress
from requests_hardened.ip_filter_adapter import IPFilterAdapter

from chalicelib.integrators import address_allowed


class _PublicAddressAdapter(IPFilterAdapter):
    """requests_hardened's pinning adapter, refusing also what `address_allowed`
    refuses in the address it pinned (the one the connection goes to)."""

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: object = None
    ) -> tuple[dict, dict]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        pinned = host_params["host"].strip("[]")
        if not address_allowed(pinned, self._allow_loopback):
            raise InvalidIPAddress(pinned)
        return host_params, pool_kwargs


@cache
def session(allow_loopback: bool, timeout: tuple[float, float]) -> requests.Session:
    pinned = Manager(
        Config(
            ip_filter_enable=True,
            ip_filter_allow_loopback_ips=allow_loopback,
            never_redirect=True,
            default_timeout=timeout,
            user_agent_override="ShopHook-Webhooks/1.0",
        )
    ).get_session()
    for scheme in ("http://", "https://"):
        pinned.mount(
            scheme,
            _PublicAddressAdapter(
                is_https_proto=scheme == "https://", allow_loopback=allow_loopback
            ),
        )
    return pinned
