"""A thin client of an IPFS node's HTTP RPC API (``/api/v0``: Kubo, or js-ipfs in tests).

- ``add`` streams a multipart body straight from the caller's iterator (chunked transfer
  encoding), with the importer options that give the embedded store's CIDs;
- ``cat`` streams ``/cat`` and checks it as it goes against the file's DAG (its few dag-pb nodes
  come from ``block/get``): every 256 KiB leaf is hashed against its CID, so a short, long or
  altered stream cannot go unnoticed (js-ipfs reports an error mid-stream only in an HTTP
  trailer, which clients never see); a stream that stalls for ``lookup_timeout`` (a missing block:
  js-ipfs would wait for it until its whole-request ``timeout``) is ContentNotFound;
- ``export_car`` walks the DAG with ``block/get``, a few blocks ahead, each block checked;
- every request carries ``cid-base=base32`` where the node prints CIDs, and a ``timeout`` where it
  looks content up; CIDs from the node are parsed and re-printed by :mod:`.cid`, never compared as
  strings.
"""
from __future__ import annotations

import json
import secrets
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO

import httpx

from ..errors import ContentNotFound, StorageError, StorageUnreachable
from . import dag
from .cid import RAW, codec_of, parse, to_str
from .unixfs import CHUNK_SIZE, Piece, decode_node

_ADD_PARAMS = {
    "cid-version": "1",
    "raw-leaves": "true",
    "cid-base": "base32",
    "hash": "sha2-256",
    "chunker": f"size-{CHUNK_SIZE}",
    "trickle": "false",
    "wrap-with-directory": "false",
    "progress": "false",
}
# js-ipfs: "request timed out"; Kubo offline: "block was not found locally"; Kubo online with a
# timeout: "context deadline exceeded"
_NOT_FOUND_MARKERS = ("timed out", "timeout", "deadline exceeded", "not found", "could not find",
                      "no link named", "does not exist")


_MAX_BLOCK = 4 * 1024 * 1024  # IPFS nodes refuse blocks over 1-2 MiB


class _ShortStream(Exception):
    pass


