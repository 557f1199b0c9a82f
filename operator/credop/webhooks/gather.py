"""What a decision needs besides the request, read from the API server (a consistent read, not a cache).

Only what the operation needs is read: the namespace's KeyPolicies on create
and update, the requester's keys on a key's create, the other ApiClients when
a client ID is new, the referenced Secret when a client secret reference is
new, the namespace on a protected delete. Secret values are never logged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import ValidationError

from credop import names
from credop.api.keypolicy import KeyPolicySpec
from credop.kube.bodies import data_value
from credop.kube.client import Kube, NotFoundError
from credop.webhooks.requests import CREATE, DELETE, AdmissionRequest


@dataclass(frozen=True)
class ClientSecretLookup:
    """What ``spec.clientSecretRef`` points at: whether the requester may read it, whether it exists, its value.

    Nothing is read for a requester who may not read the Secret, so a denial
    cannot tell them whether it exists or what it holds.
    """

    readable: bool
    secret_exists: bool = False
    value: str | None = None


@dataclass(frozen=True)
class Facts:
    policies: Mapping[str, KeyPolicySpec] = field(default_factory=dict)
    """The namespace's valid KeyPolicies by name."""
    owned_keys: frozenset[str] = frozenset()
    """Names of the stored ServiceAccountKeys the requester created in the namespace."""
    admitted_keys: frozenset[str] = frozenset()
    """Names of keys admitted for the requester that the listing does not show yet."""
    client_id_holders: tuple[str, ...] = ()
    """Other ApiClients in the namespace with the requested client ID."""
    client_secret: ClientSecretLookup | None = None
    """The referenced client secret, when the reference is new."""
    namespace_terminating: bool = False
    """The namespace is being deleted (its deletion deletes protected credentials too)."""


async def gather_facts(kube: Kube, request: AdmissionRequest) -> Facts:
    if request.operation == DELETE:
        return Facts(namespace_terminating=await _namespace_terminating(kube, request))
    return Facts(
        policies=await namespace_policies(kube, request.namespace),
        owned_keys=await _owned_keys(kube, request),
        client_id_holders=await _client_id_holders(kube, request),
        client_secret=await _client_secret(kube, request),
    )


async def namespace_policies(kube: Kube, namespace: str) -> dict[str, KeyPolicySpec]:
    policies = {}
    for policy in await kube.list_objects(names.KEY_POLICIES, namespace):
        try:
            policies[policy["metadata"]["name"]] = KeyPolicySpec.model_validate(policy.get("spec") or {})
        except ValidationError:
            continue  # an invalid policy is not in force (its status says why); credentials naming it are refused
    return policies


def effective_client_id(request: AdmissionRequest) -> str:
    return str(request.new_spec.get("clientId") or request.name)


async def _owned_keys(kube: Kube, request: AdmissionRequest) -> frozenset[str]:
    if request.plural != names.SERVICE_ACCOUNT_KEYS or request.operation != CREATE:
        return frozenset()
    return frozenset(
        key["metadata"]["name"]
        for key in await kube.list_objects(names.SERVICE_ACCOUNT_KEYS, request.namespace)
        if (key["metadata"].get("annotations") or {}).get(names.CREATED_BY) == request.requester.user
    )


async def _client_id_holders(kube: Kube, request: AdmissionRequest) -> tuple[str, ...]:
    if request.plural != names.API_CLIENTS or not request.spec_changed("clientId"):
        return ()
    wanted = effective_client_id(request)
    return tuple(
        client["metadata"]["name"]
        for client in await kube.list_objects(names.API_CLIENTS, request.namespace)
        if client["metadata"]["name"] != request.name
        and ((client.get("spec") or {}).get("clientId") or client["metadata"]["name"]) == wanted
    )


async def _client_secret(kube: Kube, request: AdmissionRequest) -> ClientSecretLookup | None:
    reference = request.new_spec.get("clientSecretRef")
    if request.plural != names.API_CLIENTS or not reference or not request.spec_changed("clientSecretRef"):
        return None
    if not await _may_read_secret(kube, request, reference["name"]):
        return ClientSecretLookup(readable=False)
    try:
        secret = await kube.read_secret(request.namespace, reference["name"])
    except NotFoundError:
        return ClientSecretLookup(readable=True, secret_exists=False)
    key = reference.get("key") or names.CLIENT_SECRET
    return ClientSecretLookup(readable=True, secret_exists=True, value=data_value(secret, key))


async def _may_read_secret(kube: Kube, request: AdmissionRequest, name: str) -> bool:
    """A SubjectAccessReview: may the requester ``get`` that Secret? (credop can; that must not be enough)."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": request.requester.user,
            "groups": list(request.requester.groups),
            "resourceAttributes": {"namespace": request.namespace, "verb": "get", "resource": "secrets", "name": name},
        },
    }
    answer = await kube.create_subject_access_review(review)
    return bool((answer.get("status") or {}).get("allowed"))


async def _namespace_terminating(kube: Kube, request: AdmissionRequest) -> bool:
    if not request.old_spec.get("deletionProtection"):
        return False
    namespace = await kube.read_namespace(request.namespace)
    return bool(namespace["metadata"].get("deletionTimestamp"))
