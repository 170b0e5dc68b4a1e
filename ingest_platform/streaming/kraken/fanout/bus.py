"""The bus the fan-out publishes to: the small `Bus` interface, and `JetStreamBus` (NATS).

The publisher (`publisher.FanoutPublisher`) knows a bus only through `Bus`: connect, make sure
the stream exists with the configured retention, start a publish that completes when the bus
acknowledged it, read the last message of a subject (to continue epochs after a restart), and
close. NATS JetStream through ``nats-py`` is the one implementation shipped; a Kafka bus would
be one more class with these five methods (not shipped: no broker here to test it against).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import Error as JetStreamError
from nats.js.errors import NotFoundError

from ingest_platform.streaming.kraken.fanout.confirm import Answer, Confirmations

logger = logging.getLogger(__name__)


def redact_url(url: str) -> str:
    """A server URL fit for a log or an error: ``nats://user:secret@host`` -> ``nats://***@host``
    (a NATS URL may carry credentials; they never leave through a message)."""
    parts = []
    for server in url.split(","):
        scheme, sep, rest = server.strip().partition("://")
        if not sep:
            scheme, rest = "", scheme
        host = rest.rpartition("@")[2] if "@" in rest else rest
        masked = f"***@{host}" if "@" in rest else host
        parts.append(f"{scheme}://{masked}" if sep else masked)
    return ",".join(parts)


class BusError(RuntimeError):
    """The bus cannot be reached or refused a request; the message says which and why."""


class StreamConfigMismatch(BusError):
    """The stream exists with a configuration other than the one configured: never silently
    reconfigured (that could drop retained events or change what consumers rely on)."""


@dataclass(frozen=True)
class StreamSpec:
    """The stream the events are kept in: its name, subjects, retention and replicas."""

    name: str = "KRAKEN"
    subjects: tuple[str, ...] = ("kraken.>",)
    max_age_seconds: float = 24 * 3600.0
    max_bytes: int = 1 << 30
    replicas: int = 1
    duplicate_window_seconds: float = 120.0
    discard: str = "old"
    """When full: ``old`` drops the oldest events (a live feed), ``new`` refuses new ones (the
    publisher records them as bus gaps)."""

    def __post_init__(self) -> None:
        if self.discard not in ("old", "new"):
            raise ValueError(
                f"stream {self.name}: discard must be 'old' or 'new', got {self.discard!r}"
            )
        if not self.name or any(c in self.name for c in ".*> "):
            raise ValueError(f"stream name {self.name!r}: no '.', '*', '>' or spaces")
        if self.max_age_seconds <= 0 or self.max_bytes <= 0 or self.replicas < 1:
            raise ValueError(
                f"stream {self.name}: max_age_seconds, max_bytes and replicas must be positive, "
                f"got {self.max_age_seconds}, {self.max_bytes}, {self.replicas}"
            )
        if self.duplicate_window_seconds <= 0:
            raise ValueError("duplicate_window_seconds must be positive")

    def differences(self, existing: Any) -> list[str]:
        """What an existing stream's config (an object with ``subjects``, ``max_age`` s,
        ``max_bytes``, ``num_replicas``, ``duplicate_window`` s, like nats-py's
        `StreamConfig`) has other than this spec, one line each."""
        wanted = {
            "subjects": sorted(self.subjects),
            "max_age": float(self.max_age_seconds),
            "max_bytes": int(self.max_bytes),
            "num_replicas": int(self.replicas),
            "duplicate_window": float(self.duplicate_window_seconds),
            "discard": self.discard,
        }
        found = {
            "subjects": sorted(getattr(existing, "subjects", None) or []),
            "max_age": float(getattr(existing, "max_age", None) or 0),
            "max_bytes": int(getattr(existing, "max_bytes", None) or -1),
            "num_replicas": int(getattr(existing, "num_replicas", None) or 1),
            "duplicate_window": float(getattr(existing, "duplicate_window", None) or 0),
            "discard": str(getattr(getattr(existing, "discard", None), "value", "old") or "old"),
        }
        return [
            f"{key}: the bus has {found[key]!r}, configured {wanted[key]!r}"
            for key in wanted
            if found[key] != wanted[key]
        ]


@dataclass(frozen=True, slots=True)
class Ack:
    """The bus stored the event (``duplicate``: it already had one with that message id)."""

    duplicate: bool


_STORED = Ack(duplicate=False)
_DUPLICATE = Ack(duplicate=True)


@dataclass(frozen=True, slots=True)
class _Publish:
    """One publish as the bus keeps it until JetStream's answer settles it."""

    subject: str
    payload: bytes
    msg_id: str
    future: asyncio.Future[Ack]


def _answer(msg: Msg) -> Answer:
    """JetStream's answer (a PubAck, an error, or a 503 status) as an `Answer`."""
    data = msg.data
    if not data and msg.headers and msg.headers.get("Status") == "503":
        return Answer(error="no JetStream stream holds the subject")
    try:
        body = json.loads(data)
    except ValueError:
        return Answer(error=f"JetStream answered {data[:200]!r}")
    error = body.get("error")
    if error:
        return Answer(
            error=f"JetStream refused the publish: {error.get('description')} "
            f"(code {error.get('err_code')})"
        )
    seq = body.get("seq")
    if not isinstance(seq, int):
        return Answer(error=f"JetStream answered {data[:200]!r}")
    return Answer(seq=seq, duplicate=body.get("duplicate") is True)


