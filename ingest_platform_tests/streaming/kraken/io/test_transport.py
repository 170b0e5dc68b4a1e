"""The stream's WebSocket end (`transport.connect`) against small ``websockets`` servers.

What the Kraken sandbox never does is tested here: fragmented messages, an oversized one,
pings from the server, close codes, refusals, a server that never answers, and a client whose
loop is stuck while the server keeps sending (TCP back-pressure, nothing lost).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection as SyncServerConnection
from websockets.sync.server import serve as sync_serve

from ingest_platform.streaming.kraken.io.transport import (
    MAX_MESSAGE_BYTES,
    HandshakeRejected,
    InvalidURL,
    StreamSocket,
    connect,
)
from ingest_platform.streaming.kraken.protocol.clock import SYSTEM_CLOCK

Handler = Callable[[ServerConnection], Any]


@asynccontextmanager
async def server(handler: Handler, **kwargs: Any) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0, **kwargs) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/v2"


class Inbox:
    """What the client received: (message, arrival_ns) in order."""

    def __init__(self) -> None:
        self.messages: list[tuple[str | bytes, int]] = []

    def __call__(self, payload: str | bytes, arrival_ns: int) -> None:
        self.messages.append((payload, arrival_ns))

    @property
    def payloads(self) -> list[str | bytes]:
        return [m for m, _ in self.messages]


async def open_client(url: str, inbox: Inbox) -> StreamSocket:
    ws = await connect(url, 5.0, SYSTEM_CLOCK, inbox)
    ws.start()
    return ws


def test_fragmented_messages_arrive_whole_with_their_arrival_time():
    got_pong = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        await ws.send("plain")
        await ws.send(["frag", "men", "ted é"])  # three frames: TEXT, CONT, CONT (fin)
        await ws.send([b"\x00\x01", b"\x02"])  # a fragmented binary message
        await (await ws.ping(b"are you there"))  # answered although the client never pings
        got_pong.set()
        await ws.send("after the ping")
        await ws.wait_closed()

    async def scenario() -> Inbox:
        inbox = Inbox()
        async with server(handler) as url:
            before = time.perf_counter_ns()
            ws = await open_client(url, inbox)
            deadline = time.monotonic() + 5
            while len(inbox.messages) < 4 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            await ws.close()
        assert got_pong.is_set()
        stamps = [ns for _, ns in inbox.messages]
        assert stamps == sorted(stamps) and before <= stamps[0] <= time.perf_counter_ns()
        return inbox

    inbox = asyncio.run(scenario())
    assert inbox.payloads == ["plain", "fragmented é", b"\x00\x01\x02", "after the ping"]


def test_a_message_over_the_limit_closes_with_1009_and_says_so():
    codes: list[int | None] = []

    async def handler(ws: ServerConnection) -> None:
        chunk = "x" * (4 * 2**20)
        try:  # 36 MiB in 4 MiB fragments: each frame is allowed, the message is not
            await ws.send(chunk for _ in range(MAX_MESSAGE_BYTES // len(chunk) + 1))
            await ws.wait_closed()
        except ConnectionClosed:
            pass
        codes.append(ws.protocol.close_rcvd.code if ws.protocol.close_rcvd else None)

    async def scenario() -> StreamSocket:
        inbox = Inbox()
        async with server(handler, max_size=None) as url:
            ws = await open_client(url, inbox)
            await asyncio.wait_for(ws.wait_closed(), 10)
        assert inbox.messages == []
        return ws

    ws = asyncio.run(scenario())
    assert f"a message over {MAX_MESSAGE_BYTES} bytes" in ws.close_reason
    assert "1009" in ws.close_reason
    assert codes == [1009]


def test_the_servers_close_frame_is_answered_and_named():
    async def handler(ws: ServerConnection) -> None:
        await ws.send("one")
        await ws.close(1001, "going away")

    async def scenario() -> tuple[Inbox, StreamSocket]:
        inbox = Inbox()
        async with server(handler) as url:
            ws = await open_client(url, inbox)
            await asyncio.wait_for(ws.wait_closed(), 5)
        return inbox, ws

    inbox, ws = asyncio.run(scenario())
    assert inbox.payloads == ["one"]
    assert ws.close_reason == (
        "received 1001 (GOING_AWAY) going away; then sent 1001 (GOING_AWAY) going away"
    )


def test_a_polite_close_sends_1000_and_no_message_is_delivered_after_it():
    codes: list[int | None] = []

    async def handler(ws: ServerConnection) -> None:
        try:
            while True:
                await ws.send("tick")
                await asyncio.sleep(0.001)
        except ConnectionClosed:
            codes.append(ws.close_code)

    async def scenario() -> None:
        inbox = Inbox()
        async with server(handler) as url:
            ws = await open_client(url, inbox)
            while len(inbox.messages) < 5:
                await asyncio.sleep(0.01)
            await ws.close()
            seen = len(inbox.messages)
            await asyncio.sleep(0.05)
            assert len(inbox.messages) == seen
            assert ws.close_reason.startswith("sent 1000 (OK)")

    asyncio.run(scenario())
    assert codes == [1000]


def test_messages_sent_with_the_upgrade_wait_for_start():
    async def handler(ws: ServerConnection) -> None:
        for n in range(3):
            await ws.send(f"early {n}")
        await ws.wait_closed()

    async def scenario() -> Inbox:
        inbox = Inbox()
        async with server(handler) as url:
            ws = await connect(url, 5.0, SYSTEM_CLOCK, inbox)
            await asyncio.sleep(0.1)  # the frames are read meanwhile, but held
            assert inbox.messages == []
            ws.start()
            while len(inbox.messages) < 3:
                await asyncio.sleep(0.01)
            await ws.close()
        return inbox

    assert asyncio.run(scenario()).payloads == ["early 0", "early 1", "early 2"]


def test_what_the_callback_raises_ends_the_connection_and_is_raised_by_wait_closed():
    async def handler(ws: ServerConnection) -> None:
        await ws.send("boom")
        await ws.wait_closed()

    def on_message(payload: str | bytes, arrival_ns: int) -> None:
        raise RuntimeError(f"cannot handle {payload!r}")

    async def scenario() -> None:
        async with server(handler) as url:
            ws = await connect(url, 5.0, SYSTEM_CLOCK, on_message)
            ws.start()
            with pytest.raises(RuntimeError, match="cannot handle 'boom'"):
                await asyncio.wait_for(ws.wait_closed(), 5)

    asyncio.run(scenario())


def test_refusals_and_bad_urls_name_what_was_wrong():
    def forbid(connection: ServerConnection, request: Any) -> Any:
        return connection.respond(HTTPStatus.FORBIDDEN, "no\n")

    async def handler(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async def scenario() -> None:
        async with server(handler, process_request=forbid) as url:
            with pytest.raises(HandshakeRejected) as refused:
                await connect(url, 5.0, SYSTEM_CLOCK, Inbox())
        assert refused.value.status == 403 and "403" in str(refused.value)
        with pytest.raises(InvalidURL, match="hostname"):
            await connect("ws:///v2", 5.0, SYSTEM_CLOCK, Inbox())
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            port = unused.getsockname()[1]
        with pytest.raises(OSError):
            await connect(f"ws://127.0.0.1:{port}/v2", 5.0, SYSTEM_CLOCK, Inbox())

    asyncio.run(scenario())


def test_a_server_that_never_answers_the_upgrade_times_out():
    async def scenario() -> None:
        with socket.socket() as listener:  # accepts TCP (the backlog), never speaks HTTP
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            port = listener.getsockname()[1]
            with pytest.raises(TimeoutError):
                await connect(f"ws://127.0.0.1:{port}/v2", 0.3, SYSTEM_CLOCK, Inbox())

    asyncio.run(scenario())


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, signed by itself."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_wss_verifies_the_server_and_streams_over_tls(tmp_path):
    cert, key = _self_signed(tmp_path)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))

    async def handler(ws: ServerConnection) -> None:
        await ws.send(["over ", "TLS"])
        await ws.wait_closed()

    async def scenario() -> Inbox:
        inbox = Inbox()
        async with server(handler, ssl=server_tls) as url:
            url = url.replace("ws://", "wss://")
            with pytest.raises(ssl.SSLCertVerificationError):  # the system does not trust it
                await connect(url, 5.0, SYSTEM_CLOCK, Inbox())
            ws = await connect(url, 5.0, SYSTEM_CLOCK, inbox, ssl_context=trusting)
            ws.start()
            while not inbox.messages:
                await asyncio.sleep(0.01)
            await ws.close()
        return inbox

    assert asyncio.run(scenario()).payloads == ["over TLS"]


# ---- back-pressure ------------------------------------------------------------------------------

MESSAGES = 1280  # 80 MiB: more than the kernel's socket buffers on both ends can hold
PAYLOAD = 64 * 1024


@contextmanager
def flooding_server(sent: list[int]) -> Iterator[str]:
    """A server in its own thread that sends MESSAGES as fast as TCP lets it (counting them)."""

    def handler(ws: SyncServerConnection) -> None:
        body = "x" * (PAYLOAD - 8)
        for n in range(MESSAGES):
            ws.send(f"{n:08d}{body}")
            sent[0] = n + 1
        ws.recv()  # until the client closes

    with sync_serve(handler, "127.0.0.1", 0) as srv:
        thread = threading.Thread(target=srv.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"ws://127.0.0.1:{srv.socket.getsockname()[1]}/v2"
        finally:
            srv.shutdown()
            thread.join(5)


def test_a_stuck_loop_holds_the_server_back_and_loses_nothing():
    """No queue in the client: while its loop is stuck in a callback, the data waits in the
    kernel's buffers and TCP stops the sender; afterwards every message arrives, in order."""
    sent = [0]
    seen: list[int] = []
    sent_while_stuck: list[int] = []

    def on_message(payload: str | bytes, arrival_ns: int) -> None:
        assert isinstance(payload, str) and len(payload) == PAYLOAD
        seen.append(int(payload[:8]))
        if len(seen) == 1:
            time.sleep(0.3)  # the loop is stuck: nothing is read from the socket meanwhile
            sent_while_stuck.append(sent[0])

    async def scenario() -> None:
        with flooding_server(sent) as url:
            ws = await connect(url, 5.0, SYSTEM_CLOCK, on_message)
            ws.start()
            deadline = time.monotonic() + 30
            while len(seen) < MESSAGES and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            await ws.close()

    asyncio.run(scenario())
    assert seen == list(range(MESSAGES))
    assert sent_while_stuck[0] < MESSAGES // 2, "the server was not held back"


