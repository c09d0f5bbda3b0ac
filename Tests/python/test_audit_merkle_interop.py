"""Issue 16, interoperability: the audit log's Merkle roots and proofs, as the gateway and privacyctl
produce them, checked by an independent RFC 9162 implementation written here from the RFC's
definitions (section 2.1) -- no Swift code is called to compute anything.

The leaves are the entries' chain hashes as exported (leaf input = the 32-byte entry hash).
"""
import base64
import hashlib
import json
import os
import subprocess
import tempfile
import urllib.request
import uuid

from conftest import BIN, jwt


# --- RFC 9162 section 2.1, transcribed -------------------------------------------------------

def sha256(data):
    return hashlib.sha256(data).digest()


def mth(leaves):
    """MTH(D[n]) over leaf inputs (section 2.1.1)."""
    n = len(leaves)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return sha256(b"\x00" + leaves[0])
    k = largest_power_of_two_smaller_than(n)
    return sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def largest_power_of_two_smaller_than(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def path(m, leaves):
    """PATH(m, D[n]) (section 2.1.3.1)."""
    n = len(leaves)
    if n == 1:
        return []
    k = largest_power_of_two_smaller_than(n)
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


def subproof(m, leaves, b):
    """SUBPROOF(m, D[n], b) (section 2.1.4.1)."""
    n = len(leaves)
    if m == n:
        return [] if b else [mth(leaves)]
    k = largest_power_of_two_smaller_than(n)
    if m <= k:
        return subproof(m, leaves[:k], b) + [mth(leaves[k:])]
    return subproof(m - k, leaves[k:], False) + [mth(leaves[:k])]


def consistency(m, leaves):
    """PROOF(m, D[n]) for 0 < m < n."""
    return subproof(m, leaves, True)


# --- helpers ----------------------------------------------------------------------------------

def privacyctl(gateway, *args):
    env = dict(os.environ, DATABASE_URL=gateway.database_url, PRIVACY_SIGNING_KEY_FILE=gateway.signing_key_file)
    return subprocess.run([f"{BIN}/privacyctl", *args], env=env, check=True, capture_output=True, text=True).stdout


def write_secrets(gateway, tenant, count):
    token = jwt(tenant["secret"], str(uuid.uuid4()))
    for index in range(count):
        request = urllib.request.Request(
            f"{gateway.url}/v1/secrets/interop-{uuid.uuid4().hex[:8]}", method="PUT",
            data=json.dumps({"value": f"v{index}"}).encode())
        request.add_header("apikey", tenant["apikey"])
        request.add_header("Authorization", "Bearer " + token)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request) as response:
            assert response.status == 201


def checkpoint(gateway, tenant):
    signed = json.loads(privacyctl(gateway, "audit", "checkpoint", "--tenant", tenant["id"], "--json"))[0]
    return signed


def exported_entry_hashes(gateway, tenant):
    directory = tempfile.mkdtemp()
    privacyctl(gateway, "audit", "export", "--tenant", tenant["id"], "--out", directory)
    with open(os.path.join(directory, "entries.jsonl")) as lines:
        entries = [json.loads(line) for line in lines if line.strip()]
    assert [entry["seq"] for entry in entries] == list(range(1, len(entries) + 1))
    with open(os.path.join(directory, "keys.json")) as keys:
        public_keys = [bytes.fromhex(key["public_key"]) for key in json.load(keys)]
    return [bytes.fromhex(entry["hash"]) for entry in entries], public_keys


def parse_note(note, origin):
    """A C2SP signed note holding a tlog-checkpoint body: (size, root, [(name, key id, signature)])."""
    text, _, signatures = note.rpartition("\n\n")
    lines = text.split("\n")
    assert lines[0] == origin
    size, root = int(lines[1]), base64.b64decode(lines[2])
    parsed = []
    for line in signatures.strip("\n").split("\n"):
        assert line.startswith("\u2014 ")
        name, blob = line[2:].split(" ")
        blob = base64.b64decode(blob)
        parsed.append((name, blob[:4], blob[4:]))
    return text + "\n", size, root, parsed


