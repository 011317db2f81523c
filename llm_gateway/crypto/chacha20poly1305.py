"""ChaCha20-Poly1305 AEAD (RFC 8439) in pure standard-library Python.

Theory of operation: three layers, each a plain function of bytes to bytes.

1. ``chacha20_block(key, counter, nonce)`` builds the 16-word state
   (constants | key | counter | nonce, all little-endian 32-bit words), runs
   ten double rounds (a column round then a diagonal round), adds the input
   state back and serializes the 64-byte keystream block.
2. ``chacha20_encrypt`` concatenates keystream blocks for counters
   ``counter, counter + 1, ...`` and XORs them with the data in one big-integer
   operation instead of byte by byte.
3. ``poly1305_mac`` evaluates the Poly1305 polynomial with Python integers
   modulo 2^130 - 5. The AEAD (``encrypt``/``decrypt``) derives the one-time
   Poly1305 key from block 0, encrypts from block 1, and authenticates
   ``aad | pad16 | ciphertext | pad16 | len(aad) | len(ciphertext)``.

``decrypt`` checks the tag (with ``hmac.compare_digest``) before it decrypts
anything and raises ``InvalidTag`` on any mismatch.

Limits: Python integers are not constant-time, so this implementation is
meant for sealing secrets at rest (no online oracle), not for a network
protocol facing attackers who can measure timing. It is fast enough for
inputs of a few kilobytes.
"""

# One quarter-round step per line (three statements each) keeps the rounds readable.
# ruff: noqa: E702

from __future__ import annotations

import hmac
import struct

__all__ = [
    "KEY_SIZE",
    "NONCE_SIZE",
    "TAG_SIZE",
    "InvalidTag",
    "chacha20_block",
    "chacha20_encrypt",
    "decrypt",
    "encrypt",
    "poly1305_mac",
]

KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16

_BLOCK_SIZE = 64
_MASK32 = 0xFFFFFFFF
_MAX_COUNTER = 0xFFFFFFFF
# "expand 32-byte k" as four little-endian words.
_CONSTANTS = (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574)
_P1305 = (1 << 130) - 5
_CLAMP = 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF

_KEY_WORDS = struct.Struct("<8I")
_NONCE_WORDS = struct.Struct("<3I")
_STATE_BYTES = struct.Struct("<16I")


class InvalidTag(Exception):
    """The authentication tag does not match: wrong key, nonce, aad, or tampered data."""


def _check_key_nonce(key: bytes, nonce: bytes) -> None:
    if len(key) != KEY_SIZE:
        raise ValueError(f"ChaCha20 key must be {KEY_SIZE} bytes, got {len(key)}")
    if len(nonce) != NONCE_SIZE:
        raise ValueError(f"ChaCha20 nonce must be {NONCE_SIZE} bytes, got {len(nonce)}")


