"""/metrics against a running gateway: the token, every documented family after a scripted workload
(parsed with prometheus_client's own text parser), bounded labels, and the alert rules and the
Grafana dashboard in deploy/ referring only to families the gateway exposes.

Run by scripts/test (the gateway fixture in conftest.py sets GATEWAY_METRICS_TOKEN).
"""
import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
import uuid

import yaml
from prometheus_client.parser import text_string_to_metric_families

from conftest import jwt

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RULES = os.path.join(REPO, "deploy", "prometheus", "privacy-gateway-alerts.yml")
DASHBOARD = os.path.join(REPO, "deploy", "grafana", "privacy-gateway-dashboard.json")

# Family name (as prometheus_client names it: counters without _total) → type.
FAMILIES = {
    "privacy_gateway_build_info": "gauge",
    "privacy_gateway_http_request_duration_seconds": "histogram",
    "privacy_gateway_db_pool_connections": "gauge",
    "privacy_gateway_db_pool_waiting": "gauge",
    "privacy_gateway_db_pool_wait_seconds": "histogram",
    "privacy_gateway_db_errors": "counter",
    "privacy_gateway_auth_failures": "counter",
    "privacy_gateway_policy_denials": "counter",
    "privacy_gateway_secrets_operations": "counter",
    "privacy_gateway_audit_append_batch_size": "histogram",
    "privacy_gateway_audit_append_seconds": "histogram",
    "privacy_gateway_audit_append_failures": "counter",
    "privacy_gateway_audit_checkpoint_age_seconds": "gauge",
    "privacy_gateway_audit_checkpoint_failures": "counter",
    "privacy_gateway_privacy_requests": "gauge",
    "privacy_gateway_retention_sweeps": "counter",
}
UUID_PATTERN = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def call(gateway, method, path, headers=None, body=None):
    request = urllib.request.Request(gateway.url + path, method=method, data=None if body is None else json.dumps(body).encode())
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def scrape(gateway):
    status, text = call(gateway, "GET", "/metrics", {"Authorization": "Bearer " + gateway.metrics_token})
    assert status == 200, text
    return text


def test_metrics_needs_the_token(gateway):
    assert call(gateway, "GET", "/metrics")[0] == 401
    assert call(gateway, "GET", "/metrics", {"Authorization": "Bearer " + "0" * len(gateway.metrics_token)})[0] == 401
    assert call(gateway, "GET", "/metrics", {"Authorization": "Bearer " + gateway.metrics_token[:-1]})[0] == 401
    assert call(gateway, "GET", "/metrics", {"apikey": gateway.tenants["acme"]["apikey"]})[0] == 401
    status, text = call(gateway, "GET", "/metrics", {"Authorization": "Bearer " + gateway.metrics_token})
    assert status == 200 and "privacy_gateway_build_info" in text


def workload(gateway):
    """Touches every family: REST reads and writes, a policy refusal, a database error, secrets,
    refused keys and tokens, an unknown path."""
    acme = gateway.tenants["acme"]
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    as_alice = {"apikey": acme["apikey"], "Authorization": "Bearer " + jwt(acme["secret"], alice)}
    as_bob = {"apikey": acme["apikey"], "Authorization": "Bearer " + jwt(acme["secret"], bob)}
    project = str(uuid.uuid4())
    # Private, and deleted at the end: the other client tests list this tenant's projects.
    row = {"id": project, "name": "metrics-" + project[:8], "type": "website", "user_id": alice, "is_public": False}
    assert call(gateway, "POST", "/rest/v1/projects", as_alice, row)[0] == 201
    # The same primary key again: the database refuses it (SQLSTATE class 23).
    status, body = call(gateway, "POST", "/rest/v1/projects", as_alice, row)
    assert status == 409 and "23505" in body, body
    assert call(gateway, "GET", f"/rest/v1/projects?id=eq.{project}", as_alice)[0] == 200
    # The sealed secrets table is not served through /rest/v1: refused and counted as a policy denial.
    status, body = call(gateway, "GET", "/rest/v1/user_secrets", as_bob)
    assert status == 403 and "42501" in body, body
    assert call(gateway, "DELETE", f"/rest/v1/projects?id=eq.{project}", as_alice)[0] in (200, 204)
    value = "metrics-secret-" + uuid.uuid4().hex
    assert call(gateway, "PUT", "/v1/secrets/metrics", as_alice, {"value": value})[0] == 201
    assert call(gateway, "GET", "/v1/secrets/metrics", as_alice)[0] == 200
    assert call(gateway, "GET", "/v1/secrets/metrics", {"apikey": "pgw_" + "x" * 76})[0] == 401
    assert call(gateway, "GET", "/v1/secrets/metrics", {"apikey": acme["apikey"], "Authorization": "Bearer " + jwt("y" * 48, alice)})[0] == 401
    assert call(gateway, "GET", f"/no/such/path/{project}")[0] == 404
    return [value, acme["apikey"], acme["secret"], as_alice["Authorization"], as_bob["Authorization"], alice, bob, project]


