"""WebSocket framing: server frames encoded once, client frames validated."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

from flask_babel import gettext


def encode_text_frame(text: str) -> bytes:
    """An unmasked, final text frame (RFC 6455 5.2).

    Server frames are never masked, so these bytes are identical for every socket:
    a room's message is encoded once and the same bytes are written to each reader.
    A frame without RSV1 is valid even where permessage-deflate was negotiated.
    """
    payload = text.encode()
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x81, n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 127, n)
    return header + payload


class BadFrame(ValueError):
    """A client frame we cannot accept; the text is shown to the sender."""


@dataclass(frozen=True)
class Incoming:
    typing: bool
    text: object  # validated by the message service, which owns the rules
    reply_to: object = None  # the message answered (the composer's hidden field), validated there too


def parse(raw: str | bytes, max_bytes: int) -> Incoming:
    """Read a frame from htmx's ws-send: JSON of the form's fields plus HEADERS."""
    if isinstance(raw, bytes):
        raise BadFrame(gettext("Binary frames are not accepted."))
    if len(raw) > max_bytes or len(raw.encode()) > max_bytes:
        raise BadFrame(gettext("That message is too large to send (limit %(kb)d KB).", kb=max_bytes // 1024))
    try:
        data = json.loads(raw)
    except ValueError:
        raise BadFrame(gettext("The message could not be read. Reload the page and try again.")) from None
    if not isinstance(data, dict):
        raise BadFrame(gettext("The message could not be read. Reload the page and try again."))
    if data.get("typing"):
        return Incoming(typing=True, text=None)
    if "message" not in data:
        raise BadFrame(gettext("The message field is missing. Reload the page and try again."))
    return Incoming(typing=False, text=data["message"], reply_to=data.get("reply_to"))
