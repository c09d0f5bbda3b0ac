"""The secrets API against a running gateway, then a search for the plaintext everywhere else.

Every value written and every JWT sent is looked for in what the gateway logged, in every audit
row and in /metrics: none may appear (DESIGN.md §7: plaintext never reaches logs, errors, audit
rows or metrics).
"""
import json
import secrets
import subprocess
import urllib.error
import urllib.request
import uuid

from conftest import jwt


def call(gateway, method, path, apikey, token=None, body=None, headers=None):
    request = urllib.request.Request(gateway.url + path, method=method, data=None if body is None else json.dumps(body).encode())
    request.add_header("apikey", apikey)
    if token:
        request.add_header("Authorization", "Bearer " + token)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read() or b"null"), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null"), dict(error.headers)


def test_secrets_round_trip_and_no_plaintext_in_logs_audit_or_metrics(gateway):
    acme = gateway.tenants["acme"]
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    alice_token, bob_token = jwt(acme["secret"], alice), jwt(acme["secret"], bob)
    service_token = jwt(acme["secret"], str(uuid.uuid4()), role="service_role")
    first, second = "pt1-" + secrets.token_hex(16), "pt2-" + secrets.token_hex(16)

    status, body, headers = call(gateway, "PUT", "/v1/secrets/github", acme["apikey"], alice_token, {"value": first})
    assert status == 201 and body["version"] == 1 and headers["ETag"] == '"1"'
    status, body, _ = call(gateway, "PUT", "/v1/secrets/github", acme["apikey"], alice_token, {"value": "lost"},
                           headers={"If-Match": '"7"'})
    assert status == 412 and body["code"] == "PGW412"
    status, body, _ = call(gateway, "PUT", "/v1/secrets/github", acme["apikey"], alice_token, {"value": second},
                           headers={"If-Match": '"1"'})
    assert status == 200 and body["version"] == 2

    status, body, _ = call(gateway, "GET", "/v1/secrets/github", acme["apikey"], alice_token)
    assert status == 200 and body["value"] == second and body["service_name"] == "github" and body["version"] == 2
    status, body, _ = call(gateway, "GET", "/v1/secrets/github?version=1", acme["apikey"], alice_token)
    assert status == 200 and body["value"] == first
    status, body, _ = call(gateway, "GET", "/v1/secrets/github/versions", acme["apikey"], alice_token)
    assert [v["version"] for v in body["versions"]] == [2, 1] and "value" not in json.dumps(body)
    status, body, _ = call(gateway, "GET", "/v1/secrets", acme["apikey"], alice_token)
    assert [s["service_name"] for s in body["secrets"]] == ["github"] and first not in json.dumps(body)

    # Malformed input is refused with a PostgREST-style body and changes nothing.
    status, body, _ = call(gateway, "PUT", "/v1/secrets/github", acme["apikey"], alice_token, {"value": "x"},
                           headers={"If-Match": "banana"})
    assert status == 400 and body["code"] == "PGW400" and "If-Match" in body["message"]
    status, body, _ = call(gateway, "PUT", "/v1/secrets/github", acme["apikey"], alice_token, {"val": 1})
    assert status == 400 and set(body) >= {"code", "message", "details", "hint"}
    status, body, _ = call(gateway, "GET", "/v1/secrets/github?user_id=not-a-uuid", acme["apikey"], alice_token)
    assert status == 400
    assert call(gateway, "GET", "/v1/secrets/github", acme["apikey"], alice_token)[1]["version"] == 2

    # Bob reaches neither his own view of Alice's secret nor hers by naming her.
    assert call(gateway, "GET", "/v1/secrets/github", acme["apikey"], bob_token)[0] == 404
    status, body, _ = call(gateway, "GET", f"/v1/secrets/github?user_id={alice}", acme["apikey"], bob_token)
    assert status == 403 and second not in json.dumps(body)
    # A service_role caller may, for any user of its tenant; another tenant's key sees nothing.
    status, body, _ = call(gateway, "GET", f"/v1/secrets/github?user_id={alice}", acme["apikey"], service_token)
    assert status == 200 and body["value"] == second
    globex = gateway.tenants["globex"]
    globex_service = jwt(globex["secret"], str(uuid.uuid4()), role="service_role")
    assert call(gateway, "GET", f"/v1/secrets/github?user_id={alice}", globex["apikey"], globex_service)[0] == 404
    # A key without the secrets scopes, a forged token and no token are refused.
    assert call(gateway, "GET", "/v1/secrets/github", acme["data_only_apikey"], alice_token)[0] == 403
    assert call(gateway, "GET", "/v1/secrets/github", acme["apikey"], jwt("x" * 48, alice))[0] == 401
    assert call(gateway, "GET", "/v1/secrets/github", acme["apikey"])[0] == 401

    assert call(gateway, "DELETE", "/v1/secrets/github", acme["apikey"], alice_token)[0] == 200
    status, body, _ = call(gateway, "GET", "/v1/secrets/github", acme["apikey"], alice_token)
    assert status == 404 and "deleted" in body["message"]
    assert call(gateway, "POST", "/v1/secrets/github/undelete", acme["apikey"], alice_token)[0] == 200
    status, body, _ = call(gateway, "DELETE", "/v1/secrets/github?destroy=true", acme["apikey"], alice_token)
    assert status == 200 and body["destroyed_versions"] == [1, 2]

    scrape = urllib.request.Request(gateway.url + "/metrics", headers={"Authorization": "Bearer " + gateway.metrics_token})
    with urllib.request.urlopen(scrape) as response:
        metrics = response.read().decode()
    with open(gateway.log) as log:
        logged = log.read()
    audit = subprocess.run(
        ["psql", "-X", "-A", "-t", gateway.database_url, "-c", "SELECT row_to_json(e) FROM public.audit_events e"],
        check=True, capture_output=True, text=True).stdout
    assert "secret.read" in audit and "secret.write" in audit and '"denied"' in audit
    assert "/v1/secrets" in logged  # the requests were logged, so the search below means something
    for needle in (first, second, alice_token, bob_token, service_token, acme["secret"], acme["apikey"]):
        for name, text in (("log", logged), ("audit rows", audit), ("metrics", metrics)):
            assert needle not in text, f"a secret value or credential appears in the {name}"
