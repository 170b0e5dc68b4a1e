"""The shared HTTP layer: retries, Retry-After, rate limits, budgets and key redaction."""

from __future__ import annotations

import json
import logging
import random
import threading
import traceback
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ingest_platform.core.http import (
    CallBudget,
    HttpClient,
    RateLimiter,
    Redactor,
    RetryPolicy,
    parse_retry_after,
    redact_url,
)
from ingest_platform.core.http.errors import (
    BudgetExhausted,
    MalformedPayload,
    RateLimited,
    SourceUnavailable,
)

SECRET = "sk_live_8f3a9c2d71"


class ScriptedServer:
    """Answers each request with the next scripted (status, headers, body); records the paths."""

    def __init__(self):
        self.script: deque[tuple[int, dict, bytes]] = deque()
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                outer.paths.append(self.path)
                status, headers, body = outer.script.popleft() if outer.script else (200, {}, b"{}")
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answer(self, status=200, body=None, headers=None):
        raw = (
            body
            if isinstance(body, bytes)
            else json.dumps(body if body is not None else {}).encode()
        )
        self.script.append((status, headers or {}, raw))

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = ScriptedServer()
    yield s
    s.close()


class FakeSleep:
    def __init__(self):
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def client(sleeps=None, **kwargs) -> HttpClient:
    kwargs.setdefault("retry", RetryPolicy(max_attempts=3, backoff_base=0.01, read_timeout=2))
    return HttpClient(
        "alpha_vantage",
        secrets=[SECRET],
        sleep=sleeps or FakeSleep(),
        rng=random.Random(1),
        **kwargs,
    )


def test_redact_url_hides_every_secret_parameter():
    url = f"https://x.test/query?function=TIME_SERIES_DAILY&apikey={SECRET}&api_key=abc&apiKey=def"
    shown = redact_url(url)
    assert SECRET not in shown and "abc" not in shown and "def" not in shown
    assert "function=TIME_SERIES_DAILY" in shown and shown.count("***") == 3


def test_redactor_scrubs_free_text_and_known_values():
    redact = Redactor([SECRET])
    text = f"Max retries exceeded with url: /query?symbol=IBM&apikey={SECRET} (caused by {SECRET})"
    assert SECRET not in redact(text)
    assert "symbol=IBM" in redact(text)


def test_429_with_retry_after_is_retried_after_that_long(server):
    server.answer(429, {"error": "slow down"}, {"Retry-After": "7"})
    server.answer(200, {"ok": 1})
    sleeps = FakeSleep()
    c = client(sleeps)
    assert c.get_json(f"{server.url}/q", {"apikey": SECRET}, symbol="IBM") == {"ok": 1}
    assert sleeps.calls == [pytest.approx(7.0, abs=0.05)]
    assert c.stats.requests == 2 and c.stats.retries == 1 and c.stats.throttled == 1


def test_retry_after_beyond_the_cap_fails_fast_with_a_clear_error(server):
    server.answer(429, {}, {"Retry-After": "3600"})
    sleeps = FakeSleep()
    c = client(sleeps, retry=RetryPolicy(max_attempts=5, max_retry_after=60))
    with pytest.raises(RateLimited) as info:
        c.get_json(f"{server.url}/q", {"apikey": SECRET}, symbol="IBM")
    assert info.value.retry_after == 3600 and sleeps.calls == []
    assert "alpha_vantage IBM: HTTP 429" in str(info.value)


def test_5xx_is_retried_with_bounded_jittered_backoff_then_fails(server):
    for _ in range(3):
        server.answer(503, {"error": "down"})
    sleeps = FakeSleep()
    c = client(sleeps)
    with pytest.raises(SourceUnavailable, match=r"HTTP 503 .*gave up after 3 attempt\(s\)"):
        c.get_json(f"{server.url}/q", {"apikey": SECRET}, symbol="IBM")
    assert len(server.paths) == 3
    assert len(sleeps.calls) == 2
    assert 0 <= sleeps.calls[0] <= 0.02 and 0 <= sleeps.calls[1] <= 0.04  # base 0.01 * 2**n


def test_truncated_json_is_retried_then_reported_as_malformed(server):
    server.answer(200, b'{"Time Series (Daily)": {"2024-03-08": {"1. op')
    server.answer(200, b'{"Time Series (Daily)": {"2024-03-08": {"1. op')
    server.answer(200, b'{"Time Series (Daily)": {"2024-03-08": {"1. op')
    with pytest.raises(MalformedPayload, match="invalid JSON"):
        client().get_json(f"{server.url}/q", {"apikey": SECRET}, symbol="IBM")