def _block(key_words: tuple[int, ...], counter: int, nonce_words: tuple[int, ...]) -> bytes:
    """One ChaCha20 block from pre-parsed words (no validation: callers do it)."""
    s0, s1, s2, s3 = _CONSTANTS
    s4, s5, s6, s7, s8, s9, s10, s11 = key_words
    s12 = counter
    s13, s14, s15 = nonce_words
    x0, x1, x2, x3, x4, x5, x6, x7 = s0, s1, s2, s3, s4, s5, s6, s7
    x8, x9, x10, x11, x12, x13, x14, x15 = s8, s9, s10, s11, s12, s13, s14, s15
    m = _MASK32
    # fmt: off
    for _ in range(10):
        # Column round: QR(0,4,8,12) QR(1,5,9,13) QR(2,6,10,14) QR(3,7,11,15).
        x0 = (x0 + x4) & m; x12 ^= x0; x12 = ((x12 << 16) & m) | (x12 >> 16)
        x8 = (x8 + x12) & m; x4 ^= x8; x4 = ((x4 << 12) & m) | (x4 >> 20)
        x0 = (x0 + x4) & m; x12 ^= x0; x12 = ((x12 << 8) & m) | (x12 >> 24)
        x8 = (x8 + x12) & m; x4 ^= x8; x4 = ((x4 << 7) & m) | (x4 >> 25)

        x1 = (x1 + x5) & m; x13 ^= x1; x13 = ((x13 << 16) & m) | (x13 >> 16)
        x9 = (x9 + x13) & m; x5 ^= x9; x5 = ((x5 << 12) & m) | (x5 >> 20)
        x1 = (x1 + x5) & m; x13 ^= x1; x13 = ((x13 << 8) & m) | (x13 >> 24)
        x9 = (x9 + x13) & m; x5 ^= x9; x5 = ((x5 << 7) & m) | (x5 >> 25)

        x2 = (x2 + x6) & m; x14 ^= x2; x14 = ((x14 << 16) & m) | (x14 >> 16)
        x10 = (x10 + x14) & m; x6 ^= x10; x6 = ((x6 << 12) & m) | (x6 >> 20)
        x2 = (x2 + x6) & m; x14 ^= x2; x14 = ((x14 << 8) & m) | (x14 >> 24)
        x10 = (x10 + x14) & m; x6 ^= x10; x6 = ((x6 << 7) & m) | (x6 >> 25)

        x3 = (x3 + x7) & m; x15 ^= x3; x15 = ((x15 << 16) & m) | (x15 >> 16)
        x11 = (x11 + x15) & m; x7 ^= x11; x7 = ((x7 << 12) & m) | (x7 >> 20)
        x3 = (x3 + x7) & m; x15 ^= x3; x15 = ((x15 << 8) & m) | (x15 >> 24)
        x11 = (x11 + x15) & m; x7 ^= x11; x7 = ((x7 << 7) & m) | (x7 >> 25)

        # Diagonal round: QR(0,5,10,15) QR(1,6,11,12) QR(2,7,8,13) QR(3,4,9,14).
        x0 = (x0 + x5) & m; x15 ^= x0; x15 = ((x15 << 16) & m) | (x15 >> 16)
        x10 = (x10 + x15) & m; x5 ^= x10; x5 = ((x5 << 12) & m) | (x5 >> 20)
        x0 = (x0 + x5) & m; x15 ^= x0; x15 = ((x15 << 8) & m) | (x15 >> 24)
        x10 = (x10 + x15) & m; x5 ^= x10; x5 = ((x5 << 7) & m) | (x5 >> 25)

        x1 = (x1 + x6) & m; x12 ^= x1; x12 = ((x12 << 16) & m) | (x12 >> 16)
        x11 = (x11 + x12) & m; x6 ^= x11; x6 = ((x6 << 12) & m) | (x6 >> 20)
        x1 = (x1 + x6) & m; x12 ^= x1; x12 = ((x12 << 8) & m) | (x12 >> 24)
        x11 = (x11 + x12) & m; x6 ^= x11; x6 = ((x6 << 7) & m) | (x6 >> 25)

        x2 = (x2 + x7) & m; x13 ^= x2; x13 = ((x13 << 16) & m) | (x13 >> 16)
        x8 = (x8 + x13) & m; x7 ^= x8; x7 = ((x7 << 12) & m) | (x7 >> 20)
        x2 = (x2 + x7) & m; x13 ^= x2; x13 = ((x13 << 8) & m) | (x13 >> 24)
        x8 = (x8 + x13) & m; x7 ^= x8; x7 = ((x7 << 7) & m) | (x7 >> 25)

        x3 = (x3 + x4) & m; x14 ^= x3; x14 = ((x14 << 16) & m) | (x14 >> 16)
        x9 = (x9 + x14) & m; x4 ^= x9; x4 = ((x4 << 12) & m) | (x4 >> 20)
        x3 = (x3 + x4) & m; x14 ^= x3; x14 = ((x14 << 8) & m) | (x14 >> 24)
        x9 = (x9 + x14) & m; x4 ^= x9; x4 = ((x4 << 7) & m) | (x4 >> 25)
    return _STATE_BYTES.pack(
        (x0 + s0) & m, (x1 + s1) & m, (x2 + s2) & m, (x3 + s3) & m,
        (x4 + s4) & m, (x5 + s5) & m, (x6 + s6) & m, (x7 + s7) & m,
        (x8 + s8) & m, (x9 + s9) & m, (x10 + s10) & m, (x11 + s11) & m,
        (x12 + s12) & m, (x13 + s13) & m, (x14 + s14) & m, (x15 + s15) & m,
    )
    # fmt: on


