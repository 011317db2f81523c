"""Secret key loading, sealing/unsealing of stored secrets, and masking for listings."""

from __future__ import annotations

import base64
import logging
import os
import re
import stat
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.crypto import sealing
from llm_gateway.crypto.chacha20poly1305 import decrypt, encrypt
from llm_gateway.crypto.sealing import (
    SECRET_KEY_ENV,
    is_sealed,
    load_secret_key,
    mask,
    seal,
    unseal,
)
from llm_gateway.errors import ConfigError, SecretKeyError

KEY = bytes(range(32))
KEY_HEX = KEY.hex()
KEY_B64 = base64.urlsafe_b64encode(KEY).decode()  # 44 characters, one "="
OTHER_KEY = bytes(range(1, 33))
POSIX = os.name == "posix"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- load_secret_key: environment ----------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        KEY_HEX,
        KEY_HEX.upper(),
        KEY_B64,
        KEY_B64.rstrip("="),
        f"  {KEY_HEX}\n",
    ],
    ids=["hex", "upper hex", "base64", "base64 unpadded", "surrounding whitespace"],
)
def test_env_key_accepted_encodings(tmp_path: Path, value: str) -> None:
    assert load_secret_key(tmp_path, {SECRET_KEY_ENV: value}, create=False) == KEY


def test_env_key_base64_with_url_safe_characters(tmp_path: Path) -> None:
    key = bytes([0xFB, 0xFF] * 16)  # encodes to "-" and "_", never "+" or "/"
    value = base64.urlsafe_b64encode(key).decode()
    assert "-" in value and "_" in value
    assert load_secret_key(tmp_path, {SECRET_KEY_ENV: value}, create=False) == key


def test_env_key_wins_over_key_file(tmp_path: Path) -> None:
    (tmp_path / "secret.key").write_text(OTHER_KEY.hex() + "\n")
    assert load_secret_key(tmp_path, {SECRET_KEY_ENV: KEY_HEX}, create=True) == KEY


def test_env_key_does_not_create_a_key_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    load_secret_key(home, {SECRET_KEY_ENV: KEY_HEX}, create=True)
    assert not home.exists()


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        KEY_HEX[:-1],
        KEY_HEX + "0",
        KEY_HEX[:-1] + "g",
        base64.urlsafe_b64encode(KEY[:31]).decode(),
        base64.urlsafe_b64encode(KEY + b"\x00").decode(),
        base64.b64encode(bytes([0xFB, 0xFF] * 16)).decode(),  # standard alphabet: + and /
        KEY_B64.rstrip("=")[:-1] + "B",  # non-canonical: spare bits set
        KEY_B64 + "=",
        "correct horse battery staple",
    ],
    ids=[
        "empty",
        "blank",
        "63 hex",
        "65 hex",
        "non-hex digit",
        "31 bytes b64",
        "33 bytes b64",
        "standard base64 alphabet",
        "non-canonical base64",
        "extra padding",
        "passphrase",
    ],
)
def test_env_key_malformed_is_an_error_that_does_not_echo_it(tmp_path: Path, value: str) -> None:
    (tmp_path / "secret.key").write_text(KEY_HEX)  # never used as a fallback
    with pytest.raises(SecretKeyError) as info:
        load_secret_key(tmp_path, {SECRET_KEY_ENV: value}, create=True)
    message = str(info.value)
    assert SECRET_KEY_ENV in message
    assert "64 hex digits" in message
    if value.strip():
        assert value.strip() not in message


def test_secret_key_error_is_a_config_error() -> None:
    assert issubclass(SecretKeyError, ConfigError)


# --- load_secret_key: key file -------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [KEY_HEX, KEY_HEX + "\n", KEY_HEX + "\r\n", KEY_B64 + "\n", KEY_B64.rstrip("=")],
    ids=["hex", "hex newline", "hex crlf", "base64 newline", "base64 unpadded"],
)
def test_key_file_accepted_encodings(tmp_path: Path, content: str) -> None:
    (tmp_path / "secret.key").write_bytes(content.encode())
    assert load_secret_key(tmp_path, {}, create=False) == KEY


def test_missing_key_file_without_create_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SecretKeyError) as info:
        load_secret_key(tmp_path, {}, create=False)
    assert str(tmp_path / "secret.key") in str(info.value)
    assert SECRET_KEY_ENV in str(info.value)
    assert not (tmp_path / "secret.key").exists()


