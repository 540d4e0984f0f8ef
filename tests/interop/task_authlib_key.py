"""Authlib (PyPI), nobody here wrote it, authenticating with private_key_jwt.

The script registers an agent's client through the admin API with the
public half of an RSA key made by joserfc (Authlib's JOSE), then lets
Authlib's ``OAuth2Session`` with its ``PrivateKeyJWT`` client authentication
(RFC 7523 §2.2, RS256 by default, a fresh ``jti`` each time) get a
client-credentials token and a DPoP-bound task credential by token exchange.
Last, one assertion signed by Authlib's ``private_key_jwt_sign`` is sent
twice: the second use must be refused.

Usage: python task_authlib_key.py ISSUER ADMIN_TOKEN PRINCIPAL RESOURCE
Prints one JSON line per step ({"step": ..., ...}).
"""

import json
import sys
import time
import uuid
import warnings

warnings.simplefilter("ignore")

import requests  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session  # noqa: E402
from authlib.jose import JsonWebKey, JsonWebToken  # noqa: E402
from authlib.oauth2.client import DEFAULT_HEADERS  # noqa: E402
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign  # noqa: E402
from joserfc.jwk import RSAKey  # noqa: E402

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

issuer, admin_token, principal, resource = sys.argv[1:5]


def report(step, **fields):
    print(json.dumps({"step": step, **fields}), flush=True)


client_key = RSAKey.generate_key(2048, private=True)
registered = requests.post(
    f"{issuer}/v1/clients",
    headers={"Authorization": f"Bearer {admin_token}"},
    json={
        "client_name": "authlib key agent",
        "grant_types": ["client_credentials"],
        "scope": "notes.read",
        "principal": principal,
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [client_key.as_dict(private=False)]},
    },
).json()
client_id = registered["client_id"]
report("registered", client_id=client_id, has_secret="client_secret" in registered)

metadata = requests.get(f"{issuer}/.well-known/oauth-authorization-server").json()
token_endpoint = metadata["token_endpoint"]
session = OAuth2Session(
    client_id, client_key, token_endpoint_auth_method="private_key_jwt", scope="notes.read"
)
session.register_client_auth_method(PrivateKeyJWT(token_endpoint))
token = session.fetch_token(token_endpoint, grant_type="client_credentials", resource=resource)
report("client_credentials", token_type=token.get("token_type"), access_token=token["access_token"])

# A task credential by token exchange, with a DPoP proof made by Authlib's JOSE.
dpop_key = JsonWebKey.generate_key("EC", "P-256", is_private=True)
claims = {"jti": uuid.uuid4().hex, "htm": "POST", "htu": token_endpoint, "iat": int(time.time())}
header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": dpop_key.as_dict(is_private=False)}
proof = JsonWebToken(["ES256"]).encode(header, claims, dpop_key).decode()
task = session.fetch_token(
    token_endpoint,
    grant_type=TOKEN_EXCHANGE,
    resource=resource,
    task_description="read the notes for a summary",
    headers={**DEFAULT_HEADERS, "DPoP": proof},
)
report(
    "exchange",
    token_type=task.get("token_type"),
    task_id=task.get("task_id"),
    access_token=task["access_token"],
    dpop_jkt=dpop_key.thumbprint(),
)

# The same assertion twice.
assertion = private_key_jwt_sign(client_key, client_id, token_endpoint)
form = {
    "grant_type": "client_credentials",
    "scope": "notes.read",
    "resource": resource,
    "client_assertion_type": ASSERTION_TYPE,
    "client_assertion": assertion,
}
first = requests.post(token_endpoint, data=form)
second = requests.post(token_endpoint, data=form)
report("replay", first=first.status_code, second=second.status_code, error=second.json().get("error"))
