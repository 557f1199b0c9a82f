"""Label, annotation and Secret data key names shared by the operator, service, webhooks and CLI."""

from __future__ import annotations

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "credop"
MANAGED_SELECTOR = f"{MANAGED_BY}={MANAGED_BY_VALUE}"
KIND_LABEL = "credop.dev/kind"
NAME_LABEL = "credop.dev/name"

# Actions users take by setting an annotation to a new value.
ROTATE = "credop.dev/rotate"
INVALIDATE_TOKENS = "credop.dev/invalidate-tokens"
CONFIRM_DELETE = "credop.dev/confirm-delete"
CREATED_BY = "credop.dev/created-by"

# Annotations credop keeps on the Secrets it writes (never secret values).
KEY_GENERATION = "credop.dev/key-generation"
MINTED_AT = "credop.dev/minted-at"
ROTATION_REQUEST = "credop.dev/rotation-request"
ACCESS_KEY_ID_ANNOTATION = "credop.dev/access-key-id"
CLIENT_ID_ANNOTATION = "credop.dev/client-id"
PREVIOUS_VALID_UNTIL = "credop.dev/previous-valid-until"
SECRET_SOURCE_VERSION = "credop.dev/client-secret-source-version"
GITOPS_ANNOTATIONS = {
    "argocd.argoproj.io/compare-options": "IgnoreExtraneous",
    "argocd.argoproj.io/sync-options": "Prune=false",
}

# credop's own record of each credential: a Secret in credop's namespace, where
# tenants cannot write. Identifiers, generations, grace deadlines and verifiers
# are read back from here only, never from the tenant's Secret.
RECORD_LABEL = "credop.dev/record"
"""On a record Secret: the credential's kind."""
OWNER_UID_LABEL = "credop.dev/owner-uid"
OWNER_ANNOTATION = "credop.dev/owner"
"""On a record Secret: ``<namespace>/<name>`` of the credential."""
SECRET_NAME_ANNOTATION = "credop.dev/secret-name"
IDENTIFIER_ANNOTATION = "credop.dev/identifier"
VERIFIER_KEYS_ANNOTATION = "credop.dev/verifier-keys"
"""On a record Secret: the HMAC key IDs its verifiers name (so unused keys can be retired)."""
RECORD_SELECTOR = RECORD_LABEL


def record_name(owner_uid: str) -> str:
    """The name of a credential's record Secret in credop's namespace."""
    return f"credop-record-{owner_uid}"


# Secret data keys.
ACCESS_KEY_ID = "accessKeyId"
SECRET_KEY = "secretKey"
CLIENT_ID = "clientId"
CLIENT_SECRET = "clientSecret"
VERIFIER = "verifier"
PREVIOUS_VERIFIER = "previousVerifier"
TOKEN_URL = "tokenUrl"
TOKEN_CA = "tokenCA"
"""The credential service's CA certificate (PEM), for clients to trust its TLS."""
ENDPOINT = "endpoint"

SERVICE_ACCOUNT_KEYS = "serviceaccountkeys"
API_CLIENTS = "apiclients"
KEY_POLICIES = "keypolicies"
KIND_OF_PLURAL = {SERVICE_ACCOUNT_KEYS: "ServiceAccountKey", API_CLIENTS: "ApiClient", KEY_POLICIES: "KeyPolicy"}
PLURAL_OF_KIND = {kind: plural for plural, kind in KIND_OF_PLURAL.items()}