def test_missing_key_file_is_created_with_private_permissions(tmp_path: Path) -> None:
    home = tmp_path / "state" / "llm-gateway"
    key = load_secret_key(home, {}, create=True)
    path = home / "secret.key"
    assert len(key) == 32
    assert path.read_text() == key.hex() + "\n"
    if POSIX:
        assert _mode(path) == 0o600
        assert _mode(home) == 0o700
    # The next start reads the same key, with or without create.
    assert load_secret_key(home, {}, create=False) == key
    assert load_secret_key(home, {}, create=True) == key


def test_created_keys_are_random(tmp_path: Path) -> None:
    first = load_secret_key(tmp_path / "a", {}, create=True)
    second = load_secret_key(tmp_path / "b", {}, create=True)
    assert first != second


def test_existing_home_directory_mode_is_left_alone(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)
    load_secret_key(home, {}, create=True)
    if POSIX:
        assert _mode(home) == 0o755
        assert _mode(home / "secret.key") == 0o600


def test_concurrent_creators_agree_on_one_key(tmp_path: Path) -> None:
    home = tmp_path / "home"
    barrier = threading.Barrier(8)
    results: list[bytes] = []
    errors: list[BaseException] = []

    def worker() -> None:
        barrier.wait()
        try:
            results.append(load_secret_key(home, {}, create=True))
        except BaseException as exc:  # collected and re-checked below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 8
    assert len(set(results)) == 1
    assert (home / "secret.key").read_text() == results[0].hex() + "\n"


def test_empty_key_file_being_written_is_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process has created the file (O_EXCL) but not written it yet; it
    # writes the key while this process is waiting.
    path = tmp_path / "secret.key"
    path.write_text("")
    sleeps: list[float] = []

    def other_process_writes(seconds: float) -> None:
        sleeps.append(seconds)
        path.write_text(KEY_HEX + "\n")

    monkeypatch.setattr(time, "sleep", other_process_writes)
    assert load_secret_key(tmp_path, {}, create=True) == KEY
    assert len(sleeps) == 1


def test_empty_key_file_that_stays_empty_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sealing, "_EMPTY_FILE_WAIT_SECONDS", 0.05)
    monkeypatch.setattr(sealing, "_EMPTY_FILE_POLL_SECONDS", 0.01)
    (tmp_path / "secret.key").write_text("")
    with pytest.raises(SecretKeyError, match="malformed"):
        load_secret_key(tmp_path, {}, create=True)


@pytest.mark.parametrize(
    "content",
    [KEY_HEX[:-2] + "\n", "not a key\n", KEY_HEX + KEY_HEX, KEY_HEX[:32] + " " + KEY_HEX[32:]],
    ids=["short", "text", "two keys", "inner space"],
)
def test_malformed_key_file_is_an_error_naming_the_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "secret.key"
    path.write_text(content)
    with pytest.raises(SecretKeyError) as info:
        load_secret_key(tmp_path, {}, create=True)
    assert str(path) in str(info.value)
    assert "malformed" in str(info.value)
    assert content.strip() not in str(info.value)
    assert path.read_text() == content  # never overwritten


def test_key_file_that_is_not_text_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "secret.key").write_bytes(b"\xff\xfe" + KEY)
    with pytest.raises(SecretKeyError, match="not valid UTF-8"):
        load_secret_key(tmp_path, {}, create=False)


def test_unreadable_key_path_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "secret.key").mkdir()
    with pytest.raises(SecretKeyError, match="cannot read secret key file"):
        load_secret_key(tmp_path, {}, create=True)


@pytest.mark.skipif(not POSIX, reason="POSIX permission bits")
def test_key_file_open_to_others_is_accepted_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "secret.key"
    path.write_text(KEY_HEX + "\n")
    os.chmod(path, 0o644)
    with caplog.at_level(logging.WARNING, logger="llm_gateway.crypto.sealing"):
        assert load_secret_key(tmp_path, {}, create=False) == KEY
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert str(path) in message
    assert "644" in message
    assert "chmod 600" in message
    assert KEY_HEX not in caplog.text