class Bus(Protocol):
    """What the publisher needs of a bus."""

    @property
    def connected(self) -> bool: ...

    async def connect(self) -> None:
        """Connect (raises `BusError` when the bus cannot be reached)."""

    async def ensure_stream(self, spec: StreamSpec) -> None:
        """Create the stream, or verify the existing one (`StreamConfigMismatch`)."""

    async def publish(
        self, subject: str, payload: bytes, msg_id: str, confirm: bool = True
    ) -> asyncio.Future[Ack]:
        """Send now, in call order; the future completes when the bus acknowledged it (it may
        never complete: the caller bounds the wait). ``confirm=False``: the bus may leave this
        one to be acknowledged together with the next publish sent with ``confirm=True`` (the
        caller ends every burst with one)."""

    async def last_message(self, subject: str) -> bytes | None:
        """The newest payload stored on ``subject``, or None."""

    async def close(self) -> None: ...


class JetStreamBus:
    """NATS JetStream through ``nats-py``; ``url`` may list several servers (comma-separated).

    Credentials: ``user``/``password`` or ``token`` (from the environment through Dagster's
    `EnvVar`, never logged) or a ``creds_file``. The client reconnects on its own; `connected`
    says whether it is connected right now.

    A publish is a plain NATS publish with the ``Nats-Msg-Id`` header. A confirmed one carries
    a reply subject (``<inbox>.<n>``, one subscription on ``<inbox>.*`` for every answer): what
    ``js.publish_async`` does, without its per-publish NUID, random token, semaphore wait,
    second future and `PubAck` dataclass (see `benchmarks/kraken_fanout_publish_cost.py`). The
    others go without one, and the next confirmed publish's answer settles them too, or has
    them sent again each confirmed on its own (`confirm.Confirmations` says when). At most
    ``max_pending`` publishes await their acknowledgement; one more is refused (`BusError`)
    until acknowledgements or the caller's cancellations (its timeout) make room.
    """

    def __init__(
        self,
        url: str,
        *,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        creds_file: str | None = None,
        connect_timeout: float = 2.0,
        max_pending: int = 4000,
        stream: str = StreamSpec.name,
    ) -> None:
        self.url = redact_url(url)
        self.servers = [part.strip() for part in url.split(",") if part.strip()]
        if not self.servers:
            raise ValueError("the NATS URL is empty")
        self._auth = {"user": user, "password": password, "token": token}
        self._creds_file = creds_file
        self.connect_timeout = connect_timeout
        self.max_pending = max_pending
        self.stream = stream
        self._nc: NatsClient | None = None
        self._js: Any = None
        self.disconnects = 0
        self._reply_prefix = ""
        self._confirm: Confirmations[_Publish] = Confirmations()
        self._unsettled = 0
        self._next_ack = 0
        self.resent = 0
        """Publishes sent again on their own because their group's answer did not add up."""

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def connect(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            return

        async def disconnected() -> None:
            self._confirm.lost_connection()
            if self._nc is not None:  # not while closing
                self.disconnects += 1
                logger.warning("NATS connection to %s lost; the client reconnects", self.url)

        async def error(exc: Exception) -> None:
            logger.warning("NATS client: %s: %s", type(exc).__name__, exc)

        options: dict[str, Any] = {key: value for key, value in self._auth.items() if value}
        options["connect_timeout"] = self.connect_timeout
        options["reconnect_time_wait"] = 0.25
        if self._creds_file:
            options["user_credentials"] = self._creds_file
        client = NatsClient()
        try:
            # The client retries forever once connected (a bus that restarts is waited for);
            # the first connection is bounded here, so an absent bus is reported, not waited on.
            async with asyncio.timeout(self.connect_timeout * 2):
                # (nats-py annotates these seconds as int; it uses them as float.)
                await client.connect(
                    servers=self.servers,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    disconnected_cb=disconnected,
                    error_cb=error,
                    **options,
                )
                prefix = client.new_inbox() + "."
                await client.subscribe(prefix + "*", cb=self._acknowledged)
        except (OSError, TimeoutError, NatsError) as exc:
            with contextlib.suppress(Exception):
                await client.close()
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else "no connection"
            raise BusError(f"NATS at {self.url} unreachable: {reason}") from None
        self._nc = client
        self._reply_prefix = prefix
        self._js = self._nc.jetstream()

    async def ensure_stream(self, spec: StreamSpec) -> None:
        js = self._require()
        self.stream = spec.name
        try:
            info = await js.stream_info(spec.name)
        except NotFoundError:
            info = None
        except (JetStreamError, NatsError, TimeoutError) as exc:
            raise BusError(f"JetStream stream {spec.name}: {type(exc).__name__}: {exc}") from None
        if info is None:
            config = StreamConfig(
                name=spec.name,
                subjects=list(spec.subjects),
                retention=RetentionPolicy.LIMITS,
                storage=StorageType.FILE,
                max_age=spec.max_age_seconds,
                max_bytes=spec.max_bytes,
                num_replicas=spec.replicas,
                duplicate_window=spec.duplicate_window_seconds,
                discard=DiscardPolicy(spec.discard),
            )
            try:
                await js.add_stream(config)
            except (JetStreamError, NatsError, TimeoutError) as exc:
                raise BusError(f"JetStream stream {spec.name} not created: {exc}") from None
            logger.info("JetStream stream %s created", spec.name)
            return
        differences = spec.differences(info.config)
        if differences:
            raise StreamConfigMismatch(
                f"JetStream stream {spec.name} exists with another configuration ("
                + "; ".join(differences)
                + "): change the stream on the server or the fan-out settings; "
                "it is never reconfigured silently"
            )

    async def publish(
        self, subject: str, payload: bytes, msg_id: str, confirm: bool = True
    ) -> asyncio.Future[Ack]:
        nc = self._nc
        if nc is None or not self._reply_prefix:
            raise BusError(f"not connected to NATS at {self.url}")
        if self._unsettled >= self.max_pending:
            self._give_up_abandoned()
            if self._unsettled >= self.max_pending:
                raise BusError(
                    f"publish to {subject}: {self._unsettled} publishes already await their "
                    f"acknowledgement (max_pending={self.max_pending})"
                )
        future: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        await self._send(nc, _Publish(subject, payload, msg_id, future), confirm)
        return future

    async def _send(self, nc: NatsClient, item: _Publish, confirm: bool) -> None:
        """Publish ``item``: with a reply subject (confirming its group) or without one."""
        token = None
        headers = {"Nats-Msg-Id": item.msg_id}
        try:
            if confirm:
                token = str(self._next_ack)
                self._next_ack += 1
                self._confirm.sent(item, token)
                await nc.publish(
                    item.subject, item.payload, reply=self._reply_prefix + token, headers=headers
                )
            else:
                self._confirm.sent(item, None)
                await nc.publish(item.subject, item.payload, headers=headers)
        except (NatsError, JetStreamError, TimeoutError) as exc:
            if token is not None:
                self._confirm.forget(token)
            else:
                self._confirm.open.pop()
            raise BusError(f"publish to {item.subject}: {type(exc).__name__}: {exc}") from None
        self._unsettled += 1

    def _give_up_abandoned(self) -> None:
        """Forget groups whose every publish the caller gave up on (its timeout cancelled them):
        their answers may never come. One that still comes settles nothing."""
        groups = self._confirm.groups
        for token in [t for t, group in groups.items() if all(p.future.done() for p in group)]:
            self._unsettled -= len(self._confirm.give_up(token))

    async def _acknowledged(self, msg: Msg) -> None:
        """JetStream's answer to a confirmed publish: a PubAck (``{"stream":…,"seq":…}``, with
        ``"duplicate":true`` when the message id was already stored), an error, or a 503
        status (no stream holds the subject). It settles the publish's whole group
        (`confirm.Confirmations`); doubtful ones are sent again, each confirmed on its own."""
        answer = _answer(msg)
        settled = self._confirm.answered(msg.subject[len(self._reply_prefix) :], answer)
        self._unsettled -= len(settled.stored) + len(settled.doubtful)
        for item in settled.stored:
            if not item.future.done():
                item.future.set_result(_STORED)
        confirming = settled.confirming
        if confirming is not None:
            self._unsettled -= 1
            future = confirming.future
            if not future.done():
                if answer.error is not None:
                    future.set_exception(BusError(f"{answer.error} ({self.url})"))
                else:
                    future.set_result(_DUPLICATE if answer.duplicate else _STORED)
        if settled.doubtful:
            self.resent += len(settled.doubtful)
            nc = self._nc
            for item in settled.doubtful:
                if item.future.done():
                    continue
                try:
                    if nc is None:
                        raise BusError(f"not connected to NATS at {self.url}")
                    await self._send(nc, item, confirm=True)
                except BusError as exc:
                    item.future.set_exception(exc)

    async def last_message(self, subject: str) -> bytes | None:
        js = self._require()
        try:
            msg = await js.get_last_msg(self.stream, subject)
        except NotFoundError:
            return None
        except (JetStreamError, NatsError, TimeoutError) as exc:
            raise BusError(f"last message on {subject}: {type(exc).__name__}: {exc}") from None
        data: bytes | None = msg.data
        return data

    async def close(self) -> None:
        nc, self._nc = self._nc, None
        self._reply_prefix = ""
        for group in [self._confirm.open, *self._confirm.groups.values()]:
            for item in group:
                item.future.cancel()
        self._confirm = Confirmations()
        self._unsettled = 0
        if nc is not None and not nc.is_closed:
            try:
                async with asyncio.timeout(2.0):
                    await nc.drain()
            except Exception:
                await nc.close()

    def _require(self) -> Any:
        if self._js is None or self._nc is None:
            raise BusError(f"not connected to NATS at {self.url}")
        return self._js
