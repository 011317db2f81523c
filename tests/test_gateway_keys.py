"""Gateway API keys: format, entropy, hashing, id parsing and verification."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.crypto.gateway_keys import generate_key, hash_key, parse_key_id, verify_key

KEY_FORMAT = re.compile(r"lgw-([0-9a-f]{8})-([A-Za-z0-9_-]{43})")


def test_generated_key_format() -> None:
    key_id, key = generate_key()
    match = KEY_FORMAT.fullmatch(key)
    assert match is not None
    assert match.group(1) == key_id
    assert len(key) == 56


def test_generated_key_entropy() -> None:
    key_id, key = generate_key()
    secret = key[len("lgw-") + 8 + 1 :]
    assert len(bytes.fromhex(key_id)) == 4
    raw = base64.urlsafe_b64decode(secret + "=")
    assert len(raw) == 32  # 256 bits
    assert base64.urlsafe_b64encode(raw).decode().rstrip("=") == secret


def test_generated_keys_are_unique() -> None:
    pairs = [generate_key() for _ in range(2000)]
    keys = [key for _, key in pairs]
    secrets_part = [key[13:] for key in keys]
    assert len(set(keys)) == len(keys)
    assert len(set(secrets_part)) == len(secrets_part)
    assert all(parse_key_id(key) == key_id for key_id, key in pairs)


def test_generated_secrets_use_the_whole_alphabet() -> None:
    # 300 keys * 43 characters: every one of the 64 symbols shows up.
    alphabet = set("".join(generate_key()[1][13:] for _ in range(300)))
    assert len(alphabet) == 64


def test_hash_key_format_and_known_answer() -> None:
    # SHA-256("abc") from FIPS 180-2.
    assert hash_key("abc") == (
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    _, key = generate_key()
    stored = hash_key(key)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", stored)
    assert stored == "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    assert key not in stored
    assert hash_key(key) == stored  # deterministic


def test_verify_key_accepts_the_right_key() -> None:
    _, key = generate_key()
    assert verify_key(key, hash_key(key)) is True


def test_verify_key_rejects_other_keys() -> None:
    key_id, key = generate_key()
    stored = hash_key(key)
    _, other = generate_key()
    assert verify_key(other, stored) is False
    last = key[-1]
    assert verify_key(key[:-1] + ("A" if last != "A" else "B"), stored) is False
    assert verify_key(key[:-1], stored) is False
    assert verify_key(key + "x", stored) is False
    assert verify_key(key.upper(), stored) is False
    assert verify_key("", stored) is False


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "sha256:",
        "sha256:00",
        "md5:0123456789abcdef0123456789abcdef",
        "SHA256:{digest}",
        "{digest}",
        "sha256:{digest}0",
        "sha256:{digest_upper}",
        "sha256:\u00e9\u00e9",
        "sha256:\ud800",
    ],
)
def test_verify_key_rejects_malformed_stored_hashes(stored: str) -> None:
    _, key = generate_key()
    digest = hashlib.sha256(key.encode()).hexdigest()
    value = stored.format(digest=digest, digest_upper=digest.upper())
    assert verify_key(key, value) is False


@pytest.mark.parametrize("key", ["\u00e9t\u00e9", "\ud800", "lgw-\x00", "x" * 100_000])
def test_verify_key_never_raises_on_garbage_keys(key: str) -> None:
    _, real = generate_key()
    assert verify_key(key, hash_key(real)) is False
    assert verify_key(key, hash_key(key)) is True


def test_parse_key_id_of_a_known_key() -> None:
    key = "lgw-0a1b2c3d-" + "Ab_-" * 10 + "xyz"
    assert parse_key_id(key) == "0a1b2c3d"


VALID_SECRET = "Ab_-" * 10 + "xyz"


@pytest.mark.parametrize(
    "key",
    [
        "",
        "lgw-",
        "lgw--",
        "lgw-0a1b2c3d",
        "lgw-0a1b2c3d-",
        "LGW-0a1b2c3d-" + VALID_SECRET,
        "lgw_0a1b2c3d_" + VALID_SECRET,
        "lgw-0A1B2C3D-" + VALID_SECRET,
        "lgw-0a1b2c3-" + VALID_SECRET + "x",
        "lgw-0a1b2c3dd-" + VALID_SECRET[1:],
        "lgw-0a1b2c3g-" + VALID_SECRET,
        "lgw-0a1b2c3d-" + VALID_SECRET[:-1],
        "lgw-0a1b2c3d-" + VALID_SECRET + "x",
        "lgw-0a1b2c3d-" + VALID_SECRET[:-1] + "+",
        "lgw-0a1b2c3d-" + VALID_SECRET[:-1] + "/",
        "lgw-0a1b2c3d-" + VALID_SECRET[:-1] + "=",
        "lgw-0a1b2c3d-" + VALID_SECRET[:-1] + "\n",
        " lgw-0a1b2c3d-" + VALID_SECRET[1:],
        "lgw-0a1b2c3d " + VALID_SECRET,
        "lgw-\uff10a1b2c3d-" + VALID_SECRET,  # fullwidth digit zero
        "lgw-0a1b2c3d-" + VALID_SECRET[:-1] + "\u00e9",
        "lgw-0a1b2c3d-" + VALID_SECRET[:-1] + "\ud800",
        "Bearer lgw-0a1b2c3d-" + VALID_SECRET,
        "lgw-0a1b2c3d-" + "A" * 10_000_000,
    ],
)
def test_parse_key_id_returns_none_for_malformed_keys(key: str) -> None:
    assert parse_key_id(key) is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=100))
def test_parse_key_id_never_raises(text: str) -> None:
    key_id = parse_key_id(text)
    if key_id is not None:
        assert KEY_FORMAT.fullmatch(text)
        assert text[4:12] == key_id


@settings(max_examples=100, deadline=None)
@given(
    key_id=st.text(alphabet="0123456789abcdef", min_size=8, max_size=8),
    secret=st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-",
        min_size=43,
        max_size=43,
    ),
)
def test_parse_key_id_accepts_every_well_formed_key(key_id: str, secret: str) -> None:
    assert parse_key_id(f"lgw-{key_id}-{secret}") == key_id
