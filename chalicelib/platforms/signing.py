"""The signature schemes the marketplaces use (TOP and JOS style), shared by
inbound verification and outbound API calls."""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from collections.abc import Callable, Mapping

# Java's Character.isWhitespace, which the platforms' SDKs judge "empty" by: the
# Unicode space separators except the no-break ones, and these controls.
_JAVA_WHITESPACE_CONTROLS = frozenset("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f")
_NO_BREAK_SPACES = frozenset("\u00a0\u2007\u202f")


def _java_whitespace(char: str) -> bool:
    if char in _JAVA_WHITESPACE_CONTROLS:
        return True
    return unicodedata.category(char) in ("Zs", "Zl", "Zp") and char not in _NO_BREAK_SPACES


def is_blank(text: str) -> bool:
    """Empty or whitespace-only, as the platforms' SDKs decide it (StringUtils.isEmpty)."""
    return all(_java_whitespace(char) for char in text)


def has_no_value(value: object) -> bool:
    """None or blank text: a field the platforms' SDKs neither send nor sign."""
    return value is None or (isinstance(value, str) and is_blank(value))


def without_blank(params: Mapping[str, str]) -> dict[str, str]:
    """The fields a TOP API sign (signTopRequest) or a JOS sign covers: those whose
    name and value are not blank."""
    return {
        name: value for name, value in params.items() if not is_blank(name) and not is_blank(value)
    }


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


# By the name the platforms give each scheme (`sign_method`).
SIGNERS: dict[str, Callable[[str, bytes], str]] = {
    "md5": md5_sign,
    "hmac-sha256": hmac_sha256_sign,
}
