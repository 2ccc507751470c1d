"""Reading a file's bytes as text: gzip recognised by its magic bytes, and decoding that names the exact byte offset
and line of the first byte an encoding cannot decode. Shared by the CSV and JSON Lines readers.
"""

from __future__ import annotations

import codecs
import gzip
import itertools
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from components.ingest_data.errors import IngestError

SAMPLE_CHARS = 1024 * 1024  # decoded characters kept for the header; a longer first line is refused
READ_CHUNK = 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = codecs.BOM_UTF8
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


@dataclass(frozen=True)
class Scan:
    sample: str  # the first SAMPLE_CHARS decoded characters (without a byte-order mark)
    complete: bool  # the sample is the whole file
    size: int  # bytes after decompression (of the part scanned, unless ``whole``)
    final_newline: bool  # the file ends with a line break (known when ``whole`` or ``complete``)
    whole: bool  # the whole file was decoded, so every byte decodes


def scan_text(
    path: Path, name: str, compression: str | None, codec: str, explicit: bool, hint: str, whole: bool = True
) -> Scan:
    """Decodes the file (``whole``) or its first SAMPLE_CHARS characters; raises naming the byte offset of the
    first byte ``codec`` cannot decode.

    ``explicit``: the user chose the encoding; otherwise the message ends with ``hint`` (what the user can do).
    """
    decode_as = "utf-8" if codec == "utf-8-sig" else codec  # the byte-order mark is skipped here, counted in offsets
    decoder = codecs.getincrementaldecoder(decode_as)(errors="strict")
    parts: list[str] = []
    kept = offset = newlines = 0
    last = b""
    first = True
    try:
        with open_binary(path, compression) as stream:
            for chunk in itertools.chain(iter(lambda: stream.read(READ_CHUNK), b""), [b""]):
                final = not chunk  # reads are never empty: the empty chunk is the end
                if first and codec == "utf-8-sig" and chunk.startswith(UTF8_BOM):
                    chunk, offset = chunk[len(UTF8_BOM) :], len(UTF8_BOM)
                first = False
                pending = decoder.getstate()[0]  # undecoded bytes kept from the previous chunk
                try:
                    text = decoder.decode(chunk, final=final)
                except UnicodeDecodeError as error:
                    at = offset - len(pending) + error.start
                    line = newlines - pending.count(b"\n") + error.object[: error.start].count(b"\n") + 1
                    raise _decode_error(name, decode_as, explicit, hint, error, at, line) from None
                if kept < SAMPLE_CHARS:
                    parts.append(text[: SAMPLE_CHARS - kept])
                    kept += len(parts[-1])
                offset += len(chunk)
                newlines += chunk.count(b"\n")
                last = chunk[-1:] or last
                if not whole and kept >= SAMPLE_CHARS:
                    break
    except (OSError, EOFError, zlib.error) as error:
        if compression:
            raise IngestError(f"cannot read {name!r}: its gzip data is corrupt or truncated ({error})") from error
        raise IngestError(f"cannot read {name!r}: {error}") from error
    complete = kept < SAMPLE_CHARS
    return Scan(
        sample="".join(parts),
        complete=complete,
        size=offset,
        final_newline=last in (b"\n", b"\r"),
        whole=whole or complete,
    )


def _decode_error(
    name: str, codec: str, explicit: bool, hint: str, error: UnicodeDecodeError, offset: int, line: int
) -> IngestError:
    byte = error.object[error.start : error.start + 1]
    where = f"byte 0x{byte.hex()} at offset {offset}"
    if "\n".encode(codec) == b"\n":  # line numbers only mean something when a line break is one byte
        where += f" (line {line})"
    if explicit:
        return IngestError(f"input file {name!r} is not valid {codec}: {where} cannot be decoded ({error.reason})")
    return IngestError(f"input file {name!r} is not UTF-8: {where} cannot be decoded; {hint}")


def head(path: Path, count: int) -> bytes:
    with open(path, "rb") as stream:
        return stream.read(count)


def is_gzip(path: Path) -> bool:
    return head(path, len(GZIP_MAGIC)) == GZIP_MAGIC


@contextmanager
def open_binary(path: Path, compression: str | None) -> Iterator[IO[bytes]]:
    with gzip.open(path, "rb") if compression == "gzip" else open(path, "rb") as stream:
        yield stream


@contextmanager
def open_text(path: Path, compression: str | None, codec: str) -> Iterator[IO[str]]:
    opener = gzip.open if compression == "gzip" else open
    with opener(path, "rt", encoding=codec, newline="") as stream:
        yield stream


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
