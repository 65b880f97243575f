"""Inflate a compressed body once, with a ceiling, whatever its headers claim.

A gzip body is recognised by its magic bytes as well as by `Content-Encoding`, so an exporter
that forgets the header gets the same ceiling as one that sends it. What comes out is never
inflated again: a body still compressed after one pass is refused, because nested compression
is how a 2 KB request becomes 1 GiB.
"""

from __future__ import annotations

import zlib

from sessionscope.errors import ImportFormatError, TooLarge, UnsupportedMediaType

GZIP_MAGIC = b"\x1f\x8b"
# Without a caller's own ceiling: the largest body the OTLP receiver accepts, inflated.
DEFAULT_CEILING = 8 * 1024 * 1024
IDENTITY = ("", "identity")


def inflate_once(body: bytes, ceiling: int = DEFAULT_CEILING, content_encoding: str = "") -> bytes:
    """`body` inflated (if gzip) to at most `ceiling` bytes; TooLarge past it, ImportFormatError if
    it does not inflate or is compressed twice, UnsupportedMediaType for another encoding."""
    encoding = content_encoding.strip().lower()
    if encoding not in (*IDENTITY, "gzip"):
        raise UnsupportedMediaType(f"unsupported Content-Encoding {encoding[:40]!r}: send gzip or none")
    if encoding != "gzip" and not body.startswith(GZIP_MAGIC):
        return body
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, ceiling + 1)
    except zlib.error as exc:
        raise ImportFormatError(f"the body is declared or looks gzip-compressed but does not inflate: {exc}") from None
    if len(out) > ceiling or inflater.unconsumed_tail:
        raise TooLarge(f"request too large: the inflated body is larger than {ceiling} bytes",
                       {"max_bytes": ceiling})
    if not inflater.eof:
        raise ImportFormatError("the gzip body is truncated")
    if out.startswith(GZIP_MAGIC):
        raise ImportFormatError("nested compression is refused: the body inflates to another gzip stream")
    return out
