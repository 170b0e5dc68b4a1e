"""Who can reach what: the read-only webserver, oauth2-proxy in front of the writable one, and
PostgreSQL reachable only from the webservers, the daemon, the code server and the runs.

The Helm values give each pod its labels; deploy/k8s/network-policies.yaml is then evaluated
with Kubernetes' NetworkPolicy rules (a pod selected by no policy of a direction is open in
that direction; selected, it may do what any selecting policy allows; an ipBlock matches an
address in its CIDR and not in its excepts; ports restrict) for each pod and destination.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
POSTGRES_CLIENT = "ingest-platform/postgres-client"
PROXY_LABEL = "ingest-platform/webserver-proxy"


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())


@pytest.fixture(scope="module")
def proxy() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "helm" / "oauth2-proxy.yaml").read_text())


@pytest.fixture(scope="module")
def policies() -> list[dict[str, Any]]:
    documents = list(yaml.safe_load_all((DEPLOY / "k8s" / "network-policies.yaml").read_text()))
    assert all(d["kind"] == "NetworkPolicy" for d in documents)
    return documents


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    wanted = selector.get("matchLabels") or {}
    assert not selector.get("matchExpressions"), "extend this evaluator for matchExpressions"
    return all(labels.get(k) == v for k, v in wanted.items())


def _peer_matches(peer: dict[str, Any], target: dict[str, Any]) -> bool:
    if "ipBlock" in peer:
        if "ip" not in target:
            return False
        ip = ipaddress.ip_address(target["ip"])
        block = peer["ipBlock"]
        inside = ip in ipaddress.ip_network(block["cidr"])
        return inside and not any(ip in ipaddress.ip_network(e) for e in block.get("except", []))
    if "labels" not in target:  # a namespace or pod selector matches pods only
        return False
    if "namespaceSelector" in peer and "podSelector" not in peer:
        return _selects(peer["namespaceSelector"], target.get("namespace_labels", {}))
    return _selects(peer.get("podSelector", {}), target["labels"])


def _rule_allows(rule: dict[str, Any], peers_key: str, target: dict[str, Any], port: int) -> bool:
    ports = rule.get("ports")
    if ports and not any(p.get("port") == port for p in ports):
        return False
    peers = rule.get(peers_key)
    return peers is None or any(_peer_matches(peer, target) for peer in peers)


def allowed(
    policies, direction: str, pod: dict[str, str], other: dict[str, Any], port: int
) -> bool:
    """Whether ``pod`` may send to (Egress) or receive from (Ingress) ``other`` on ``port``."""
    key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    selecting = [
        p
        for p in policies
        if direction in p["spec"]["policyTypes"] and _selects(p["spec"]["podSelector"], pod)
    ]
    if not selecting:
        return True
    return any(
        _rule_allows(rule, peers_key, other, port)
        for p in selecting
        for rule in p["spec"].get(key, [])
    )


def _pods(values: dict[str, Any], proxy: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Each pod's labels as the charts give them (chart labels + the values' own)."""
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    webserver = values["dagsterWebserver"]["labels"]
    return {
        "webserver": {"component": "dagster-webserver", **webserver},
        "read-only webserver": {"component": "dagster-webserver-read-only", **webserver},
        "daemon": {"component": "dagster-daemon", **values["dagsterDaemon"]["labels"]},
        "code server": {"component": "user-deployments", **deployment["labels"]},
        "run": {"app.kubernetes.io/component": "run_worker", **launcher["labels"]},
        "oauth2-proxy": {"app.kubernetes.io/name": "oauth2-proxy", **proxy["podLabels"]},
        "ingress controller": {"app.kubernetes.io/name": "ingress-nginx"},
        "anything else": {"app": "debug-shell"},
    }


def _postgres(policies) -> str:
    clients = next(p for p in policies if p["metadata"]["name"] == "postgres-clients")
    return str(ipaddress.ip_network(clients["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"])[0])


def test_only_the_webservers_daemon_code_server_and_runs_reach_postgres(values, proxy, policies):
    pods = _pods(values, proxy)
    postgres = {"ip": _postgres(policies)}
    reach = {
        name: allowed(policies, "Egress", labels, postgres, 5432) for name, labels in pods.items()
    }
    assert reach == {
        "webserver": True,
        "read-only webserver": True,
        "daemon": True,
        "code server": True,
        "run": True,
        "oauth2-proxy": False,
        "ingress controller": False,
        "anything else": False,
    }
    # Only PostgreSQL's port, and everyone keeps the rest of the world (object storage, DNS).
    assert not allowed(policies, "Egress", pods["run"], postgres, 22)
    s3 = {"ip": "52.216.8.1"}
    dns = {"labels": {"k8s-app": "kube-dns"}, "namespace_labels": {"name": "kube-system"}}
    for labels in pods.values():
        assert allowed(policies, "Egress", labels, s3, 443)
        assert allowed(policies, "Egress", labels, dns, 53)


def test_the_writable_webserver_is_reached_only_through_oauth2_proxy(values, proxy, policies):
    pods = _pods(values, proxy)
    port = 80
    assert allowed(policies, "Ingress", pods["webserver"], {"labels": pods["oauth2-proxy"]}, port)
    for source in ("ingress controller", "anything else", "run"):
        assert not allowed(policies, "Ingress", pods["webserver"], {"labels": pods[source]}, port)
    # Viewers reach the read-only webserver through the ingress.
    reader = pods["read-only webserver"]
    assert allowed(policies, "Ingress", reader, {"labels": pods["ingress controller"]}, port)


def test_the_values_run_a_read_only_webserver_and_route_the_writable_one_through_the_proxy(
    values, proxy
):
    assert values["dagsterWebserver"]["enableReadOnly"] is True
    ingress = values["ingress"]
    assert ingress["enabled"] is True
    writable, reader = ingress["dagsterWebserver"], ingress["readOnlyDagsterWebserver"]
    assert writable["host"] and reader["host"] and writable["host"] != reader["host"]
    # Every path of the writable host goes to oauth2-proxy first; the chart's direct route is
    # not "/" (and the NetworkPolicy above refuses it anyway).
    (first,) = writable["precedingPaths"]
    assert (first["path"], first["pathType"], first["serviceName"]) == (
        "/",
        "Prefix",
        "oauth2-proxy",
    )
    assert first["servicePort"] == proxy["service"]["portNumber"]
    assert writable["path"] != "/" and reader["path"] == "/"
    assert writable["tls"]["enabled"] and reader["tls"]["enabled"]

    # The proxy sends authenticated editors to the writable webserver's service, not the
    # read-only one; its secrets come from an existing secret.
    config = proxy["config"]["configFile"]
    assert "http://dagster-webserver.dagster.svc.cluster.local:80" in config
    assert "read-only" not in config
    assert proxy["config"]["existingSecret"] and proxy["extraArgs"]["allowed-group"]
    assert not {"clientSecret", "cookieSecret", "clientID"} & set(proxy["config"])
    assert proxy["extraArgs"]["redirect-url"].startswith(f"https://{writable['host']}/")


def test_the_alert_secrets_reach_the_code_server_where_the_sensors_run(values):
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    alerts = next(s for s in deployment["envSecrets"] if s["name"] == "ingest-platform-alerts")
    assert alerts.get("optional") is True  # no secret: alerts off, the sensors say so
