"""What a Gemini conversation needs carried through another format's fields.

Theory of operation: Gemini gives function calls no id (older models) or its
own (Gemini 3), and puts an opaque ``thoughtSignature`` on the first
``functionCall`` part of a turn and on thought parts; the next request must
send each signature back on the same part, byte for byte. A client in
another format has no field for either, and the gateway keeps no state, so
the codec hides them in fields the client does send back:

* a tool call's id is ``call_gm`` + base64url of the JSON array
  ``[nonce, name, gemini_id, signature]``: distinct for every call (the
  nonce: derived from the response id and the call's number, so the same
  answer always gets the same ids), and enough to rebuild the
  ``functionCall`` part (and, if the client lost the call itself, the
  ``functionResponse`` name);
* a thinking block's signature is ``gemini:`` + the thought signature, so a
  Gemini request restores it and recognises signatures that are not its own.

The other way round, a Gemini *client* echoes ``thoughtSignature`` byte for
byte, so another provider's thinking signature (Anthropic's) travels in it:
standard base64 of ``llm-gateway-signature:`` + the signature (the Gemini
SDKs hold the field as bytes and write it back as base64; URL-safe base64 is
read too). Tool-call ids from other providers need nothing: a Gemini client
gets them as the ``functionCall``'s ``id`` and sends them back.

Both survive Anthropic and OpenAI clients unchanged: ids use only
``[A-Za-z0-9_-]``, and Anthropic clients echo thinking signatures verbatim.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from dataclasses import dataclass

__all__ = [
    "CallCarry",
    "SIGNATURE_PREFIX",
    "call_nonce",
    "carry_foreign_signature",
    "make_call_id",
    "read_call_id",
    "read_foreign_signature",
    "signature_for_client",
    "signature_from_client",
]

CALL_ID_PREFIX = "call_gm"
SIGNATURE_PREFIX = "gemini:"
_FOREIGN_TAG = b"llm-gateway-signature:"


@dataclass(frozen=True, slots=True)
class CallCarry:
    """What a tool-call id carries: the function name, Gemini's id and signature ("" if none)."""

    name: str
    gemini_id: str
    signature: str


def call_nonce(scope: str, number: int) -> str:
    """The nonce of call ``number`` within ``scope`` (a response id, or a request
    position); random when the scope is unknown ("")."""
    if not scope:
        return uuid.uuid4().hex[:8]
    return hashlib.sha256(f"{scope}/{number}".encode()).hexdigest()[:8]


def make_call_id(name: str, gemini_id: str, signature: str, nonce: str) -> str:
    """A tool-call id carrying ``name``, ``gemini_id`` and ``signature``."""
    payload = json.dumps([nonce, name, gemini_id, signature], separators=(",", ":"))
    encoded = base64.urlsafe_b64encode(payload.encode("utf-8")).decode("ascii").rstrip("=")
    return CALL_ID_PREFIX + encoded


def read_call_id(call_id: str) -> CallCarry | None:
    """What ``call_id`` carries, or None when the gateway did not make it."""
    if not call_id.startswith(CALL_ID_PREFIX):
        return None
    encoded = call_id[len(CALL_ID_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        value = json.loads(raw.decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if (
        not isinstance(value, list)
        or len(value) != 4
        or not all(isinstance(item, str) for item in value)
    ):
        return None
    return CallCarry(name=value[1], gemini_id=value[2], signature=value[3])


def signature_for_client(thought_signature: str) -> str:
    """A Gemini thought signature as a thinking block's signature."""
    return SIGNATURE_PREFIX + thought_signature


def signature_from_client(signature: str) -> str | None:
    """The Gemini thought signature inside a thinking block's signature, or None
    when the signature is another provider's (or empty)."""
    if signature.startswith(SIGNATURE_PREFIX) and len(signature) > len(SIGNATURE_PREFIX):
        return signature[len(SIGNATURE_PREFIX) :]
    return None


def carry_foreign_signature(signature: str) -> str:
    """Another provider's thinking signature as a Gemini ``thoughtSignature``."""
    return base64.b64encode(_FOREIGN_TAG + signature.encode("utf-8")).decode("ascii")


def read_foreign_signature(thought_signature: str) -> str | None:
    """The signature ``carry_foreign_signature`` put in ``thought_signature``, or
    None when it is Gemini's own."""
    text = thought_signature.replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    if not raw.startswith(_FOREIGN_TAG):
        return None
    try:
        return raw[len(_FOREIGN_TAG) :].decode("utf-8")
    except UnicodeDecodeError:
        return None
