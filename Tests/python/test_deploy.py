"""The deployment files in deploy/ stay correct: the systemd unit verifies and stays hardened, and
the Dockerfile ships what the built executables need, as a non-root user, without keys.

Run by scripts/test (needs BIN_DIR, the built executables; systemd-analyze and readelf from Debian).
"""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ["BIN_DIR"]
UNIT = os.path.join(REPO, "deploy", "privacy-gateway.service")
DOCKERFILE = os.path.join(REPO, "deploy", "Dockerfile")


def unit_pointing_at_built_binary(directory):
    """The unit with ExecStart at the executable just built (verify checks that it exists)."""
    text = open(UNIT).read().replace("/usr/local/bin/privacy-gateway", os.path.join(BIN, "privacy-gateway"))
    path = os.path.join(directory, "privacy-gateway.service")
    with open(path, "w") as unit:
        unit.write(text)
    return path


def test_systemd_unit_verifies_without_a_single_warning():
    with tempfile.TemporaryDirectory() as directory:
        result = subprocess.run(["systemd-analyze", "verify", unit_pointing_at_built_binary(directory)],
                                capture_output=True, text=True)
    # Unknown or misspelt keys are only warnings (exit 0): any output at all fails the test.
    assert result.returncode == 0 and result.stderr.strip() == "" and result.stdout.strip() == "", result.stderr


def test_systemd_unit_verification_catches_a_misspelt_hardening_key():
    """The check above cannot pass vacuously: a misspelt directive is reported."""
    with tempfile.TemporaryDirectory() as directory:
        path = unit_pointing_at_built_binary(directory)
        text = open(path).read().replace("NoNewPrivileges=yes", "NoNewPrivilegs=yes")
        open(path, "w").write(text)
        result = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True)
    assert "Unknown key" in result.stderr


def test_systemd_unit_exposure_stays_low():
    """systemd's own score of the sandbox (0 = locked down, 10 = unprotected); 1.4 when written."""
    with tempfile.TemporaryDirectory() as directory:
        result = subprocess.run(["systemd-analyze", "security", "--offline=true", "--threshold=20",
                                 unit_pointing_at_built_binary(directory)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:]
    for directive in ["DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=\n",
                      "LoadCredential=root.key:", "LoadCredential=signing.key:", "PRIVACY_ROOT_KEY_FILE=%d/root.key"]:
        assert directive in open(UNIT).read(), directive


def dockerfile_stages():
    """[(name, [(instruction, arguments)])], continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", open(DOCKERFILE).read())
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, arguments = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            match = re.match(r"(\S+)(?:\s+AS\s+(\S+))?$", arguments.strip(), re.IGNORECASE)
            assert match, f"FROM line not understood: {line}"
            stages.append((match.group(2), []))
        assert stages, f"instruction before FROM: {line}"
        stages[-1][1].append((instruction, arguments.strip()))
    return stages


def test_dockerfile_is_multistage_and_runs_as_a_numeric_non_root_user():
    stages = dockerfile_stages()
    assert len(stages) >= 2, "build and runtime stages"
    names = [name for name, _ in stages[:-1]]
    runtime = stages[-1][1]
    users = [arguments for instruction, arguments in runtime if instruction == "USER"]
    assert users, "the runtime stage must set USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER {users[-1]}: a numeric, non-root uid (Kubernetes' runAsNonRoot)"
    copies = [arguments for instruction, arguments in runtime if instruction == "COPY"]
    for arguments in copies:
        source_stage = re.search(r"--from=(\S+)", arguments)
        if source_stage:
            assert source_stage.group(1) in names, f"COPY from an unknown stage: {arguments}"
        else:
            for source in arguments.split()[:-1]:
                assert os.path.exists(os.path.join(REPO, source)), f"COPY source {source} is not in the repository"
    shipped = " ".join(copies)
    for needed in ["privacy-gateway", "privacyctl", "migrations", "policies"]:
        assert needed in shipped, f"the image must ship {needed}"
    env = " ".join(arguments for instruction, arguments in runtime if instruction == "ENV")
    assert "HOST=0.0.0.0" in env, "in a container the listener must not be bound to loopback"


def test_dockerfile_never_copies_keys_or_build_state():
    text = open(DOCKERFILE).read()
    ignored = open(os.path.join(REPO, ".dockerignore")).read().split()
    for pattern in [".build*/", ".data/", "*.key", ".venv/", "Package.resolved"]:
        assert pattern in ignored, f".dockerignore must exclude {pattern}"
    assert not re.search(r"(COPY|ADD)[^\n]*\.(key|pem)\b", text), "key files are mounted at run time, never baked in"
    assert "ADD " not in text, "COPY only (ADD fetches URLs and unpacks archives)"


def test_dockerfile_runtime_stage_installs_every_library_the_executables_link():
    """Each shared library the executables need (besides Swift's, linked statically in the image) comes
    from a Debian package that the runtime stage installs or that debian:bookworm-slim already has."""
    runtime = dockerfile_stages()[-1][1]
    installs = " ".join(arguments for instruction, arguments in runtime if instruction == "RUN")
    installed = set(re.findall(r"\b(lib[\w.+-]+|ca-certificates|tzdata)\b", installs))
    base = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g"}
    readelf = shutil.which("readelf") or "/usr/bin/readelf"
    for executable in ["privacy-gateway", "privacyctl"]:
        dynamic = subprocess.run([readelf, "-d", os.path.join(BIN, executable)], capture_output=True, text=True, check=True)
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dynamic.stdout)
        assert needed, dynamic.stdout
        for library in needed:
            if re.match(r"lib(swift|Foundation|dispatch|BlocksRuntime|_Foundation)", library):
                continue
            found = subprocess.run(["dpkg", "-S", f"*/{library}"], capture_output=True, text=True)
            assert found.returncode == 0, f"{executable} needs {library}, which no Debian package provides here"
            packages = {line.split(":")[0] for line in found.stdout.splitlines()}
            assert packages & (installed | base), f"{executable} needs {library} ({packages}); install it in the runtime stage"
