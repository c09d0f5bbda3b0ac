"""Drives a running privacy-gateway with postgrest-py, the client supabase-py uses.

Run by scripts/test after `swift test`; needs TEST_DATABASE_URL (the throwaway cluster) and the
built executables in BIN_DIR. Two users of one tenant and one of another each see exactly what
their policies allow.
"""
import base64
import hashlib
import hmac
import json
import os
import secrets
import socket
import subprocess
import tempfile
import time
import urllib.request
import uuid

import pytest
from postgrest import SyncPostgrestClient
from postgrest.exceptions import APIError

BIN = os.environ["BIN_DIR"]
OWNER_URL = os.environ["TEST_DATABASE_URL"]


def run(*args, env):
    return subprocess.run(args, env=env, check=True, capture_output=True, text=True).stdout


def jwt(secret, sub, role="authenticated"):
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).rstrip(b"=").decode()

    now = int(time.time())
    signing_input = part({"alg": "HS256", "typ": "JWT"}) + "." + part({"sub": sub, "role": role, "iat": now, "exp": now + 3600})
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def gateway():
    database = "pyclient_" + secrets.token_hex(6)
    subprocess.run(["psql", "-X", "-q", OWNER_URL, "-c", f"CREATE DATABASE {database}"], check=True)
    base = OWNER_URL.rsplit("/", 1)[0]
    work = tempfile.mkdtemp()
    env = dict(os.environ, DATABASE_URL=f"{base}/{database}", PRIVACY_ROOT_KEY_FILE=os.path.join(work, "root.key"),
               PRIVACY_SIGNING_KEY_FILE=os.path.join(work, "signing.key"))
    run(f"{BIN}/privacyctl", "keys", "generate", "--out", env["PRIVACY_ROOT_KEY_FILE"], env=env)
    run(f"{BIN}/privacyctl", "keys", "generate", "--out", env["PRIVACY_SIGNING_KEY_FILE"], env=env)
    run(f"{BIN}/privacyctl", "migrate", env=env)
    tenants = {}
    for name in ("acme", "globex"):
        secret = secrets.token_urlsafe(48)
        tenant = json.loads(run(f"{BIN}/privacyctl", "tenant", "create", "--name", name, "--jwt-secret", secret, "--json", env=env))
        key = json.loads(run(f"{BIN}/privacyctl", "servicekey", "create", "--tenant", tenant["id"],
                             "--scope", "data:read", "--scope", "data:write", "--json", env=env))
        tenants[name] = {"secret": secret, "apikey": key["key"]}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    user, host_port = base.split("@", 1)
    serve_env = dict(env, GATEWAY_DATABASE_URL=f"postgresql://privacy_gateway@{host_port}/{database}", PORT=str(port))
    process = subprocess.Popen([f"{BIN}/privacy-gateway", "serve"], env=serve_env,
                               stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "gateway.log"), "w"))
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if urllib.request.urlopen(url + "/ready").status == 200:
                break
        except Exception:
            time.sleep(0.1)
    else:
        process.terminate()
        raise RuntimeError("gateway did not become ready: " + open(os.path.join(work, "gateway.log")).read())
    yield url, tenants
    # SIGTERM drains and exits 0 promptly, background services (audit checkpoints) included.
    process.terminate()
    assert process.wait(timeout=10) == 0, "gateway did not shut down cleanly"
    subprocess.run(["psql", "-X", "-q", OWNER_URL, "-c", f"DROP DATABASE {database} WITH (FORCE)"], check=True)


def client(gateway, tenant, user):
    url, tenants = gateway
    headers = {"apikey": tenants[tenant]["apikey"]}
    if user:
        headers["Authorization"] = "Bearer " + jwt(tenants[tenant]["secret"], user)
    return SyncPostgrestClient(url + "/rest/v1", headers=headers)


ALICE, BOB, CAROL = (str(uuid.uuid4()) for _ in range(3))


def test_two_users_and_another_tenant_see_exactly_what_policies_allow(gateway):
    alice = client(gateway, "acme", ALICE)
    bob = client(gateway, "acme", BOB)
    carol = client(gateway, "globex", CAROL)

    inserted = alice.from_("projects").insert([
        {"name": "alpha", "type": "website", "user_id": ALICE, "is_public": False},
        {"name": "beta", "type": "website", "user_id": ALICE, "is_public": True},
        {"name": "gamma", "type": "landing-page", "user_id": ALICE, "is_public": False},
    ]).execute()
    assert [row["name"] for row in inserted.data] == ["alpha", "beta", "gamma"]

    mine = alice.from_("projects").select("name", count="exact").order("name", desc=True).range(0, 1).execute()
    assert [row["name"] for row in mine.data] == ["gamma", "beta"]
    assert mine.count == 3

    filtered = alice.from_("projects").select("name").eq("type", "website").in_("name", ["alpha", "gamma"]).execute()
    assert [row["name"] for row in filtered.data] == ["alpha"]

    single = alice.from_("projects").select("name,is_public").eq("name", "beta").single().execute()
    assert single.data == {"name": "beta", "is_public": True}

    # Bob, same tenant: only the public project. Carol, another tenant: nothing.
    assert [row["name"] for row in bob.from_("projects").select("name").execute().data] == ["beta"]
    assert carol.from_("projects").select("*").execute().data == []

    updated = alice.from_("projects").update({"name": "alpha-2"}).eq("name", "alpha").execute()
    assert [row["name"] for row in updated.data] == ["alpha-2"]

    with pytest.raises(APIError) as denied:
        bob.from_("projects").update({"name": "stolen"}).eq("name", "beta").execute()
    assert denied.value.code == "42501"

    deleted = alice.from_("projects").delete().eq("name", "gamma").execute()
    assert [row["name"] for row in deleted.data] == ["gamma"]
    remaining = alice.from_("projects").select("name").order("name").execute()
    assert [row["name"] for row in remaining.data] == ["alpha-2", "beta"]


def test_bad_requests_get_postgrest_errors(gateway):
    alice = client(gateway, "acme", ALICE)
    with pytest.raises(APIError) as unknown:
        alice.from_("no_such_table").select("*").execute()
    assert unknown.value.code == "PGRST205"
    with pytest.raises(APIError) as column:
        alice.from_("projects").select("secret_column").execute()
    assert column.value.code == "42703"
