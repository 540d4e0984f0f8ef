"""Authlib (PyPI), nobody here wrote it, as a second token-exchange client.

Its requests ``OAuth2Session`` authenticates with client_secret_basic and
asks for a task credential with the RFC 8693 token-exchange grant; every
DPoP proof (RFC 9449) is made with Authlib's own JOSE (an EC P-256 key from
``JsonWebKey.generate_key``, signed by ``JsonWebToken``). The task's JWT is
then used at a gate that requires DPoP nonces, with fresh proofs.

Usage: python task_authlib.py ISSUER CLIENT_ID CLIENT_SECRET GATE_URL
Prints one JSON line per step ({"step": ..., ...}).
"""

import base64
import hashlib
import json
import sys
import time
import uuid
import warnings

# authlib.jose warns that joserfc replaces it; it is what this test drives.
warnings.simplefilter("ignore")

from authlib.integrations.requests_client import OAuth2Session  # noqa: E402
from authlib.jose import JsonWebKey, JsonWebToken  # noqa: E402
from authlib.oauth2.client import DEFAULT_HEADERS  # noqa: E402

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"

issuer, client_id, client_secret, gate_url = sys.argv[1:5]
key = JsonWebKey.generate_key("EC", "P-256", is_private=True)
public = key.as_dict(is_private=False)
signer = JsonWebToken(["ES256"])


def report(step, **fields):
    print(json.dumps({"step": step, **fields}), flush=True)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def proof(method, url, nonce=None, access_token=None):
    """A DPoP proof JWT made by Authlib."""
    claims = {"jti": uuid.uuid4().hex, "htm": method, "htu": url, "iat": int(time.time())}
    if nonce:
        claims["nonce"] = nonce
    if access_token:
        claims["ath"] = b64url(hashlib.sha256(access_token.encode()).digest())
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": public}
    return signer.encode(header, claims, key).decode()


def claims_of(jwt):
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


session = OAuth2Session(
    client_id,
    client_secret,
    token_endpoint_auth_method="client_secret_basic",
    scope="notes.read",
)
metadata = session.get(f"{issuer}/.well-known/oauth-authorization-server", withhold_token=True).json()
token_endpoint = metadata["token_endpoint"]

# Passing headers replaces Authlib's defaults (the form content type), so keep them.
token = session.fetch_token(
    token_endpoint,
    grant_type=TOKEN_EXCHANGE,
    resource=gate_url,
    task_description="read the notes for a summary",
    headers={**DEFAULT_HEADERS, "DPoP": proof("POST", token_endpoint)},
)
access_token = token["access_token"]
claims = claims_of(access_token)
report(
    "exchange",
    token_type=token.get("token_type"),
    issued_token_type=token.get("issued_token_type"),
    scope=token.get("scope"),
    task_id=token.get("task_id"),
    task_token_prefix=str(token.get("task_token"))[:5],
    jwt_cnf_jkt=(claims.get("cnf") or {}).get("jkt"),
    jwt_task=claims.get("task"),
    key_jkt=key.thumbprint(),
)

# At the gate: a proof without a nonce, then a fresh one with the gate's nonce.
url = f"{gate_url}/notes/today"


def call(nonce=None):
    response = session.get(
        url,
        withhold_token=True,
        headers={"Authorization": f"DPoP {access_token}", "DPoP": proof("GET", url, nonce, access_token)},
    )
    seen = {
        "status": response.status_code,
        "www_authenticate": response.headers.get("WWW-Authenticate"),
        "dpop_nonce": response.headers.get("DPoP-Nonce"),
    }
    try:
        seen["body"] = response.json()
    except ValueError:
        seen["body"] = response.text
    return seen


first = call()
report("gate_without_nonce", **first)
report("gate_with_nonce", **call(first["dpop_nonce"]))
