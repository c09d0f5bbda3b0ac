"""HS256 user JWTs for tests and benchmarks: the one place outside Swift that mints them.

As a module: hs256_jwt.mint(secret, sub, role="authenticated", ttl=3600, claims=None) (claims: extra ones,
e.g. an anonymous visitor's session_id).
As a command: python3 scripts/hs256_jwt.py SECRET SUB [ROLE] [TTL_SECONDS]
"""
import base64
import hashlib
import hmac
import json
import sys
import time


def _part(obj):
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).rstrip(b"=").decode()


def mint(secret, sub, role="authenticated", ttl=3600, claims=None):
    now = int(time.time())
    payload = {**(claims or {}), "sub": sub, "role": role, "iat": now, "exp": now + ttl}
    signing_input = _part({"alg": "HS256", "typ": "JWT"}) + "." + _part(payload)
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


if __name__ == "__main__":
    arguments = sys.argv[1:]
    print(mint(arguments[0], arguments[1], arguments[2] if len(arguments) > 2 else "authenticated",
               int(arguments[3]) if len(arguments) > 3 else 86400))