class _Exact:
    """Takes exact-sized pieces from a stream of arbitrary chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._parts: list[bytes] = []
        self._have = 0

    def take(self, n: int) -> bytes:
        while self._have < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                if n == 1 and not self._have:  # probing for the end
                    return b""
                raise _ShortStream()
            self._parts.append(chunk)
            self._have += len(chunk)
        joined = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
        piece, rest = joined[:n], joined[n:]
        self._parts = [rest] if rest else []
        self._have = len(rest)
        return piece


class IpfsHttpStore:
    """A :class:`~fullchain.storage.ContentStore` backed by an IPFS node's RPC API."""

    def __init__(self, url: str, *, lookup_timeout: float = 10.0, transfer_timeout: float = 300.0,
                 connect_timeout: float = 5.0, workers: int = 4, window: int = 8) -> None:
        base = url.rstrip("/")
        if base.endswith("/api/v0"):
            base = base[: -len("/api/v0")]
        self.url = base
        self.lookup_timeout = lookup_timeout
        self.transfer_timeout = transfer_timeout
        self._connect_timeout = connect_timeout
        self._workers = max(1, workers)
        self._window = max(self._workers, window)
        self._client = httpx.Client(
            base_url=f"{base}/api/v0",
            timeout=httpx.Timeout(transfer_timeout, connect=connect_timeout, pool=transfer_timeout),
            limits=httpx.Limits(max_connections=self._workers + 2,
                                max_keepalive_connections=self._workers + 2),
        )

    def __repr__(self) -> str:
        return f"IpfsHttpStore({self.url!r})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> IpfsHttpStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing -----------------------------------------------------------------------------

    def _lookup(self) -> str:
        """The node-side ``timeout`` argument for a content lookup."""
        return f"{max(1, round(self.lookup_timeout * 1000))}ms"

    def _unreachable(self, exc: Exception) -> StorageUnreachable:
        return StorageUnreachable(f"no IPFS node answers at {self.url} ({exc.__class__.__name__})",
                                  hint="start the IPFS daemon, or check the storage URL (e.g. "
                                       "--storage http://127.0.0.1:5001)")

    def _post(self, command: str, params: dict[str, str], *, timeout: float | None = None) -> httpx.Response:
        limit: httpx.Timeout | Any = httpx.USE_CLIENT_DEFAULT
        if timeout is not None:  # the node gives up after `timeout`: leave it time to say so
            limit = httpx.Timeout(timeout + 10, connect=self._connect_timeout)
        try:
            response = self._client.post(f"/{command}", params=params, timeout=limit)
        except httpx.ConnectError as exc:
            raise self._unreachable(exc) from None
        except httpx.TimeoutException as exc:
            raise StorageError(f"the IPFS node at {self.url} did not answer {command} in time ({exc})",
                               hint="the node may be overloaded; try again") from None
        except httpx.HTTPError as exc:
            raise StorageError(f"{command} on the IPFS node at {self.url} failed: {exc}",
                               hint="check that the URL points to an IPFS RPC API") from None
        return response

    @staticmethod
    def _node_message(response: httpx.Response) -> str | None:
        """The error an IPFS node puts in its JSON body, or None if the body is not one."""
        try:
            return str(json.loads(response.content)["Message"])
        except (ValueError, KeyError, TypeError):
            return None

    @classmethod
    def _message(cls, response: httpx.Response) -> str:
        message = cls._node_message(response)
        return message if message is not None else f"HTTP {response.status_code}"

    def _not_ipfs(self, command: str, response: httpx.Response, expected: str = "a JSON answer") -> StorageError:
        """Any other web server: one line with what came back instead of its whole page."""
        kind = response.headers.get("content-type", "").split(";")[0].strip() or "no content type"
        return StorageError(f"{self.url} does not look like an IPFS node's RPC API: /api/v0/{command} answered "
                            f"HTTP {response.status_code} ({kind}, {len(response.content)} bytes) where an IPFS "
                            f"node sends {expected}",
                            hint="point the storage URL at the node's RPC API, e.g. http://127.0.0.1:5001")

    def _fail(self, command: str, cid: str | None, response: httpx.Response) -> StorageError:
        if self._node_message(response) is None:
            return self._not_ipfs(command, response)
        message = self._message(response)
        if cid is not None and any(marker in message.lower() for marker in _NOT_FOUND_MARKERS):
            return ContentNotFound(f"the IPFS node at {self.url} does not have {cid} ({message})",
                                   hint="check the CID, or add the content to that node first")
        return StorageError(f"{command} on the IPFS node at {self.url} failed: HTTP "
                            f"{response.status_code}: {message}",
                            hint="check the node's logs; the URL must point to its RPC API (port 5001)")

    def _get_block(self, cid: bytes) -> bytes:
        text = to_str(cid)
        response = self._post("block/get", {"arg": text, "timeout": self._lookup()},
                              timeout=self.lookup_timeout)
        if response.status_code != 200:
            raise self._fail("block/get", text, response)
        return dag.check_block(cid, response.content, f"the IPFS node at {self.url}")

    # --- ContentStore -------------------------------------------------------------------------

    def add(self, chunks: Iterable[Piece], *, pin: bool = True) -> str:
        boundary = secrets.token_hex(16)
        sent = 0

        def body() -> Iterator[bytes]:
            nonlocal sent
            yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"data\"\r\n"
                   f"Content-Type: application/octet-stream\r\n\r\n").encode()
            for piece in chunks:
                if len(piece):
                    sent += len(piece)
                    yield piece if isinstance(piece, bytes) else bytes(piece)
            yield f"\r\n--{boundary}--\r\n".encode()

        params = {**_ADD_PARAMS, "pin": "true" if pin else "false"}
        try:
            response = self._client.post(
                "/add", params=params, content=body(),
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        except httpx.ConnectError as exc:
            raise self._unreachable(exc) from None
        except httpx.HTTPError as exc:
            raise StorageError(f"uploading to the IPFS node at {self.url} failed: {exc}",
                               hint="check that the node is running and has disk space, "
                                    "then try again") from None
        if response.status_code != 200:
            raise self._fail("add", None, response)
        try:
            entries = [json.loads(line) for line in response.text.splitlines() if line.strip()]
        except ValueError:
            raise self._not_ipfs("add", response, "one JSON object per added file") from None
        added = [e for e in entries if isinstance(e, dict) and e.get("Hash")]
        errors = [e for e in entries if isinstance(e, dict) and e.get("Type") == "error"]
        if errors or len(added) != 1:
            said = " ".join(str(e.get("Message", "")) for e in errors).split("\n")[0][:200]
            raise StorageError(f"the IPFS node at {self.url} answered add unexpectedly "
                               f"({said or f'{len(added)} files added instead of 1'})", hint="check the node's logs")
        cid = to_str(parse(added[0]["Hash"]))
        size = int(added[0].get("Size", -1))  # Kubo sends a string, js-ipfs a number
        if size < sent:  # Size counts the file bytes plus its dag-pb nodes
            raise StorageError(f"the IPFS node at {self.url} stored {size} bytes of the {sent} sent",
                               hint="the upload was cut short; try again")
        return cid

    def cat(self, cid: str) -> Iterator[bytes]:
        root = parse(cid)
        root_block = self._get_block(root)  # fails now, not at the first next(), if it is missing
        if codec_of(root) == RAW:
            return iter((root_block,) if root_block else ())
        return self._cat(root, root_block, decode_node(root_block).filesize or 0)

    def _cat(self, root: bytes, root_block: bytes, size: int) -> Iterator[bytes]:
        """Stream ``cat`` and check it piece by piece against the DAG, whose (few, small) dag-pb
        nodes are fetched with ``block/get`` as the stream reaches them."""
        text = to_str(root)
        expected = dag.walk(lambda c: root_block if c == root else self._get_block(c), root)
        node_timeout = max(self.transfer_timeout, size / 1e6)  # js-ipfs: a deadline for the whole stream
        try:
            with self._client.stream(
                    "POST", "/cat", params={"arg": text, "timeout": f"{node_timeout:.0f}s"},
                    headers={"Accept-Encoding": "identity"},  # a stall of lookup_timeout: see ReadTimeout
                    timeout=httpx.Timeout(self.lookup_timeout + 5, connect=self._connect_timeout)) as response:
                if response.status_code != 200:
                    response.read()
                    raise self._fail("cat", text, response)
                stream = _Exact(response.iter_raw())
                where = f"the IPFS node at {self.url}"
                checking: deque[Future[bytes] | bytes] = deque()  # leaves hashed on a worker thread
                with ThreadPoolExecutor(1, thread_name_prefix="fullchain-cat") as pool:
                    for cid, block, tsize in expected:
                        if block is None:  # a raw leaf: exactly its bytes come next
                            if not 0 <= tsize <= _MAX_BLOCK:
                                raise StorageError(f"{text} links to a raw block of {tsize} bytes",
                                                   hint="this is not a file as IPFS nodes build them")
                            checking.append(pool.submit(dag.check_block, cid, stream.take(tsize), where))
                        else:
                            data = decode_node(block).data
                            if data and stream.take(len(data)) != data:
                                raise StorageError(f"{where} sent bytes of {text} that its DAG does "
                                                   "not have", hint="the node's copy may be corrupt")
                            if data:
                                checking.append(data)
                        while len(checking) > self._window:
                            item = checking.popleft()
                            yield item if isinstance(item, bytes) else item.result()
                    if stream.take(1):
                        raise StorageError(f"{where} sent more bytes of {text} than its DAG has",
                                           hint="the node's copy may be corrupt; try another node")
                    while checking:
                        item = checking.popleft()
                        yield item if isinstance(item, bytes) else item.result()
        except _ShortStream:
            raise ContentNotFound(f"the IPFS node at {self.url} stopped sending {text} before its end "
                                  "(a block is probably missing there)",
                                  hint="check that the content is pinned on that node") from None
        except httpx.ReadTimeout:
            raise ContentNotFound(f"the IPFS node at {self.url} stalled for {self.lookup_timeout:.0f} s "
                                  f"while sending {text} (a block is probably missing there)",
                                  hint="check that the content is pinned on that node") from None
        except httpx.ConnectError as exc:
            raise self._unreachable(exc) from None
        except httpx.HTTPError as exc:
            raise StorageError(f"reading {text} from the IPFS node at {self.url} failed: {exc}",
                               hint="check that the node is running, then try again") from None

    def has(self, cid: str) -> bool:
        text = to_str(parse(cid))
        response = self._post("block/stat", {"arg": text, "timeout": self._lookup()},
                              timeout=self.lookup_timeout)
        if response.status_code == 200:
            return True
        error = self._fail("block/stat", text, response)
        if isinstance(error, ContentNotFound):
            return False
        raise error

    def pinned(self, cid: str) -> bool:
        root = parse(cid)
        text = to_str(root)
        response = self._post("pin/ls", {"arg": text, "type": "recursive", "cid-base": "base32",
                                         "timeout": self._lookup()}, timeout=self.lookup_timeout)
        if response.status_code == 200:
            keys: dict[str, Any] = {}
            for line in response.text.splitlines():  # Kubo may stream one object per line
                if line.strip():
                    keys.update(json.loads(line).get("Keys") or {})
            return any(parse(key) == root for key in keys)
        message = self._message(response).lower()
        if "not pinned" in message or any(marker in message for marker in _NOT_FOUND_MARKERS):
            return False
        raise self._fail("pin/ls", text, response)

    def unpin(self, cid: str) -> None:
        text = to_str(parse(cid))
        response = self._post("pin/rm", {"arg": text, "recursive": "true", "timeout": self._lookup()},
                              timeout=self.lookup_timeout)
        if response.status_code != 200 and "not pinned" not in self._message(response).lower():
            raise self._fail("pin/rm", text, response)

    def export_car(self, cid: str, out: BinaryIO) -> None:
        root = parse(cid)
        root_block = self._get_block(root)
        dag.write_car(lambda c: root_block if c == root else self._get_block(c), root, out,
                      workers=self._workers, window=self._window)
