"""Hosting a stream client on its own event loop in a thread, for the Dagster op.

The runner knows a client only by the small `StreamClient` protocol below, so it depends on
nothing else in the package (and nothing depends on it but the op).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import gc
import queue
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Generic, Protocol, TypeVar

ResultT = TypeVar("ResultT")
ResultT_co = TypeVar("ResultT_co", covariant=True)


class StreamClient(Protocol[ResultT_co]):
    """What the runner needs of a client: run until stopped, stop on request, report."""

    on_report: Callable[[dict[str, Any]], None] | None

    def run(self, duration: float | None = None) -> Coroutine[Any, Any, ResultT_co]: ...

    def request_stop(self) -> None: ...


class StreamRunner(Generic[ResultT]):
    """Runs a `StreamClient` on its own event loop in a thread.

    Why a thread: the Dagster op's thread must stay free to receive the run's cancellation
    (a signal raises DagsterExecutionInterruptedError there) and to emit Dagster events, which
    are not meant to be logged from another thread. The op waits on `events`; `stop` (called
    in the op's ``finally``) asks the client to finish, which closes the socket and flushes
    the log, and joins the thread.
    """

    def __init__(
        self,
        client: StreamClient[ResultT],
        duration: float | None = None,
        freeze_gc: bool = False,
    ) -> None:
        self.client = client
        self.duration = duration
        self.freeze_gc = freeze_gc
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.result: ResultT | None = None
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[ResultT] | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="kraken-stream", daemon=True)
        previous = client.on_report

        def report(stats: dict[str, Any]) -> None:
            self.events.put(("report", stats))
            if previous is not None:
                previous(stats)

        client.on_report = report

    def start(self) -> StreamRunner[ResultT]:
        if self.freeze_gc:
            # Everything loaded so far (Dagster, pandas, ...) lives as long as the process:
            # moving it out of the cyclic GC's reach keeps full collections, which stop the
            # event loop, in the low milliseconds. For a process that only hosts the stream.
            gc.collect()
            gc.freeze()
        self._thread.start()
        # A cancellation can land while Dagster is storing an event the op yielded, outside
        # the op's frames; its `finally` then runs only when the generator is collected, which
        # may be at interpreter exit, after daemon threads are gone. Stopping here too (atexit
        # runs while they are still alive) keeps the socket closed and the log flushed.
        atexit.register(self.stop)
        self._ready.wait(timeout=10)
        return self

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._task = loop.create_task(self.client.run(self.duration))
            self._ready.set()
            self.result = loop.run_until_complete(self._task)
            self.events.put(("done", self.result))
        except BaseException as exc:
            self.error = exc
            self.events.put(("error", exc))
        finally:
            self._ready.set()
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def request_stop(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.client.request_stop)

    def stop(self, timeout: float = 30.0) -> bool:
        """Ask the client to stop and wait; cancel it if it does not. True once the thread ended."""
        self.request_stop()
        self._thread.join(timeout)
        if self._thread.is_alive() and self._loop is not None and self._task is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._task.cancel)
            self._thread.join(timeout)
        stopped = not self._thread.is_alive()
        if stopped:
            atexit.unregister(self.stop)
        return stopped

    def is_alive(self) -> bool:
        return self._thread.is_alive()
