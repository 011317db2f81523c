"""ChaCha20-Poly1305 against the RFC 8439 test vectors, plus tampering and round trips.

Every expected value below is transcribed from the text of RFC 8439; section
numbers are given with each test.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.crypto.chacha20poly1305 import (
    InvalidTag,
    chacha20_block,
    chacha20_encrypt,
    decrypt,
    encrypt,
    poly1305_mac,
)


def h(text: str) -> bytes:
    """Bytes from hex written with any spacing, as the RFC prints it."""
    return bytes.fromhex("".join(text.split()))


KEY_00_1F = bytes(range(0x00, 0x20))
KEY_80_9F = bytes(range(0x80, 0xA0))
SUNSCREEN = (
    b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for "
    b"the future, sunscreen would be it."
)


# --- ChaCha20 block function -------------------------------------------------


def test_block_function_rfc_2_3_2() -> None:
    block = chacha20_block(KEY_00_1F, 1, h("00 00 00 09 00 00 00 4a 00 00 00 00"))
    assert block == h(
        """
        10 f1 e7 e4 d1 3b 59 15 50 0f dd 1f a3 20 71 c4
        c7 d1 f4 c7 33 c0 68 03 04 22 aa 9a c3 d4 6c 4e
        d2 82 64 46 07 9f aa 09 14 c2 d7 05 d9 8b 02 a2
        b5 12 9c d1 de 16 4e b9 cb d0 83 e8 a2 50 3c 4e
        """
    )


@pytest.mark.parametrize(
    ("key", "nonce", "counter", "keystream"),
    [
        pytest.param(
            bytes(32),
            bytes(12),
            0,
            """
            76 b8 e0 ad a0 f1 3d 90 40 5d 6a e5 53 86 bd 28
            bd d2 19 b8 a0 8d ed 1a a8 36 ef cc 8b 77 0d c7
            da 41 59 7c 51 57 48 8d 77 24 e0 3f b8 d8 4a 37
            6a 43 b8 f4 15 18 a1 1c c3 87 b6 69 b2 ee 65 86
            """,
            id="A.1 #1",
        ),
        pytest.param(
            bytes(31) + b"\x01",
            bytes(12),
            1,
            """
            3a eb 52 24 ec f8 49 92 9b 9d 82 8d b1 ce d4 dd
            83 20 25 e8 01 8b 81 60 b8 22 84 f3 c9 49 aa 5a
            8e ca 00 bb b4 a7 3b da d1 92 b5 c4 2f 73 f2 fd
            4e 27 36 44 c8 b3 61 25 a6 4a dd eb 00 6c 13 a0
            """,
            id="A.1 #3",
        ),
        pytest.param(
            b"\x00\xff" + bytes(30),
            bytes(12),
            2,
            """
            72 d5 4d fb f1 2e c4 4b 36 26 92 df 94 13 7f 32
            8f ea 8d a7 39 90 26 5e c1 bb be a1 ae 9a f0 ca
            13 b2 5a a2 6c b4 a6 48 cb 9b 9d 1b e6 5b 2c 09
            24 a6 6c 54 d5 45 ec 1b 73 74 f4 87 2e 99 f0 96
            """,
            id="A.1 #4",
        ),
        pytest.param(
            bytes(32),
            bytes(11) + b"\x02",
            0,
            """
            c2 c6 4d 37 8c d5 36 37 4a e2 04 b9 ef 93 3f cd
            1a 8b 22 88 b3 df a4 96 72 ab 76 5b 54 ee 27 c7
            8a 97 0e 0e 95 5c 14 f3 a8 8e 74 1b 97 c2 86 f7
            5f 8f c2 99 e8 14 83 62 fa 19 8a 39 53 1b ed 6d
            """,
            id="A.1 #5",
        ),
    ],
)
def test_block_function_appendix_a_1(
    key: bytes, nonce: bytes, counter: int, keystream: str
) -> None:
    assert chacha20_block(key, counter, nonce) == h(keystream)


# --- ChaCha20 encryption -----------------------------------------------------


SUNSCREEN_CHACHA20_CIPHERTEXT = h(
    """
    6e 2e 35 9a 25 68 f9 80 41 ba 07 28 dd 0d 69 81
    e9 7e 7a ec 1d 43 60 c2 0a 27 af cc fd 9f ae 0b
    f9 1b 65 c5 52 47 33 ab 8f 59 3d ab cd 62 b3 57
    16 39 d6 24 e6 51 52 ab 8f 53 0c 35 9f 08 61 d8
    07 ca 0d bf 50 0d 6a 61 56 a3 8e 08 8a 22 b6 5e
    52 bc 51 4d 16 cc f8 06 81 8c e9 1a b7 79 37 36
    5a f9 0b bf 74 a3 5b e6 b4 0b 8e ed f2 78 5e 42
    87 4d
    """
)


def test_encryption_rfc_2_4_2() -> None:
    nonce = h("00 00 00 00 00 00 00 4a 00 00 00 00")
    assert len(SUNSCREEN) == 114
    assert chacha20_encrypt(KEY_00_1F, 1, nonce, SUNSCREEN) == SUNSCREEN_CHACHA20_CIPHERTEXT
    # The same operation decrypts.
    assert chacha20_encrypt(KEY_00_1F, 1, nonce, SUNSCREEN_CHACHA20_CIPHERTEXT) == SUNSCREEN


def test_encryption_keystream_is_consecutive_blocks() -> None:
    nonce = bytes(range(12))
    stream = chacha20_encrypt(KEY_80_9F, 7, nonce, bytes(64 * 3 + 5))
    expected = b"".join(chacha20_block(KEY_80_9F, 7 + i, nonce) for i in range(4))[: 64 * 3 + 5]
    assert stream == expected


def test_encrypt_empty_data() -> None:
    assert chacha20_encrypt(KEY_00_1F, 0, bytes(12), b"") == b""


# --- Poly1305 ----------------------------------------------------------------


def test_poly1305_rfc_2_5_2() -> None:
    key = h(
        "85 d6 be 78 57 55 6d 33 7f 44 52 fe 42 d5 06 a8"
        "01 03 80 8a fb 0d b2 fd 4a bf f6 af 41 49 f5 1b"
    )
    tag = poly1305_mac(b"Cryptographic Forum Research Group", key)
    assert tag == h("a8 06 1d c1 30 51 36 c6 c2 2b 8b af 0c 01 27 a9")


R2 = "02" + "00" * 15
R1 = "01" + "00" * 15
S0 = "00" * 16


@pytest.mark.parametrize(
    ("r", "s", "data", "tag"),
    [
        pytest.param(R2, S0, "ff" * 16, "03" + "00" * 15, id="A.3 #5 not fully reduced"),
        pytest.param(R2, "ff" * 16, "02" + "00" * 15, "03" + "00" * 15, id="A.3 #6 s overflow"),
        pytest.param(
            R1,
            S0,
            "ff" * 16 + "f0" + "ff" * 15 + "11" + "00" * 15,
            "05" + "00" * 15,
            id="A.3 #7 carry",
        ),
        pytest.param(
            R1,
            S0,
            "ff" * 16 + "fb" + "fe" * 15 + "01" * 16,
            "00" * 16,
            id="A.3 #8 exactly p",
        ),
        pytest.param(R2, S0, "fd" + "ff" * 15, "fa" + "ff" * 15, id="A.3 #9 p-1"),
        pytest.param(
            "01" + "00" * 7 + "04" + "00" * 7,
            S0,
            "e3 35 94 d7 50 5e 43 b9" + "00" * 8
            + "33 94 d7 50 5e 43 79 cd 01" + "00" * 7
            + "00" * 16
            + "01" + "00" * 15,
            "14" + "00" * 7 + "55" + "00" * 7,
            id="A.3 #10 131-bit intermediate",
        ),
        pytest.param(
            "01" + "00" * 7 + "04" + "00" * 7,
            S0,
            "e3 35 94 d7 50 5e 43 b9" + "00" * 8
            + "33 94 d7 50 5e 43 79 cd 01" + "00" * 7
            + "00" * 16,
            "13" + "00" * 15,
            id="A.3 #11 131-bit final",
        ),
    ],
)  # fmt: skip
def test_poly1305_appendix_a_3_edge_cases(r: str, s: str, data: str, tag: str) -> None:
    assert poly1305_mac(h(data), h(r) + h(s)) == h(tag)


def test_poly1305_key_generation_rfc_2_6_2() -> None:
    nonce = h("00 00 00 00 00 01 02 03 04 05 06 07")
    assert chacha20_block(KEY_80_9F, 0, nonce)[:32] == h(
        """
        8a d5 a0 8b 90 5f 81 cc 81 50 40 27 4a b2 94 71
        a8 33 b6 37 e3 fd 0d a5 08 db b8 e2 fd d1 a6 46
        """
    )


def test_poly1305_rejects_wrong_key_length() -> None:
    with pytest.raises(ValueError):
        poly1305_mac(b"msg", bytes(31))


# --- AEAD ----------------------------------------------------------------------

AEAD_NONCE = h("07 00 00 00") + h("40 41 42 43 44 45 46 47")
AEAD_AAD = h("50 51 52 53 c0 c1 c2 c3 c4 c5 c6 c7")
AEAD_CIPHERTEXT = h(
    """
    d3 1a 8d 34 64 8e 60 db 7b 86 af bc 53 ef 7e c2
    a4 ad ed 51 29 6e 08 fe a9 e2 b5 a7 36 ee 62 d6
    3d be a4 5e 8c a9 67 12 82 fa fb 69 da 92 72 8b
    1a 71 de 0a 9e 06 0b 29 05 d6 a5 b6 7e cd 3b 36
    92 dd bd 7f 2d 77 8b 8c 98 03 ae e3 28 09 1b 58
    fa b3 24 e4 fa d6 75 94 55 85 80 8b 48 31 d7 bc
    3f f4 de f0 8e 4b 7a 9d e5 76 d2 65 86 ce c6 4b
    61 16
    """
)
AEAD_TAG = h("1a e1 0b 59 4f 09 e2 6a 7e 90 2e cb d0 60 06 91")


def test_aead_one_time_key_rfc_2_8_2() -> None:
    assert chacha20_block(KEY_80_9F, 0, AEAD_NONCE)[:32] == h(
        """
        7b ac 2b 25 2d b4 47 af 09 b6 7a 55 a4 e9 55 84
        0a e1 d6 73 10 75 d9 eb 2a 93 75 78 3e d5 53 ff
        """
    )


def test_aead_encrypt_rfc_2_8_2() -> None:
    sealed = encrypt(KEY_80_9F, AEAD_NONCE, SUNSCREEN, AEAD_AAD)
    assert sealed == AEAD_CIPHERTEXT + AEAD_TAG


def test_aead_decrypt_rfc_2_8_2() -> None:
    assert decrypt(KEY_80_9F, AEAD_NONCE, AEAD_CIPHERTEXT + AEAD_TAG, AEAD_AAD) == SUNSCREEN


A5_KEY = h(
    """
    1c 92 40 a5 eb 55 d3 8a f3 33 88 86 04 f6 b5 f0
    47 39 17 c1 40 2b 80 09 9d ca 5c bc 20 70 75 c0
    """
)
A5_NONCE = h("00 00 00 00 01 02 03 04 05 06 07 08")
A5_AAD = h("f3 33 88 86 00 00 00 00 00 00 4e 91")
A5_CIPHERTEXT = h(
    """
    64 a0 86 15 75 86 1a f4 60 f0 62 c7 9b e6 43 bd
    5e 80 5c fd 34 5c f3 89 f1 08 67 0a c7 6c 8c b2
    4c 6c fc 18 75 5d 43 ee a0 9e e9 4e 38 2d 26 b0
    bd b7 b7 3c 32 1b 01 00 d4 f0 3b 7f 35 58 94 cf
    33 2f 83 0e 71 0b 97 ce 98 c8 a8 4a bd 0b 94 81
    14 ad 17 6e 00 8d 33 bd 60 f9 82 b1 ff 37 c8 55
    97 97 a0 6e f4 f0 ef 61 c1 86 32 4e 2b 35 06 38
    36 06 90 7b 6a 7c 02 b0 f9 f6 15 7b 53 c8 67 e4
    b9 16 6c 76 7b 80 4d 46 a5 9b 52 16 cd e7 a4 e9
    90 40 c5 a4 04 33 22 5e e2 82 a1 b0 a0 6c 52 3e
    af 45 34 d7 f8 3f a1 15 5b 00 47 71 8c bc 54 6a
    0d 07 2b 04 b3 56 4e ea 1b 42 22 73 f5 48 27 1a
    0b b2 31 60 53 fa 76 99 19 55 eb d6 31 59 43 4e
    ce bb 4e 46 6d ae 5a 10 73 a6 72 76 27 09 7a 10
    49 e6 17 d9 1d 36 10 94 fa 68 f0 ff 77 98 71 30
    30 5b ea ba 2e da 04 df 99 7b 71 4d 6c 6f 2c 29
    a6 ad 5c b4 02 2b 02 70 9b
    """
)
A5_TAG = h("ee ad 9d 67 89 0c bb 22 39 23 36 fe a1 85 1f 38")
A5_PLAINTEXT = (
    "Internet-Drafts are draft documents valid for a maximum of six months and may be "
    "updated, replaced, or obsoleted by other documents at any time. It is inappropriate "
    "to use Internet-Drafts as reference material or to cite them other than as "
    "/\u201cwork in progress./\u201d"
).encode()


def test_aead_decryption_appendix_a_5() -> None:
    assert len(A5_CIPHERTEXT) == len(A5_PLAINTEXT) == 265
    assert chacha20_block(A5_KEY, 0, A5_NONCE)[:32] == h(
        """
        bd f0 4a a9 5c e4 de 89 95 b1 4b b6 a1 8f ec af
        26 47 8f 50 c0 54 f5 63 db c0 a2 1e 26 15 72 aa
        """
    )
    assert decrypt(A5_KEY, A5_NONCE, A5_CIPHERTEXT + A5_TAG, A5_AAD) == A5_PLAINTEXT
    assert encrypt(A5_KEY, A5_NONCE, A5_PLAINTEXT, A5_AAD) == A5_CIPHERTEXT + A5_TAG


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def test_tampering_with_any_ciphertext_or_tag_byte_fails() -> None:
    sealed = AEAD_CIPHERTEXT + AEAD_TAG
    for index in range(len(sealed)):
        with pytest.raises(InvalidTag):
            decrypt(KEY_80_9F, AEAD_NONCE, _flip(sealed, index), AEAD_AAD)


def test_tampering_with_any_aad_byte_fails() -> None:
    sealed = AEAD_CIPHERTEXT + AEAD_TAG
    for index in range(len(AEAD_AAD)):
        with pytest.raises(InvalidTag):
            decrypt(KEY_80_9F, AEAD_NONCE, sealed, _flip(AEAD_AAD, index))


Inputs = tuple[bytes, bytes, bytes, bytes]
Change = Callable[[bytes, bytes, bytes, bytes], Inputs]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda k, n, c, a: (_flip(k, 0), n, c, a), id="wrong key"),
        pytest.param(lambda k, n, c, a: (k, _flip(n, 11), c, a), id="wrong nonce"),
        pytest.param(lambda k, n, c, a: (k, n, c, a + b"\x00"), id="longer aad"),
        pytest.param(lambda k, n, c, a: (k, n, c, b""), id="missing aad"),
        pytest.param(lambda k, n, c, a: (k, n, c[:-1], a), id="truncated tag"),
        pytest.param(lambda k, n, c, a: (k, n, c[1:], a), id="dropped first byte"),
        pytest.param(lambda k, n, c, a: (k, n, c + b"\x00", a), id="appended byte"),
        pytest.param(lambda k, n, c, a: (k, n, c[-16:], a), id="tag only"),
        pytest.param(lambda k, n, c, a: (k, n, c[:15], a), id="shorter than a tag"),
        pytest.param(lambda k, n, c, a: (k, n, b"", a), id="empty"),
    ],
)
def test_decrypt_rejects_mismatches(change: Change) -> None:
    key, nonce, sealed, aad = change(KEY_80_9F, AEAD_NONCE, AEAD_CIPHERTEXT + AEAD_TAG, AEAD_AAD)
    with pytest.raises(InvalidTag):
        decrypt(key, nonce, sealed, aad)


def test_empty_plaintext_is_just_a_tag_and_is_authenticated() -> None:
    sealed = encrypt(KEY_80_9F, AEAD_NONCE, b"", AEAD_AAD)
    assert len(sealed) == 16
    assert decrypt(KEY_80_9F, AEAD_NONCE, sealed, AEAD_AAD) == b""
    with pytest.raises(InvalidTag):
        decrypt(KEY_80_9F, AEAD_NONCE, sealed, b"other aad")


# Each primitive called with a key and a nonce of the given sizes.
PRIMITIVES: list[Callable[[bytes, bytes], object]] = [
    lambda key, nonce: encrypt(key, nonce, b"x"),
    lambda key, nonce: decrypt(key, nonce, bytes(32)),
    lambda key, nonce: chacha20_block(key, 0, nonce),
    lambda key, nonce: chacha20_encrypt(key, 0, nonce, b"x"),
]


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
@pytest.mark.parametrize("primitive", PRIMITIVES)
def test_key_length_is_validated(primitive: Callable[[bytes, bytes], object], length: int) -> None:
    with pytest.raises(ValueError, match="key must be 32 bytes"):
        primitive(bytes(length), bytes(12))


@pytest.mark.parametrize("length", [0, 8, 11, 13, 24])
@pytest.mark.parametrize("primitive", PRIMITIVES)
def test_nonce_length_is_validated(
    primitive: Callable[[bytes, bytes], object], length: int
) -> None:
    with pytest.raises(ValueError, match="nonce must be 12 bytes"):
        primitive(bytes(32), bytes(length))


def test_block_counter_must_stay_within_32_bits() -> None:
    last = 2**32 - 1
    assert len(chacha20_block(KEY_00_1F, last, bytes(12))) == 64
    assert chacha20_encrypt(KEY_00_1F, last, bytes(12), bytes(64)) == chacha20_block(
        KEY_00_1F, last, bytes(12)
    )
    with pytest.raises(ValueError):
        chacha20_block(KEY_00_1F, 2**32, bytes(12))
    with pytest.raises(ValueError):
        chacha20_block(KEY_00_1F, -1, bytes(12))
    with pytest.raises(ValueError):
        chacha20_encrypt(KEY_00_1F, last, bytes(12), bytes(65))


@settings(max_examples=60, deadline=None)
@given(
    key=st.binary(min_size=32, max_size=32),
    nonce=st.binary(min_size=12, max_size=12),
    plaintext=st.binary(max_size=300),
    aad=st.binary(max_size=80),
)
def test_aead_round_trip(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> None:
    sealed = encrypt(key, nonce, plaintext, aad)
    assert len(sealed) == len(plaintext) + 16
    assert decrypt(key, nonce, sealed, aad) == plaintext
    # The ciphertext part is exactly the ChaCha20 stream from counter 1.
    assert sealed[:-16] == chacha20_encrypt(key, 1, nonce, plaintext)


@settings(max_examples=40, deadline=None)
@given(
    key=st.binary(min_size=32, max_size=32),
    nonce=st.binary(min_size=12, max_size=12),
    plaintext=st.binary(min_size=1, max_size=200),
    data=st.data(),
)
def test_aead_any_bit_flip_fails(
    key: bytes, nonce: bytes, plaintext: bytes, data: st.DataObject
) -> None:
    sealed = encrypt(key, nonce, plaintext)
    index = data.draw(st.integers(min_value=0, max_value=len(sealed) - 1))
    bit = data.draw(st.integers(min_value=0, max_value=7))
    forged = sealed[:index] + bytes([sealed[index] ^ (1 << bit)]) + sealed[index + 1 :]
    with pytest.raises(InvalidTag):
        decrypt(key, nonce, forged)