def test_a_body_that_is_not_utf8_is_malformed_not_a_crash(server):
    for _ in range(3):
        server.answer(200, b"<?xml version='1.0' encoding='latin-1'?><error>\xe9chec</error>")
    with pytest.raises(MalformedPayload, match="not UTF-8 at byte"):
        client().get_json(f"{server.url}/q", {"apikey": SECRET}, symbol="IBM")


def test_interpret_turns_in_body_throttling_into_a_retry(server):
    server.answer(200, {"Note": "Thank you for using Alpha Vantage! ... 5 calls per minute"})
    server.answer(200, {"Time Series (Daily)": {}})

    def interpret(status, payload):
        if "Note" in payload:
            raise RateLimited("alpha_vantage", payload["Note"], "IBM", retry_after=1)
        return payload

    sleeps = FakeSleep()
    assert client(sleeps).get_json(f"{server.url}/q", symbol="IBM", interpret=interpret) == {
        "Time Series (Daily)": {}
    }
    assert sleeps.calls and sleeps.calls[0] >= 1


def test_a_timeout_is_bounded_and_named(server):
    import time

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self):
            time.sleep(2)

        def log_message(self, *args):
            pass

    slow = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    slow.daemon_threads = True
    threading.Thread(target=slow.serve_forever, daemon=True).start()
    try:
        c = client(retry=RetryPolicy(max_attempts=2, backoff_base=0, read_timeout=0.3))
        with pytest.raises(SourceUnavailable, match=r"timed out after 0.3 s.*gave up after 2"):
            c.get_json(f"http://127.0.0.1:{slow.server_address[1]}/q", {"apikey": SECRET}, "IBM")
    finally:
        slow.shutdown()
        slow.server_close()


def test_no_secret_in_exceptions_tracebacks_or_logs(server, caplog):
    caplog.set_level(logging.DEBUG)
    for _ in range(3):
        server.answer(500, {"error": f"bad key {SECRET}"})
    with pytest.raises(SourceUnavailable) as info:
        client().get_json(f"{server.url}/q", {"apikey": SECRET, "symbol": "IBM"}, symbol="IBM")
    rendered = "".join(traceback.format_exception(info.value))
    assert SECRET not in rendered
    assert "apikey=***" in rendered
    assert SECRET not in caplog.text

    # A refused connection: requests' own message embeds the full URL.
    with pytest.raises(SourceUnavailable) as refused:
        client().get_json("http://127.0.0.1:9/q", {"apikey": SECRET}, symbol="IBM")
    assert SECRET not in "".join(traceback.format_exception(refused.value))
    assert SECRET not in caplog.text


def test_parse_retry_after_accepts_seconds_and_http_dates():
    import datetime as dt

    now = dt.datetime(2024, 3, 8, 12, 0, 0, tzinfo=dt.UTC)
    assert parse_retry_after("12") == 12
    assert parse_retry_after("Fri, 08 Mar 2024 12:00:30 GMT", now=now) == 30
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_rate_limiter_spaces_calls_across_threads():
    clock = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        clock[0] += seconds

    limiter = RateLimiter("polygon", [(5, 60.0)], clock=lambda: clock[0], sleep=sleep)
    threads = [threading.Thread(target=limiter.acquire) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert slept == []  # five calls fit in the first minute
    limiter.acquire()  # the sixth waits for the first to age out
    assert sum(slept) == pytest.approx(60.0)


def test_rate_limiter_refuses_waits_beyond_max_wait():
    limiter = RateLimiter("alpha_vantage", [(1, 86400.0)], max_wait=60, clock=lambda: 0.0)
    limiter.acquire()
    with pytest.raises(RateLimited, match="would need a 86400 s wait"):
        limiter.acquire()


def test_call_budget_is_persisted_reported_and_enforced(tmp_path):
    path = tmp_path / "budgets.sqlite"
    budget = CallBudget("alpha_vantage", path, daily_limit=3, cost_per_call=0.01)
    budget.charge()
    budget.charge()
    again = CallBudget("alpha_vantage", path, daily_limit=3, cost_per_call=0.01)  # new process
    report = again.report()
    assert (report.calls, report.remaining) == (2, 1)
    assert report.cost == pytest.approx(0.02)
    again.charge()
    with pytest.raises(BudgetExhausted, match=r"3/3 calls"):
        again.charge()
    assert again.report().calls == 3  # a refused charge spends nothing


def test_budget_is_charged_per_attempt_and_stops_calls(server, tmp_path):
    budget = CallBudget("alpha_vantage", tmp_path / "b.sqlite", daily_limit=2)
    for _ in range(3):
        server.answer(503, {})
    with pytest.raises(BudgetExhausted):
        client(budget=budget).get_json(f"{server.url}/q", symbol="IBM")
    assert len(server.paths) == 2  # the third attempt was never sent