@pytest.mark.skipif(not POSIX, reason="POSIX permission bits")
def test_private_key_file_loads_without_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "secret.key"
    path.write_text(KEY_HEX + "\n")
    os.chmod(path, 0o600)
    with caplog.at_level(logging.WARNING, logger="llm_gateway.crypto.sealing"):
        load_secret_key(tmp_path, {}, create=False)
    assert caplog.records == []


# --- seal / unseal ---------------------------------------------------------------

TOKEN_BODY = re.compile(r"[A-Za-z0-9_-]+")


def _b64decode(body: str) -> bytes:
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def test_seal_format() -> None:
    token = seal(KEY, "sk-ant-api03-secret", context="account:work/api_key")
    assert token.startswith("enc:v1:")
    body = token[len("enc:v1:") :]
    assert TOKEN_BODY.fullmatch(body)  # URL-safe alphabet, no padding
    raw = _b64decode(body)
    assert len(raw) == 12 + len(b"sk-ant-api03-secret") + 16
    assert "sk-ant" not in token


def test_seal_layout_is_nonce_ciphertext_tag_with_labelled_context() -> None:
    token = seal(KEY, "hunter2-upstream", context="account:a/api_key")
    raw = _b64decode(token[len("enc:v1:") :])
    aad = b"llm-gateway enc:v1\x00account:a/api_key"
    assert decrypt(KEY, raw[:12], raw[12:], aad) == b"hunter2-upstream"


def test_unseal_reads_a_token_built_from_the_documented_layout() -> None:
    nonce = bytes(range(100, 112))
    aad = b"llm-gateway enc:v1\x00account:b/api_key"
    raw = nonce + encrypt(KEY, nonce, "s3cr\u00e9t \u2603".encode(), aad)
    token = "enc:v1:" + base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert unseal(KEY, token, context="account:b/api_key") == "s3cr\u00e9t \u2603"
    # Padding is optional on input.
    padded = "enc:v1:" + base64.urlsafe_b64encode(raw).decode()
    assert unseal(KEY, padded, context="account:b/api_key") == "s3cr\u00e9t \u2603"


def test_seal_uses_a_fresh_nonce_each_time() -> None:
    tokens = {seal(KEY, "same secret", context="c") for _ in range(20)}
    assert len(tokens) == 20
    assert {unseal(KEY, t, context="c") for t in tokens} == {"same secret"}


def test_seal_empty_and_unicode_round_trip() -> None:
    for text in ["", "x", "p\u00e4ssw\u00f6rd \U0001f511", "a" * 5000]:
        assert unseal(KEY, seal(KEY, text, context="ctx"), context="ctx") == text


DECRYPT_FAILURE = "cannot be decrypted: wrong secret key or corrupted value"


def test_unseal_with_wrong_key_fails_without_revealing_anything() -> None:
    token = seal(KEY, "sk-live-very-secret-value", context="account:a/api_key")
    with pytest.raises(SecretKeyError) as info:
        unseal(OTHER_KEY, token, context="account:a/api_key")
    message = str(info.value)
    assert DECRYPT_FAILURE in message
    assert "account:a/api_key" in message
    assert "very-secret" not in message
    assert token not in message


def test_sealed_value_moved_to_another_account_does_not_decrypt() -> None:
    token = seal(KEY, "sk-live-value", context="account:a/api_key")
    for other in ["account:b/api_key", "account:a/other_field", "account:a/api_key ", ""]:
        with pytest.raises(SecretKeyError, match=DECRYPT_FAILURE):
            unseal(KEY, token, context=other)


def test_every_corrupted_character_is_detected() -> None:
    token = seal(KEY, "upstream-secret", context="c")
    prefix_len = len("enc:v1:")
    for index in range(prefix_len, len(token)):
        replacement = "A" if token[index] != "A" else "B"
        corrupted = token[:index] + replacement + token[index + 1 :]
        with pytest.raises(SecretKeyError, match=DECRYPT_FAILURE):
            unseal(KEY, corrupted, context="c")


def test_non_canonical_spelling_of_a_valid_token_is_rejected() -> None:
    # 12 + 0 + 16 = 28 bytes: the last base64 character carries 4 unused bits.
    token = seal(KEY, "", context="c")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = token[-1]
    variant = token[:-1] + alphabet[alphabet.index(last) + 1]
    # A lenient decoder sees the same bytes in both spellings ...
    assert _b64decode(variant[len("enc:v1:") :]) == _b64decode(token[len("enc:v1:") :])
    # ... but only the canonical one is accepted.
    assert unseal(KEY, token, context="c") == ""
    with pytest.raises(SecretKeyError, match=DECRYPT_FAILURE):
        unseal(KEY, variant, context="c")


