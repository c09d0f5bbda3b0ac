"""Shared by the real-client tests: a running privacy-gateway process on its own database.

Needs TEST_DATABASE_URL (the throwaway cluster scripts/test starts) and the built executables
in BIN_DIR. One gateway serves the whole session; its log (stderr) is kept for the tests that
check what it wrote.
"""
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
import hs256_jwt  # noqa: E402

BIN = os.environ["BIN_DIR"]
OWNER_URL = os.environ["TEST_DATABASE_URL"]


@dataclass
class Gateway:
    url: str
    tenants: dict
    log: str
    database_url: str
    signing_key_file: str = ""
    # A witness the gateway declares (PRIVACY_AUDIT_WITNESS_KEYS): its seed file, name and public key
    # (hex; empty without the cryptography package, and then no witness is declared).
    witness_key_file: str = ""
    witness_name: str = "auditor.example/w1"
    witness_public: str = ""
    # /metrics answers only "Authorization: Bearer <metrics_token>" (GATEWAY_METRICS_TOKEN).
    metrics_token: str = ""


def run(*args, env):
    return subprocess.run(args, env=env, check=True, capture_output=True, text=True).stdout


def jwt(secret, sub, role="authenticated", claims=None):
    return hs256_jwt.mint(secret, sub, role, claims=claims)


@pytest.fixture(scope="session")
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
    # The gateway stores cosignatures only from declared witnesses: declare one, as an operator would.
    witness_key_file = os.path.join(work, "witness.key")
    run(f"{BIN}/privacyctl", "keys", "generate", "--out", witness_key_file, env=env)
    witness_public = ""
    try:
        import base64
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        with open(witness_key_file) as file:
            seed = base64.b64decode(file.read().strip())
        witness_public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw().hex()
    except ImportError:
        pass
    tenants = {}
    for name in ("acme", "globex"):
        secret = secrets.token_urlsafe(48)  # may start with "-": passed as --jwt-secret=… below
        tenant = json.loads(run(f"{BIN}/privacyctl", "tenant", "create", "--name", name, f"--jwt-secret={secret}", "--json", env=env))
        key = json.loads(run(f"{BIN}/privacyctl", "servicekey", "create", "--tenant", tenant["id"],
                             "--scope", "data:read", "--scope", "data:write", "--scope", "secrets:read",
                             "--scope", "secrets:write", "--json", env=env))
        data_only = json.loads(run(f"{BIN}/privacyctl", "servicekey", "create", "--tenant", tenant["id"],
                                   "--scope", "data:read", "--json", env=env))
        every_v1_scope = [option for scope in ("data:read", "data:write", "secrets:read", "secrets:write", "privacy:export",
                                               "privacy:erase", "audit:read") for option in ("--scope", scope)]
        all_scopes = json.loads(run(f"{BIN}/privacyctl", "servicekey", "create", "--tenant", tenant["id"], *every_v1_scope,
                                    "--json", env=env))
        tenants[name] = {"id": tenant["id"], "secret": secret, "apikey": key["key"], "data_only_apikey": data_only["key"],
                         "all_scopes_apikey": all_scopes["key"]}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    user, host_port = base.split("@", 1)
    # As in production: the gateway gets its own login, never the owner's URL.
    serve_env = {k: v for k, v in env.items() if k != "DATABASE_URL"}
    serve_env.update(GATEWAY_DATABASE_URL=f"postgresql://privacy_gateway@{host_port}/{database}", PORT=str(port))
    metrics_token = secrets.token_hex(32)
    serve_env["GATEWAY_METRICS_TOKEN"] = metrics_token
    if witness_public:
        serve_env["PRIVACY_AUDIT_WITNESS_KEYS"] = f"{Gateway.witness_name}+{witness_public}"
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
    yield Gateway(url=url, tenants=tenants, log=os.path.join(work, "gateway.log"), database_url=env["DATABASE_URL"],
                  signing_key_file=env["PRIVACY_SIGNING_KEY_FILE"], witness_key_file=witness_key_file,
                  witness_public=witness_public, metrics_token=metrics_token)
    # SIGTERM drains and exits 0 promptly, background services (audit checkpoints) included.
    process.terminate()
    assert process.wait(timeout=10) == 0, "gateway did not shut down cleanly"
    subprocess.run(["psql", "-X", "-q", OWNER_URL, "-c", f"DROP DATABASE {database} WITH (FORCE)"], check=True)


