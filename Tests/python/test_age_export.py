"""A data subject opens their encrypted export with the standard age tool (Debian package `age`),
and privacyctl export-decrypt opens a file the age tool encrypted: the archive format is age's,
not ours. Drives a running gateway (conftest) and the real `age` binary through a terminal, since
age reads passphrases only from one.
"""
import io
import json
import os
import pty
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import uuid
import zipfile

from conftest import BIN, jwt


def call(gateway, method, path, apikey, token=None, headers=None):
    request = urllib.request.Request(gateway.url + path, method=method, data=b"" if method == "POST" else None)
    request.add_header("apikey", apikey)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read()


def with_terminal(argv, answers):
    """Runs argv with a terminal as its controlling tty, typing each answer after a prompt."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    transcript = b""
    pending = list(answers)
    while True:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        transcript += chunk
        if pending and transcript.lower().rstrip().endswith(b":"):
            os.write(fd, pending.pop(0).encode() + b"\n")
            transcript += b"\n"
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), transcript.decode(errors="replace")


def download_link(gateway, tenant, subject):
    """Files an export for the subject and waits for the gateway's worker; its single-use link."""
    token = jwt(tenant["secret"], subject)
    status, body = call(gateway, "POST", "/v1/privacy/exports", tenant["all_scopes_apikey"], token)
    assert status == 202
    export_id = json.loads(body)["request"]["id"]
    deadline = time.monotonic() + 60
    while True:
        status, body = call(gateway, "GET", f"/v1/privacy/exports/{export_id}", tenant["all_scopes_apikey"], token)
        document = json.loads(body)
        if document.get("download"):
            break
        assert document["request"]["status"] not in ("failed", "denied"), document
        assert time.monotonic() < deadline, f"the export did not complete: {document}"
        time.sleep(0.5)
    return document["download"]["url"]


def test_a_downloaded_export_opens_with_age_and_the_passphrase_only(gateway):
    tenant = gateway.tenants["acme"]
    status, archive = call(gateway, "GET", download_link(gateway, tenant, str(uuid.uuid4())), tenant["all_scopes_apikey"],
                           headers={"X-Export-Passphrase": "correct horse battery"})
    assert status == 200
    assert archive.startswith(b"age-encryption.org/v1\n-> scrypt ")
    with tempfile.TemporaryDirectory() as directory:
        encrypted = os.path.join(directory, "export.tar.age")
        open(encrypted, "wb").write(archive)
        wrong, transcript = with_terminal(["age", "-d", "-o", os.path.join(directory, "wrong.tar"), encrypted], ["not it"])
        assert wrong != 0, transcript
        code, transcript = with_terminal(["age", "-d", "-o", os.path.join(directory, "export.tar"), encrypted],
                                         ["correct horse battery"])
        assert code == 0, transcript
        with tarfile.open(os.path.join(directory, "export.tar")) as tar:
            names = tar.getnames()
            assert "manifest.json" in names
            manifest = json.load(tar.extractfile("manifest.json"))
            assert manifest["files"], manifest


def test_an_export_downloaded_as_zip_opens_with_standard_zip_readers(gateway):
    tenant = gateway.tenants["acme"]
    status, archive = call(gateway, "GET", download_link(gateway, tenant, str(uuid.uuid4())) + "&format=zip", tenant["all_scopes_apikey"])
    assert status == 200
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "export.zip")
        open(path, "wb").write(archive)
        with zipfile.ZipFile(path) as archive_file:
            assert archive_file.testzip() is None  # every entry's CRC-32 checks
            names = archive_file.namelist()
            assert "manifest.json" in names and "index.html" in names
            manifest = json.loads(archive_file.read("manifest.json"))
            for entry in manifest["files"]:
                assert archive_file.getinfo(entry["name"]).file_size == entry["bytes"]
        tested = subprocess.run(["unzip", "-t", path], capture_output=True, text=True)
        assert tested.returncode == 0 and "No errors detected" in tested.stdout, tested.stdout + tested.stderr


def test_an_unknown_download_format_is_refused_without_spending_the_link(gateway):
    tenant = gateway.tenants["acme"]
    link = download_link(gateway, tenant, str(uuid.uuid4()))
    try:
        call(gateway, "GET", link + "&format=rar", tenant["all_scopes_apikey"])
        raise AssertionError("format=rar was accepted")
    except urllib.error.HTTPError as error:
        assert error.code == 400 and b"format must be tar or zip" in error.read()
    status, archive = call(gateway, "GET", link, tenant["all_scopes_apikey"])
    assert status == 200 and tarfile.is_tarfile(io.BytesIO(archive))


def test_export_decrypt_opens_a_file_the_age_tool_encrypted():
    with tempfile.TemporaryDirectory() as directory:
        plain = os.path.join(directory, "plain.bin")
        payload = os.urandom(3 * 65536 + 17)  # several chunks and a short last one
        open(plain, "wb").write(payload)
        encrypted = os.path.join(directory, "plain.bin.age")
        code, transcript = with_terminal(["age", "-p", "-o", encrypted, plain], ["a passphrase of ours", "a passphrase of ours"])
        assert code == 0, transcript
        passphrase_file = os.path.join(directory, "pass.txt")
        open(passphrase_file, "w").write("a passphrase of ours\n")
        out = os.path.join(directory, "out.bin")
        result = subprocess.run([f"{BIN}/privacyctl", "export-decrypt", "--in", encrypted, "--out", out,
                                 "--passphrase-file", passphrase_file], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert open(out, "rb").read() == payload
        open(passphrase_file, "w").write("another passphrase\n")
        refused = subprocess.run([f"{BIN}/privacyctl", "export-decrypt", "--in", encrypted, "--out", out + "2",
                                  "--passphrase-file", passphrase_file], capture_output=True, text=True)
        assert refused.returncode == 1 and "wrong passphrase" in refused.stderr
        assert not os.path.exists(out + "2")
