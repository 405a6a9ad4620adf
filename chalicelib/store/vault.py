"""Shop tokens at rest: KMS envelope encryption with the AWS Encryption SDK.

Each ciphertext carries its data key (encrypted under SHOPHOOK_KMS_KEY_ID) and
is bound to its shop by the encryption context, so one shop's ciphertext
cannot be decrypted as another's. Plaintext tokens exist only in memory.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from functools import cache

import aws_encryption_sdk
from aws_encryption_sdk import CommitmentPolicy

from chalicelib.domain.model import ShopTokens

KEY_VARIABLE = "SHOPHOOK_KMS_KEY_ID"


@cache
def _client() -> aws_encryption_sdk.EncryptionSDKClient:
    return aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )


def _provider() -> aws_encryption_sdk.StrictAwsKmsMasterKeyProvider:
    key_id = os.environ.get(KEY_VARIABLE)
    if not key_id:
        raise RuntimeError(f"{KEY_VARIABLE} is not set: tokens cannot be stored")
    return aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[key_id])


def seal(shop_id: str, tokens: ShopTokens) -> bytes:
    document = json.dumps(
        {"access_token": tokens.access_token, "refresh_token": tokens.refresh_token}
    ).encode()
    ciphertext, _ = _client().encrypt(
        source=document, key_provider=_provider(), encryption_context={"shop_id": shop_id}
    )
    return ciphertext


def open_sealed(
    shop_id: str, ciphertext: bytes, expires_at: datetime, refresh_expires_at: datetime | None
) -> ShopTokens:
    document, header = _client().decrypt(source=ciphertext, key_provider=_provider())
    if header.encryption_context.get("shop_id") != shop_id:
        raise ValueError("these tokens were sealed for another shop")
    tokens = json.loads(document)
    return ShopTokens(
        tokens["access_token"], tokens["refresh_token"], expires_at, refresh_expires_at
    )