def test_a_backlog_is_read_in_slices_each_with_its_own_arrival_time():
    """Behind a backlog the socket is read a bounded slice at a time (each a turn of the event
    loop), not in one read of everything buffered: so messages of one read share a stamp, and
    2 MB of small messages take over a hundred reads."""
    count, size = 4000, 500
    stamps: list[int] = []
    ready = threading.Event()

    def handler(ws: SyncServerConnection) -> None:
        ready.wait(5)  # until the client's loop is stuck: everything piles up in the kernel
        body = "y" * (size - 8)
        for n in range(count):
            ws.send(f"{n:08d}{body}")
        ws.recv()

    def on_message(payload: str | bytes, arrival_ns: int) -> None:
        stamps.append(arrival_ns)

    async def scenario() -> None:
        with sync_serve(handler, "127.0.0.1", 0) as srv:
            thread = threading.Thread(target=srv.serve_forever, daemon=True)
            thread.start()
            url = f"ws://127.0.0.1:{srv.socket.getsockname()[1]}/v2"
            ws = await connect(url, 5.0, SYSTEM_CLOCK, on_message)
            ws.start()
            ready.set()
            time.sleep(0.3)  # the loop is stuck while the server sends it all
            deadline = time.monotonic() + 10
            while len(stamps) < count and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            await ws.close()
            srv.shutdown()
            thread.join(5)

    asyncio.run(scenario())
    assert len(stamps) == count
    reads = len(set(stamps))
    assert reads >= count * size // (16 * 1024), f"{count} messages came in {reads} reads"
