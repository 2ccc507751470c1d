"""The REST port's HTTP/1.1 protocol with a bounded header section: uvicorn's httptools protocol (the one the KServe
SDK's uvicorn picks) refusing a request whose request line and headers pass ``max_header_bytes``.

Why: neither httptools nor uvicorn bounds the header section (a 64 MiB header or 500,000 headers were read whole
and answered 200), while the body is bounded (``max_body_bytes``): one client could hold the pod's memory with
headers alone. The refusal is ``431 {"error", "reason": "HEADERS_TOO_LARGE"}``, counted like every other; the
connection is closed, as the rest of an oversized head is never read. Counting the bytes bounds the number of
headers too (each takes at least 4 bytes on the wire: ``a:\\r\\n``).
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

REASON = "HEADERS_TOO_LARGE"


def bounded_protocol(max_header_bytes: int, refused: Callable[[str], None]) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol refusing a head (request line and headers) over ``max_header_bytes`` bytes;
    ``refused(reason)`` is called once per refusal (the metrics)."""

    class BoundedHeaders(HttpToolsProtocol):
        _in_head = False  # a request's head is being read (from its first byte to its blank line)
        _head_bytes = 0  # bytes of the head's parts parsed whole (request line, headers)
        _raw_bytes = 0  # bytes of chunks read wholly within an unfinished head (a header the parser still holds)
        _refusing = False

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_head, self._head_bytes, self._raw_bytes = True, 0, 0

        def on_url(self, url: bytes) -> None:
            self._grow(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._grow(len(name) + len(value) + 4)  # ": " and CRLF
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._in_head = False
            super().on_headers_complete()

        def _grow(self, size: int) -> None:
            self._head_bytes += size
            if self._head_bytes > max_header_bytes:
                self._refusing = True
                raise ValueError(REASON)  # stops the parser: uvicorn answers through send_400_response

        def data_received(self, data: bytes) -> None:
            if self._refusing:
                return
            within_head = self._in_head
            super().data_received(data)
            # The parser keeps an unfinished header to itself (no callback until its end): a chunk read while the
            # head was unfinished and that leaves it unfinished is head bytes, all of them.
            if self._in_head and within_head and not self._refusing:
                self._raw_bytes += len(data)
                if self._raw_bytes > max_header_bytes:
                    self._refusing = True
                    self.send_400_response(REASON)

        def send_400_response(self, msg: str) -> None:
            if not self._refusing:
                super().send_400_response(msg)
                return
            refused(REASON)
            body = orjson.dumps(
                {
                    "error": f"the request line and headers take more than {max_header_bytes} bytes, the limit "
                    "(max_header_bytes): send large values in the body",
                    "reason": REASON,
                }
            )
            head = [STATUS_LINE[431]]
            for name, value in self.server_state.default_headers:
                head += [name, b": ", value, b"\r\n"]
            head += [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n\r\n",
                body,
            ]
            self.transport.write(b"".join(head))
            self.transport.close()

    return BoundedHeaders