def chacha20_block(key: bytes, counter: int, nonce: bytes) -> bytes:
    """The 64-byte ChaCha20 keystream block for (key, 32-bit block counter, 96-bit nonce)."""
    _check_key_nonce(key, nonce)
    if not 0 <= counter <= _MAX_COUNTER:
        raise ValueError("ChaCha20 block counter must fit in 32 bits")
    return _block(_KEY_WORDS.unpack(key), counter, _NONCE_WORDS.unpack(nonce))


def chacha20_encrypt(key: bytes, counter: int, nonce: bytes, data: bytes) -> bytes:
    """XOR ``data`` with the keystream starting at block ``counter`` (encrypts and decrypts)."""
    _check_key_nonce(key, nonce)
    n = len(data)
    blocks = -(-n // _BLOCK_SIZE)
    if counter < 0 or counter + max(blocks - 1, 0) > _MAX_COUNTER:
        raise ValueError("ChaCha20 block counter would leave the 32-bit range")
    if n == 0:
        return b""
    key_words = _KEY_WORDS.unpack(key)
    nonce_words = _NONCE_WORDS.unpack(nonce)
    stream = b"".join(_block(key_words, counter + i, nonce_words) for i in range(blocks))
    mixed = int.from_bytes(data, "little") ^ int.from_bytes(stream[:n], "little")
    return mixed.to_bytes(n, "little")


def poly1305_mac(msg: bytes, key: bytes) -> bytes:
    """The 16-byte Poly1305 tag of ``msg`` under a 32-byte one-time key (r | s)."""
    if len(key) != 32:
        raise ValueError(f"Poly1305 key must be 32 bytes, got {len(key)}")
    r = int.from_bytes(key[:16], "little") & _CLAMP
    s = int.from_bytes(key[16:], "little")
    acc = 0
    for i in range(0, len(msg), 16):
        # Appending 0x01 adds the 2^(8 * block length) bit the algorithm calls for.
        acc = ((acc + int.from_bytes(msg[i : i + 16] + b"\x01", "little")) * r) % _P1305
    return ((acc + s) & ((1 << 128) - 1)).to_bytes(16, "little")


def _pad16(length: int) -> bytes:
    return bytes(-length % 16)


def _tag(otk: bytes, aad: bytes, ciphertext: bytes) -> bytes:
    mac_data = b"".join(
        (
            aad,
            _pad16(len(aad)),
            ciphertext,
            _pad16(len(ciphertext)),
            struct.pack("<QQ", len(aad), len(ciphertext)),
        )
    )
    return poly1305_mac(mac_data, otk)


def encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """AEAD_CHACHA20_POLY1305 encryption: returns ciphertext || 16-byte tag."""
    _check_key_nonce(key, nonce)
    otk = chacha20_block(key, 0, nonce)[:32]
    ciphertext = chacha20_encrypt(key, 1, nonce, plaintext)
    return ciphertext + _tag(otk, aad, ciphertext)


def decrypt(key: bytes, nonce: bytes, ciphertext_and_tag: bytes, aad: bytes = b"") -> bytes:
    """AEAD_CHACHA20_POLY1305 decryption; raises ``InvalidTag`` unless the tag verifies."""
    _check_key_nonce(key, nonce)
    if len(ciphertext_and_tag) < TAG_SIZE:
        raise InvalidTag("ciphertext is shorter than the authentication tag")
    ciphertext = ciphertext_and_tag[:-TAG_SIZE]
    received = ciphertext_and_tag[-TAG_SIZE:]
    otk = chacha20_block(key, 0, nonce)[:32]
    if not hmac.compare_digest(_tag(otk, aad, ciphertext), received):
        raise InvalidTag("authentication tag mismatch")
    return chacha20_encrypt(key, 1, nonce, ciphertext)