@pytest.mark.parametrize(
    "body",
    [
        "",
        "A",
        "AAAA",
        "A" * 36,  # 27 bytes: shorter than nonce + tag
        "not base64!",
        "+/+/" * 12,  # standard alphabet is not accepted
        "AAAA=AAAA",
        "A" * 45,  # impossible base64 length
        "\u00e9" * 40,
    ],
)
def test_malformed_token_bodies_fail_cleanly(body: str) -> None:
    with pytest.raises(SecretKeyError, match=DECRYPT_FAILURE):
        unseal(KEY, "enc:v1:" + body, context="c")


@pytest.mark.parametrize("value", ["sk-ant-plaintext", "", "ENC:V1:abc", "enc-v1-abc", "v1:abc"])
def test_unseal_of_a_value_that_is_not_sealed(value: str) -> None:
    with pytest.raises(SecretKeyError) as info:
        unseal(KEY, value, context="account:a/api_key")
    assert "is not a sealed secret" in str(info.value)
    assert "'enc:v1:'" in str(info.value)
    if value:
        assert value not in str(info.value)


@pytest.mark.parametrize("value", ["enc:v2:AAAA", "enc:", "enc:v1"])
def test_unseal_of_an_unknown_sealed_format(value: str) -> None:
    with pytest.raises(SecretKeyError, match="unsupported format"):
        unseal(KEY, value, context="c")


def test_is_sealed() -> None:
    assert is_sealed(seal(KEY, "x", context="c"))
    assert is_sealed("enc:v1:anything")
    assert is_sealed("enc:v2:future")  # routed to unseal, which explains the problem
    assert not is_sealed("sk-ant-api03-abc")
    assert not is_sealed("")
    assert not is_sealed("ENC:v1:abc")
    assert not is_sealed(" enc:v1:abc")


@settings(max_examples=40, deadline=None)
@given(plaintext=st.text(max_size=200), context=st.text(max_size=60))
def test_seal_round_trip(plaintext: str, context: str) -> None:
    token = seal(KEY, plaintext, context=context)
    assert is_sealed(token)
    assert unseal(KEY, token, context=context) == plaintext


# --- mask ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "masked"),
    [
        ("sk-ant-api03-" + "x" * 80 + "wxyz", "sk-ant-…wxyz"),
        ("sk-proj-" + "Q" * 40 + "wxyz", "sk-proj-…wxyz"),
        ("sk-" + "Abc123" * 8 + "wxyz", "sk-…wxyz"),
        ("lgw-0a1b2c3d-" + "z" * 43 + "wxyz", "lgw-…wxyz"),
        ("gsk_" + "8" * 40 + "wxyz", "gsk_…wxyz"),
        ("AIzaSyD" + "k" * 30 + "wxyz", "…wxyz"),
        ("0123456789ab", "…89ab"),
        ("0123456789a", "…"),
        ("short", "…"),
        ("", "…"),
        # Prefix plus fewer than 12 hidden characters: the tail is dropped.
        ("sk-ant-" + "abcdefghij", "sk-ant-…"),
        # Fewer than 8 characters after the prefix: the prefix is not shown.
        ("sk-ant-abcdefg", "…defg"),
        # Not vendor-looking: digits, upper case, too long a group.
        ("AB-" + "c" * 20 + "wxyz", "…wxyz"),
        ("abcdef-" + "c" * 20 + "wxyz", "…wxyz"),
        ("ab12-" + "c" * 20 + "wxyz", "…wxyz"),
    ],
)
def test_mask_examples(secret: str, masked: str) -> None:
    assert mask(secret) == masked


@settings(max_examples=200, deadline=None)
@given(secret=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80))
def test_mask_never_reveals_more_than_prefix_and_four_trailing_characters(secret: str) -> None:
    masked = mask(secret)
    head, ellipsis, tail = masked.partition("…")
    assert ellipsis == "…"
    assert secret.startswith(head)
    assert secret.endswith(tail)
    assert len(tail) <= 4
    assert len(head) <= 12
    if len(secret) < 12:
        assert masked == "…"
    else:
        assert len(secret) - len(head) - len(tail) >= 8