def test_every_family_after_a_workload_with_bounded_labels(gateway):
    secrets_sent = workload(gateway)
    text = scrape(gateway)
    families = {family.name: family for family in text_string_to_metric_families(text)}
    for name, kind in FAMILIES.items():
        assert name in families, f"{name} missing from /metrics:\n{text}"
        assert families[name].type == kind, (name, families[name].type)
    for name in families:
        assert name.startswith("privacy_gateway_"), name

    def samples(name, **labels):
        return [s for s in families[name].samples if all(s.labels.get(k) == v for k, v in labels.items())]

    assert samples("privacy_gateway_http_request_duration_seconds", route="/rest/v1/{table}", method="POST", status="2xx")
    assert samples("privacy_gateway_http_request_duration_seconds", route="unmatched", method="GET", status="4xx")
    assert samples("privacy_gateway_db_errors", **{"class": "23"})
    assert samples("privacy_gateway_policy_denials", table="user_secrets", command="select")
    assert samples("privacy_gateway_secrets_operations", action="write", outcome="ok")
    assert samples("privacy_gateway_secrets_operations", action="read", outcome="denied")
    assert samples("privacy_gateway_auth_failures", reason="invalid_api_key")
    assert samples("privacy_gateway_auth_failures", reason="jwt_invalid")
    assert samples("privacy_gateway_privacy_requests", kind="export", state="overdue")
    assert samples("privacy_gateway_build_info")[0].labels["version"]
    batches = [s.value for s in samples("privacy_gateway_audit_append_batch_size") if s.name.endswith("_count")]
    assert batches and batches[0] >= 1

    # Bounded labels: routes are templates, and no label but a checkpoint's tenant holds an id.
    tenant_ids = {t["id"] for t in gateway.tenants.values()}
    for family in families.values():
        for sample in family.samples:
            for label, value in sample.labels.items():
                if label == "route":
                    assert value == "unmatched" or value.startswith("/"), value
                if label == "tenant":
                    assert family.name == "privacy_gateway_audit_checkpoint_age_seconds"
                    continue
                assert not UUID_PATTERN.search(value), (family.name, label, value)
    checkpointed = {s.labels["tenant"] for s in families["privacy_gateway_audit_checkpoint_age_seconds"].samples}
    assert checkpointed & tenant_ids, checkpointed
    for secret in secrets_sent:
        assert secret not in text


def exposed_names(gateway):
    """Every sample name the gateway exposes (histograms as _bucket/_sum/_count, counters with _total)."""
    workload(gateway)
    return {sample.name for family in text_string_to_metric_families(scrape(gateway)) for sample in family.samples}


def referenced(expression):
    return set(re.findall(r"\bprivacy_gateway_[a-z0-9_]+", expression))


def test_alert_rules_are_well_formed_and_use_exposed_families(gateway):
    names = exposed_names(gateway)
    document = yaml.safe_load(open(RULES))
    assert set(document) == {"groups"}
    alerts = []
    for group in document["groups"]:
        assert set(group) <= {"name", "interval", "rules"} and group["name"] and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}, rule
            assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule["alert"]), rule["alert"]
            assert rule["labels"]["severity"] in {"page", "ticket"}, rule
            assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule
            if "for" in rule:
                assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["for"]
            assert rule["expr"].count("(") == rule["expr"].count(")"), rule["expr"]
            used = referenced(rule["expr"])
            assert used, rule["expr"]
            assert used <= names, f"{rule['alert']} refers to {used - names}, not exposed"
            alerts.append(rule["alert"])
    assert len(alerts) == len(set(alerts))
    # The four the operators are paged for.
    for wanted in ["PrivacyRequestsOverdue", "AuditCheckpointStale", "AuditAppendFailing", "DatabasePoolSaturated"]:
        assert wanted in alerts, wanted
    # promtool, when the host has it (Debian's prometheus package), checks the PromQL as well.
    if shutil.which("promtool"):
        result = subprocess.run(["promtool", "check", "rules", RULES], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_is_grafana_importable_and_uses_exposed_families(gateway):
    names = exposed_names(gateway)
    dashboard = json.load(open(DASHBOARD))
    assert dashboard["title"] and dashboard["uid"] and isinstance(dashboard["schemaVersion"], int)
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) >= 8
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            used = referenced(target["expr"])
            assert used and used <= names, f"{panel['title']}: {used - names}"
