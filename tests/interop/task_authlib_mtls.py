"""Authlib (PyPI), nobody here wrote it, asking for a task over mutual TLS.

Authlib's ``OAuth2Session`` (a requests session) connects with the agent's
TLS client certificate (RFC 8705 ``tls_client_auth``: the client id in the
form, no secret, no DPoP proof) and exchanges for a task credential (RFC
8693). The task is bound to that certificate: its ``lztt_`` token works over
the session's connection and is refused over one without the certificate.

Usage: python task_authlib_mtls.py ISSUER CLIENT_ID CA_PEM CERT_PEM KEY_PEM RESOURCE
Prints one JSON line per step ({"step": ..., ...}).
"""

import json
import sys
import warnings

warnings.simplefilter("ignore")

import requests  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session  # noqa: E402

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
TASK_TOKEN = "urn:laissez:params:oauth:token-type:task_token"

issuer, client_id, ca, cert, key, resource = sys.argv[1:7]


def report(step, **fields):
    print(json.dumps({"step": step, **fields}), flush=True)


session = OAuth2Session(client_id, token_endpoint_auth_method="none", scope="notes.read")
session.cert = (cert, key)
session.verify = ca
# Else requests lets REQUESTS_CA_BUNDLE from the environment replace `verify`.
session.trust_env = False
metadata = session.get(f"{issuer}/.well-known/oauth-authorization-server", withhold_token=True).json()
report(
    "metadata",
    methods=metadata.get("token_endpoint_auth_methods_supported"),
    bound=metadata.get("tls_client_certificate_bound_access_tokens"),
)
token_endpoint = metadata["token_endpoint"]

task = session.fetch_token(
    token_endpoint,
    grant_type=TOKEN_EXCHANGE,
    resource=resource,
    requested_token_type=TASK_TOKEN,
    task_description="read the notes over mTLS",
)
report(
    "exchange",
    token_type=task.get("token_type"),
    issued_token_type=task.get("issued_token_type"),
    task_id=task.get("task_id"),
    prefix=task["access_token"][:5],
)

bearer = {"Authorization": f"Bearer {task['access_token']}"}
with_certificate = session.get(f"{issuer}/v1/whoami", headers=bearer, withhold_token=True)
without = requests.get(f"{issuer}/v1/whoami", headers=bearer, verify=ca)
report(
    "use",
    with_certificate=with_certificate.status_code,
    bound_to=with_certificate.json().get("task", {}).get("bound_to"),
    without_certificate=without.status_code,
)
