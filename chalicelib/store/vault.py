"""Secrets at rest (shop tokens, subscription signing secrets): KMS envelope
encryption with the AWS Encryption SDK.

Each ciphertext carries its data key (encrypted under SHOPHOOK_KMS_KEY_ID) and
is bound to its owner by the encryption context, so one shop's ciphertext
cannot be opened as another's. Plaintext secrets exist only in memory.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from typing import Any

from chalicelib.domain.model import ShopTokens
from chalicelib.settings import KMS_KEY_VARIABLE, settings


@cache
def _client() -> Any:
    # Imported on first use: most invocations never open a secret, and the SDK
    # (with its cryptography) would lengthen every cold start.
    import aws_encryption_sdk

    return aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=aws_encryption_sdk.CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )


def _provider() -> Any:
    key_id = settings().kms_key_id
    if not key_id:
        raise RuntimeError(f"{KMS_KEY_VARIABLE} is not set: tokens cannot be stored")
    return _provider_for(key_id)


@cache
def _provider_for(key_id: str) -> Any:
    """One provider (and so one KMS client) per key for the process: building
    one creates a boto3 client, some 300 ms, which every secret opened paid."""
    import aws_encryption_sdk

    return aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[key_id])


def seal_document(context: dict[str, str], document: dict[str, str]) -> bytes:
    """Encrypt `document`, bound to `context` (which shop, which subscription)."""
    ciphertext, _ = _client().encrypt(
        source=json.dumps(document).encode(),
        key_provider=_provider(),
        encryption_context=context,
    )
    return ciphertext


def open_document(context: dict[str, str], ciphertext: bytes) -> dict[str, str]:
    document, header = _client().decrypt(source=ciphertext, key_provider=_provider())
    if any(header.encryption_context.get(name) != value for name, value in context.items()):
        raise ValueError(f"this was sealed for another {', '.join(context)}")
    return json.loads(document)


def seal(shop_id: str, tokens: ShopTokens) -> bytes:
    return seal_document(
        {"shop_id": shop_id},
        {"access_token": tokens.access_token, "refresh_token": tokens.refresh_token},
    )


def open_sealed(
    shop_id: str, ciphertext: bytes, expires_at: datetime, refresh_expires_at: datetime | None
) -> ShopTokens:
    tokens = open_document({"shop_id": shop_id}, ciphertext)
    return ShopTokens(
        tokens["access_token"], tokens["refresh_token"], expires_at, refresh_expires_at
    )
