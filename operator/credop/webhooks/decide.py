"""Admission decisions: which named checks of :mod:`credop.domain.policy` apply to a request, and their verdict.

Pure: the request and the gathered facts in, denials out. Each denial names
its rule (in brackets), the field, what is wrong, and the KeyPolicy when one
was in force. On update only the rules whose fields changed are checked
again, so a key that a later policy change made non-compliant can still be
edited, deactivated or annotated (the controller reports it as Failed).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import BaseModel, ValidationError

from credop import names
from credop.api.apiclient import ApiClientSpec
from credop.api.keypolicy import KeyPolicySpec
from credop.api.serviceaccountkey import ServiceAccountKeySpec
from credop.domain import policy as rules
from credop.domain.policy import ResolvedPolicy, Violation
from credop.webhooks.gather import Facts, effective_client_id
from credop.webhooks.requests import CREATE, DELETE, UPDATE, AdmissionRequest

IMMUTABLE_FIELDS = {
    names.SERVICE_ACCOUNT_KEYS: ("serviceAccount", "format", "keyType", "secretName"),
    names.API_CLIENTS: ("secretName",),
}
SPEC_MODELS: dict[str, type[BaseModel]] = {
    names.SERVICE_ACCOUNT_KEYS: ServiceAccountKeySpec,
    names.API_CLIENTS: ApiClientSpec,
}


@dataclass(frozen=True)
class Denial:
    rule: str
    violation: Violation
    policy: str | None = None

    def __str__(self) -> str:
        where = f' (KeyPolicy "{self.policy}")' if self.policy else ""
        return f"[{self.rule}] {self.violation}{where}"


def denied(rule: str, violations: Iterable[Violation], policy: ResolvedPolicy | None = None) -> list[Denial]:
    return [Denial(rule, violation, policy.name if policy else None) for violation in violations]


def decide(request: AdmissionRequest, facts: Facts, *, now: datetime.datetime) -> list[Denial]:
    """Every rule the request breaks; empty when it may proceed."""
    if request.operation == DELETE:
        return decide_delete(request, facts)
    model = SPEC_MODELS.get(request.plural)
    if model is None or request.operation not in (CREATE, UPDATE):
        return []
    try:
        spec = model.model_validate(request.new_spec)
    except ValidationError as error:
        return denied("schema", _schema_violations(error))
    if request.operation == CREATE:
        return decide_create(request, spec, facts, now=now)
    return decide_update(request, spec, facts, now=now)


def decide_delete(request: AdmissionRequest, facts: Facts) -> list[Denial]:
    """Deletion protection, unless the whole namespace is being deleted."""
    if facts.namespace_terminating:
        return []
    protected = bool(request.old_spec.get("deletionProtection"))
    violations = rules.check_deletion_confirmed(request.name, protected=protected, annotations=request.old_annotations)
    return denied("deletionProtection", violations)


def decide_create(request: AdmissionRequest, spec: BaseModel, facts: Facts, *, now: datetime.datetime) -> list[Denial]:
    resolved = rules.resolve_policy(request.new_spec.get("policyName"), facts.policies)
    if not resolved.found:
        return denied("policyName", rules.check_policy_found(resolved))
    assert resolved.spec is not None
    requester = request.requester
    denials = denied("createdBy", rules.check_created_by_is_requester(request.new_annotations, requester))
    denials += denied("creators", rules.check_creator(requester, resolved.spec), resolved)
    if isinstance(spec, ServiceAccountKeySpec):
        held = len((facts.owned_keys | facts.admitted_keys) - {request.name})
        denials += denied("maxKeysPerOwner", rules.check_keys_per_owner(requester, held, resolved.spec), resolved)
        denials += key_spec_denials(spec, resolved, now=now)
    elif isinstance(spec, ApiClientSpec):
        denials += client_spec_denials(request, spec, resolved, facts)
    return denials


def decide_update(request: AdmissionRequest, spec: BaseModel, facts: Facts, *, now: datetime.datetime) -> list[Denial]:
    denials = denied("createdBy", rules.check_created_by_unchanged(request.old_annotations, request.new_annotations))
    immutable = IMMUTABLE_FIELDS.get(request.plural, ())
    denials += denied("immutable", rules.check_unchanged_fields(request.old_spec, request.new_spec, immutable))
    resolved = rules.resolve_policy(request.new_spec.get("policyName"), facts.policies)
    if request.spec_changed("policyName"):
        if not resolved.found:
            return denials + denied("policyName", rules.check_policy_found(resolved))
        assert resolved.spec is not None
        denials += denied("creators", rules.check_creator(request.requester, resolved.spec), resolved)
    if not resolved.found:
        return denials  # the policy went away after creation: the controller reports PolicyNotFound
    if isinstance(spec, ServiceAccountKeySpec):
        denials += key_spec_denials(spec, resolved, now=now, old=_old_key_spec(request))
    elif isinstance(spec, ApiClientSpec):
        denials += client_spec_denials(request, spec, resolved, facts)
    return denials


def key_spec_denials(
    spec: ServiceAccountKeySpec,
    resolved: ResolvedPolicy,
    *,
    now: datetime.datetime,
    old: ServiceAccountKeySpec | None = None,
) -> list[Denial]:
    """The spec rules of :func:`credop.domain.policy.check_new_service_account_key`, each under its own name.

    On update (``old`` given) only the rules for the fields that changed.
    """
    policy = _spec_of(resolved)
    everything = old is None or old.policy_name != spec.policy_name
    denials = []
    if everything or (old is not None and old.roles != spec.roles):
        denials += denied("roles", rules.check_roles(spec.roles, policy), resolved)
    if everything or (old is not None and rules.expiry_changed(old, spec)):
        denials += denied("allowNeverExpire", rules.check_never_expires_allowed(spec, policy), resolved)
        denials += denied("expiresAt", rules.check_expiry_in_future(spec, now=now), resolved)
        denials += denied("maxExpiry", rules.check_max_expiry(spec, policy, now=now), resolved)
    if everything or (old is not None and old.rotation.grace_period != spec.rotation.grace_period):
        denials += denied("maxGracePeriod", rules.check_grace_period(spec, policy), resolved)
    return denials


def client_spec_denials(
    request: AdmissionRequest, spec: ApiClientSpec, resolved: ResolvedPolicy, facts: Facts
) -> list[Denial]:
    """Token validity, a unique client ID, and the client secret rules, where they changed (or on create)."""
    policy = _spec_of(resolved)
    moved = request.spec_changed("policyName")
    denials = []
    if moved or request.spec_changed("tokenValiditySeconds"):
        denials += denied("tokenValidity", rules.check_api_client(spec, policy), resolved)
    if request.spec_changed("clientId"):
        holders = facts.client_id_holders
        denials += denied("uniqueClientId", rules.check_client_id_unique(effective_client_id(request), holders))
    if spec.client_secret_ref is not None and facts.client_secret is not None:
        denials += denied("clientSecret", _client_secret_violations(spec, policy, facts), resolved)
    return denials


def _client_secret_violations(spec: ApiClientSpec, policy: KeyPolicySpec, facts: Facts) -> list[Violation]:
    reference, lookup = spec.client_secret_ref, facts.client_secret
    assert reference is not None
    assert lookup is not None
    if not lookup.readable:
        return [rules.client_secret_not_readable(reference.name)]
    if lookup.value is None:
        return [rules.client_secret_not_found(reference.name, reference.key, secret_exists=lookup.secret_exists)]
    return rules.check_client_secret(lookup.value, policy)


def _old_key_spec(request: AdmissionRequest) -> ServiceAccountKeySpec | None:
    try:
        return ServiceAccountKeySpec.model_validate(request.old_spec)
    except ValidationError:
        return None  # stored before a schema change: check everything


def _spec_of(resolved: ResolvedPolicy) -> KeyPolicySpec:
    assert resolved.spec is not None
    return resolved.spec


def _schema_violations(error: ValidationError) -> list[Violation]:
    return [
        Violation("spec." + ".".join(str(part) for part in problem["loc"]), problem["msg"])
        for problem in error.errors()
    ]


def created_by_mutation(request: AdmissionRequest) -> dict[str, str]:
    """The annotations the mutating webhook sets: the requester on create; on update, a created-by the update
    dropped is put back (server-side apply drops fields a mutation added; changing it is refused instead)."""
    current = request.new_annotations.get(names.CREATED_BY)
    if request.operation == CREATE and current != request.requester.user:
        return {names.CREATED_BY: request.requester.user}
    previous = request.old_annotations.get(names.CREATED_BY)
    if request.operation == UPDATE and previous is not None and current is None:
        return {names.CREATED_BY: previous}
    return {}
