"""The signature schemes the marketplaces use (TOP and JOS style), shared by
inbound verification and outbound API calls."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping


def joined_params(params: Mapping[str, str]) -> bytes:
    """Every parameter sorted by name (byte order), concatenated `name + value`."""
    ordered = sorted(params.items(), key=lambda pair: pair[0].encode())
    return "".join(name + value for name, value in ordered).encode()


def md5_sign(secret: str, payload: bytes) -> str:
    return hashlib.md5(secret.encode() + payload + secret.encode()).hexdigest().upper()  # noqa: S324 - the platforms' scheme


def hmac_sha256_sign(secret: str, payload: bytes) -> str:
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest().upper()


def signatures_match(expected: str, provided: str) -> bool:
    return hmac.compare_digest(expected.encode(), provided.encode())
