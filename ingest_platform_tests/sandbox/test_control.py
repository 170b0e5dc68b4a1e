"""Fault rules: what ``GET /_sandbox/faults`` lists can be posted back as it is."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict

from ingest_platform.sandbox.control import Fault, RequestCounters
from ingest_platform.sandbox.data import MarketSimulator
from ingest_platform.sandbox.http import SandboxHTTPServer

FAULTS = "/_sandbox/faults"


def _json(response) -> dict:
    return json.loads(response.body)


def test_a_listed_rule_loads_again_with_its_fired_count_reset():
    listed = asdict(Fault("slow", endpoint="fred", symbol="GDP", times=3, params={"delay": 0.1}))
    listed["fired"] = 2
    again = Fault.from_dict(listed)
    assert again == Fault("slow", endpoint="fred", symbol="GDP", times=3, params={"delay": 0.1})
    assert again.fired == 0


def test_get_faults_output_posts_back_verbatim():
    server = SandboxHTTPServer(MarketSimulator(seed=21, as_of=dt.date(2025, 6, 30)))
    rule = {"kind": "server_error", "endpoint": "fred", "times": 2, "params": {"status": 502}}
    posted = server.handle("POST", FAULTS, {}, json.dumps({"faults": [rule]}).encode())
    assert posted.status == 200
    fired = server.handle("GET", "/fred/series/observations?series_id=GDP&api_key=k", {})
    assert fired.status == 502

    listing = server.handle("GET", FAULTS, {})
    assert [f["fired"] for f in _json(listing)["faults"]] == [1]
    server.handle("DELETE", FAULTS, {})
    reposted = server.handle("POST", FAULTS, {}, listing.body)

    assert reposted.status == 200, reposted.body
    assert _json(reposted)["added"] == 1
    [again] = _json(server.handle("GET", FAULTS, {}))["faults"]
    assert again == {**_json(listing)["faults"][0], "fired": 0}


def test_request_arrivals_give_per_second_counts_and_the_busiest_sliding_second():
    clock = iter([100.2, 100.9, 101.1, 101.8, 103.0])
    counters = RequestCounters(clock=lambda: next(clock))
    server = SandboxHTTPServer(
        MarketSimulator(seed=21, as_of=dt.date(2025, 6, 30)), counters=counters
    )
    for _ in range(5):
        server.handle("GET", "/polygon/v2/aggs/ticker/AAPL/range/1/day/2025-06-02/2025-06-27", {})
    counters.count("kraken.sent.heartbeat")  # stream events are counted, not timed

    assert counters.arrivals("polygon") == [100.2, 100.9, 101.1, 101.8, 103.0]
    assert counters.per_second("polygon.aggs") == {100: 2, 101: 2, 103: 1}
    # Whole seconds hold 2 at most, but 100.9, 101.1 and 101.8 fall within one second.
    assert counters.busiest("polygon") == 3
    rates = _json(server.handle("GET", "/_sandbox/rates", {}))
    assert rates == {
        "polygon.aggs": {"per_second": {"100": 2, "101": 2, "103": 1}, "busiest_second": 3}
    }
    server.handle("DELETE", "/_sandbox/counters", {})
    assert counters.arrivals("polygon") == [] and counters.busiest("polygon") == 0