def test_roots_and_proofs_match_an_independent_rfc9162_implementation(gateway):
    tenant = gateway.tenants["globex"]
    origin = "privacy-gateway/audit/" + tenant["id"]
    write_secrets(gateway, tenant, 11)
    first = checkpoint(gateway, tenant)
    write_secrets(gateway, tenant, 6)
    second = checkpoint(gateway, tenant)
    assert first["seq"] < second["seq"]
    hashes, public_keys = exported_entry_hashes(gateway, tenant)

    for signed in (first, second):
        size = signed["seq"]
        # The root the gateway signed is the RFC's MTH over the entry hashes 1..size.
        assert bytes.fromhex(signed["root_hash"]) == mth(hashes[:size])
        text, note_size, note_root, signatures = parse_note(signed["note"], origin)
        assert note_size == size and note_root == mth(hashes[:size])
        # signed-note key id: SHA-256(name || 0x0A || 0x01 || public key)[:4], under the log's origin.
        name, key_id, signature = signatures[0]
        assert name == origin and len(signature) == 64
        assert any(sha256(origin.encode() + b"\n\x01" + key)[:4] == key_id for key in public_keys)
        try:
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        except ImportError:
            continue
        key = next(key for key in public_keys if sha256(origin.encode() + b"\n\x01" + key)[:4] == key_id)
        Ed25519PublicKey.from_public_bytes(key).verify(signature, text.encode())

    # Inclusion: every entry in the first checkpoint, and every entry in the second, from privacyctl.
    work = tempfile.mkdtemp()
    for signed in (first, second):
        size = signed["seq"]
        for seq in range(1, size + 1):
            out = os.path.join(work, f"inclusion-{size}-{seq}.json")
            privacyctl(gateway, "audit", "prove", "--tenant", tenant["id"], "--seq", str(seq),
                       "--checkpoint", str(size), "--out", out)
            with open(out) as file:
                proof = json.load(file)
            assert proof["leaf_index"] == seq - 1 and proof["tree_size"] == size
            assert [bytes.fromhex(h) for h in proof["hashes"]] == path(seq - 1, hashes[:size]), f"seq {seq} in {size}"
            assert bytes.fromhex(proof["entry"]["hash"]) == hashes[seq - 1]

    # The HTTP API serves the same proof.
    request = urllib.request.Request(f"{gateway.url}/v1/audit/entries/3/proof?checkpoint={second['seq']}")
    request.add_header("apikey", tenant["all_scopes_apikey"])
    with urllib.request.urlopen(request) as response:
        served = json.load(response)
    assert [bytes.fromhex(h) for h in served["hashes"]] == path(2, hashes[:second["seq"]])

    # Consistency: first -> second, from privacyctl and from the API.
    out = os.path.join(work, "consistency.json")
    privacyctl(gateway, "audit", "prove", "--tenant", tenant["id"], "--from", str(first["seq"]), "--to", str(second["seq"]),
               "--out", out)
    with open(out) as file:
        proof = json.load(file)
    expected = consistency(first["seq"], hashes[:second["seq"]])
    assert [bytes.fromhex(h) for h in proof["hashes"]] == expected
    request = urllib.request.Request(
        f"{gateway.url}/v1/audit/checkpoints/consistency?from={first['seq']}&to={second['seq']}")
    request.add_header("apikey", tenant["all_scopes_apikey"])
    with urllib.request.urlopen(request) as response:
        assert [bytes.fromhex(h) for h in json.load(response)["hashes"]] == expected

    # And privacyctl's offline verifier accepts them with the pinned key only, and refuses a tampered one.
    key_hex = public_keys[0].hex()
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    ok = subprocess.run([f"{BIN}/privacyctl", "audit", "verify-proof", out, "--trusted-key", key_hex],
                        env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr + ok.stdout
    proof["hashes"][0] = "00" * 32
    with open(out, "w") as file:
        json.dump(proof, file)
    bad = subprocess.run([f"{BIN}/privacyctl", "audit", "verify-proof", out, "--trusted-key", key_hex],
                         env=env, capture_output=True, text=True)
    assert bad.returncode == 3 and "does not extend" in (bad.stdout + bad.stderr)


def test_a_witness_cosigns_extensions_and_refuses_a_rollback_or_fork(gateway):
    if not gateway.witness_public:
        import pytest
        pytest.skip("the cryptography package is needed to derive the witness's public key")
    tenant = gateway.tenants["globex"]
    work = tempfile.mkdtemp()
    # The witness the gateway declared (conftest: PRIVACY_AUDIT_WITNESS_KEYS).
    witness_key = gateway.witness_key_file
    witness_public = gateway.witness_public
    log_key = exported_entry_hashes(gateway, tenant)[1][-1].hex()
    state = os.path.join(work, "state")
    name = gateway.witness_name

    def witness(key_file=witness_key, witness_name=name, state=state):
        env = dict(os.environ)
        env.pop("DATABASE_URL", None)
        return subprocess.run(
            [f"{BIN}/privacyctl", "audit", "witness", "--log", gateway.url, "--apikey", tenant["all_scopes_apikey"],
             "--log-key", log_key, "--state", state, "--witness-key-file", key_file, "--name", witness_name, "--json"],
            env=env, capture_output=True, text=True)

    # A witness the operator did not declare: it cosigns locally, but the gateway refuses to store it (403).
    stranger_key = os.path.join(work, "stranger.key")
    privacyctl(gateway, "keys", "generate", "--out", stranger_key)
    write_secrets(gateway, tenant, 1)
    checkpoint(gateway, tenant)
    stranger = witness(stranger_key, "self.made/w9", os.path.join(work, "stranger-state"))
    assert stranger.returncode != 0 and "not declared" in stranger.stdout + stranger.stderr, stranger.stdout + stranger.stderr

    write_secrets(gateway, tenant, 3)
    first = checkpoint(gateway, tenant)
    run = witness()
    assert run.returncode == 0 and json.loads(run.stdout)["size"] == first["seq"], run.stdout + run.stderr
    write_secrets(gateway, tenant, 4)
    second = checkpoint(gateway, tenant)
    run = witness()
    assert run.returncode == 0 and json.loads(run.stdout)["size"] == second["seq"], run.stdout + run.stderr
    assert "consistent with the cosigned size" in json.loads(run.stdout)["message"]

    # The gateway stored the cosignature; verify --require-cosignatures counts it.
    verify = ["audit", "verify", "--live", "--tenant", tenant["id"], "--trusted-key", log_key,
              "--witness", f"{name}={witness_public}"]
    privacyctl(gateway, *verify, "--require-cosignatures", "1")
    missing = subprocess.run([f"{BIN}/privacyctl", *verify, "--witness", f"auditor.example/w2={'11' * 32}",
                              "--require-cosignatures", "2"],
                             env=dict(os.environ, DATABASE_URL=gateway.database_url), capture_output=True, text=True)
    assert missing.returncode == 3 and "missing_cosignatures" in missing.stdout + missing.stderr

    # Rollback: the witness remembers a larger tree than the log now shows.
    state_file = os.path.join(state, tenant["id"] + ".json")
    with open(state_file) as file:
        remembered = json.load(file)
    with open(state_file, "w") as file:
        json.dump(dict(remembered, size=remembered["size"] + 100), file)
    run = witness()
    assert run.returncode == 3 and "rollback refused" in run.stdout, run.stdout + run.stderr
    with open(state_file) as file:
        assert json.load(file)["size"] == remembered["size"] + 100  # the state is kept as it was
    # Fork: the same size with another root.
    with open(state_file, "w") as file:
        json.dump(dict(remembered, root_hash="00" * 32), file)
    run = witness()
    assert run.returncode == 3 and "fork refused" in run.stdout, run.stdout + run.stderr
