"""The admission webhooks' pure parts: decisions, the created-by mutation, pending keys, certificates, settings."""

from __future__ import annotations

import base64
import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from credop.api.keypolicy import KeyPolicySpec, RoleRule, Subjects
from credop.api.serviceaccountkey import ServiceAccountKeySpec
from credop.config import WebhookSettings
from credop.domain.certificates import covers, new_bundle, renewed
from credop.domain.policy import Requester, check_new_service_account_key, resolve_policy
from credop.kube.client import NotFoundError
from credop.webhooks.app import annotation_patch
from credop.webhooks.decide import created_by_mutation, decide, key_spec_denials
from credop.webhooks.gather import ClientSecretLookup, Facts
from credop.webhooks.pending import still_pending, user_key
from credop.webhooks.requests import AdmissionRequest, parse_request
from credop.webhooks.tls import certificate_files, mounted_files

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
CREATED_BY = "credop.dev/created-by"
SAK, APIC = "serviceaccountkeys", "apiclients"


def body(name: str = "k", *, annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "team", "annotations": annotations or {}}, "spec": spec}


def key_body(name: str = "k", *, by: str | None = "alice", **spec: Any) -> dict[str, Any]:
    return body(name, annotations={CREATED_BY: by} if by else {}, serviceAccount="ci", **spec)


def request(
    operation: str,
    plural: str = SAK,
    *,
    new: dict[str, Any] | None = None,
    old: dict[str, Any] | None = None,
    user: str = "alice",
    groups: tuple[str, ...] = (),
) -> AdmissionRequest:
    userinfo = {"username": user, "groups": list(groups)}
    return parse_request(plural=plural, operation=operation, userinfo=userinfo, new=new, old=old, dry_run=False)


def rules_of(denials: list[Any]) -> list[str]:
    return [denial.rule for denial in denials]


def facts(**policies: KeyPolicySpec) -> Facts:
    return Facts(policies=policies)


# Decisions ----------------------------------------------------------------------------------------


def test_parse_request_reads_who_and_what() -> None:
    parsed = request("CREATE", new=key_body(), user="bob", groups=("team",))
    assert (parsed.namespace, parsed.name, parsed.plural) == ("team", "k", SAK)
    assert parsed.requester == Requester("bob", ("team",))
    assert parsed.spec_changed("anything")


def test_a_plain_create_passes() -> None:
    assert decide(request("CREATE", new=key_body()), facts(), now=NOW) == []


def test_create_checks_created_by_creators_and_limits() -> None:
    strict = KeyPolicySpec(creators=Subjects(users=["alice"]), max_keys_per_owner=1)
    denials = decide(request("CREATE", new=key_body(by="alice"), user="mallory"), facts(default=strict), now=NOW)
    assert rules_of(denials) == ["createdBy", "creators"]
    held = Facts(policies={"default": strict}, owned_keys=frozenset({"other"}))
    denials = decide(request("CREATE", new=key_body()), held, now=NOW)
    assert rules_of(denials) == ["maxKeysPerOwner"]
    assert str(denials[0]).startswith("[maxKeysPerOwner] metadata: ")
    assert str(denials[0]).endswith('(KeyPolicy "default")')


def test_keys_just_admitted_count_but_not_the_one_being_created() -> None:
    policy = KeyPolicySpec(max_keys_per_owner=2)
    pending = Facts(policies={"default": policy}, owned_keys=frozenset({"a"}), admitted_keys=frozenset({"b"}))
    assert rules_of(decide(request("CREATE", new=key_body("c")), pending, now=NOW)) == ["maxKeysPerOwner"]
    assert decide(request("CREATE", new=key_body("b")), pending, now=NOW) == []


def test_a_missing_policy_is_refused_before_anything_else() -> None:
    denials = decide(request("CREATE", new=key_body(policyName="nowhere")), facts(), now=NOW)
    assert rules_of(denials) == ["policyName"]
    assert denials[0].violation.field == "spec.policyName"


def test_an_invalid_spec_is_refused_naming_the_field() -> None:
    denials = decide(request("CREATE", new=key_body(format="PEM")), facts(), now=NOW)
    assert rules_of(denials) == ["schema"]
    assert denials[0].violation.field == "spec.format"


@pytest.mark.parametrize(
    "spec",
    [
        {"roles": [{"name": "Root"}], "neverExpires": True},
        {"expiresIn": "400d"},
        {"expiresAt": "2025-01-01T00:00:00Z"},
        {"roles": [{"name": "Auditor"}]},
        {},
    ],
)
def test_key_spec_rules_are_check_new_service_account_key_each_under_its_name(spec: dict[str, Any]) -> None:
    policy = KeyPolicySpec(max_expiry="365d", roles=[RoleRule(name="Auditor", requires_scope=True)])
    parsed = ServiceAccountKeySpec.model_validate({"serviceAccount": "ci", **spec})
    denials = key_spec_denials(parsed, resolve_policy(None, {"default": policy}), now=NOW)
    assert [denial.violation for denial in denials] == check_new_service_account_key(parsed, policy, now=NOW)


def test_update_checks_only_the_rules_of_changed_fields() -> None:
    narrow = KeyPolicySpec(roles=[RoleRule(name="Reader")], max_expiry="30d")
    old = key_body(roles=[{"name": "GlobalAdmin"}], expiresIn="90d")
    edited = key_body(roles=[{"name": "GlobalAdmin"}], expiresIn="90d", description="x", active=False)
    assert decide(request("UPDATE", new=edited, old=old), facts(default=narrow), now=NOW) == []
    longer = key_body(roles=[{"name": "GlobalAdmin"}], expiresIn="91d")
    assert rules_of(decide(request("UPDATE", new=longer, old=old), facts(default=narrow), now=NOW)) == ["maxExpiry"]
    other_role = key_body(roles=[{"name": "Owner"}], expiresIn="90d")
    assert rules_of(decide(request("UPDATE", new=other_role, old=old), facts(default=narrow), now=NOW)) == ["roles"]


def test_update_refuses_immutable_fields_and_created_by_changes() -> None:
    old = key_body(format="Pair")
    new = key_body(by="mallory", format="JWT")
    new["spec"]["serviceAccount"] = "root"
    denials = decide(request("UPDATE", new=new, old=old), facts(), now=NOW)
    assert rules_of(denials) == ["createdBy", "immutable", "immutable"]
    assert [d.violation.field for d in denials[1:]] == ["spec.serviceAccount", "spec.format"]


def test_moving_to_another_policy_checks_its_creators() -> None:
    strict = KeyPolicySpec(creators=Subjects(users=["alice"]))
    old, new = key_body(), key_body(policyName="strict")
    assert rules_of(decide(request("UPDATE", new=new, old=old, user="bob"), facts(strict=strict), now=NOW)) == ["creators"]  # fmt: skip
    assert decide(request("UPDATE", new=new, old=old), facts(strict=strict), now=NOW) == []
    assert rules_of(decide(request("UPDATE", new=new, old=old), facts(), now=NOW)) == ["policyName"]


def test_client_rules_on_create() -> None:
    spec = {"clientId": "shared", "clientSecretRef": {"name": "mine", "key": "clientSecret"}, "tokenValiditySeconds": 5}
    lookup = ClientSecretLookup(readable=True, secret_exists=True, value="weak")
    weak = Facts(client_id_holders=("first",), client_secret=lookup)
    denials = decide(request("CREATE", APIC, new=body("c", annotations={CREATED_BY: "alice"}, **spec)), weak, now=NOW)
    assert rules_of(denials) == ["tokenValidity", "uniqueClientId", "clientSecret"]
    said = str(denials[2].violation)
    assert "weak" not in said.split(":", 1)[1] and "must contain" not in said and "4" not in said
    assert "8 to 30 characters" in said, "the rules are stated, not which of them the value broke"
    missing = Facts(client_secret=ClientSecretLookup(readable=True, secret_exists=False))
    only_ref = {"clientSecretRef": {"name": "mine", "key": "clientSecret"}}
    denials = decide(request("CREATE", APIC, new=body("c", annotations={CREATED_BY: "alice"}, **only_ref)), missing, now=NOW)  # fmt: skip
    assert [str(d.violation) for d in denials] == ['spec.clientSecretRef: Secret "mine" does not exist in this namespace; create it first']  # fmt: skip


def test_a_secret_the_requester_may_not_read_is_refused_the_same_whether_it_exists_or_not() -> None:
    only_ref = {"clientSecretRef": {"name": "theirs", "key": "clientSecret"}}
    unreadable = Facts(client_secret=ClientSecretLookup(readable=False))
    denials = decide(request("CREATE", APIC, new=body("c", annotations={CREATED_BY: "alice"}, **only_ref)), unreadable, now=NOW)  # fmt: skip
    assert [str(d.violation) for d in denials] == [
        'spec.clientSecretRef: you may not read Secret "theirs" (get secrets): a client secret must be one its creator can read'
    ]


def test_client_update_rechecks_only_what_changed() -> None:
    old = body("c", annotations={CREATED_BY: "alice"}, tokenValiditySeconds=5)
    new = body("c", annotations={CREATED_BY: "alice"}, tokenValiditySeconds=5, description="x")
    assert decide(request("UPDATE", APIC, new=new, old=old), Facts(), now=NOW) == []


@pytest.mark.parametrize(
    ("spec", "annotations", "terminating", "refused"),
    [
        ({}, {}, False, False),
        ({"deletionProtection": True}, {}, False, True),
        ({"deletionProtection": True}, {"credop.dev/confirm-delete": "nope"}, False, True),
        ({"deletionProtection": True}, {"credop.dev/confirm-delete": "k"}, False, False),
        ({"deletionProtection": True}, {}, True, False),
    ],
)
def test_deletion_protection(spec: dict[str, Any], annotations: dict[str, str], terminating: bool, refused: bool) -> None:  # fmt: skip
    deleting = request("DELETE", old=body("k", annotations=annotations, **spec))
    denials = decide(deleting, Facts(namespace_terminating=terminating), now=NOW)
    assert rules_of(denials) == (["deletionProtection"] if refused else [])


# The created-by mutation --------------------------------------------------------------------------


def test_created_by_is_set_on_create_and_put_back_when_an_update_drops_it() -> None:
    assert created_by_mutation(request("CREATE", new=key_body(by="mallory"))) == {CREATED_BY: "alice"}
    assert created_by_mutation(request("CREATE", new=key_body(by="alice"))) == {}
    dropped = request("UPDATE", new=key_body(by=None), old=key_body(by="carol"))
    assert created_by_mutation(dropped) == {CREATED_BY: "carol"}
    changed = request("UPDATE", new=key_body(by="mallory"), old=key_body(by="carol"))
    assert created_by_mutation(changed) == {}, "a change is refused by the validating webhook, not hidden"
    assert created_by_mutation(request("UPDATE", new=key_body(by=None), old=key_body(by=None))) == {}


# Pending keys -------------------------------------------------------------------------------------


def test_admitted_keys_count_until_stored_or_the_hold_ends() -> None:
    at = NOW.isoformat().replace("+00:00", "Z")
    entries = {"a": at, "b": at, "old": (NOW - datetime.timedelta(seconds=31)).isoformat().replace("+00:00", "Z")}
    hold = datetime.timedelta(seconds=30)
    assert still_pending(entries, now=NOW, hold=hold, stored=frozenset()) == {"a": at, "b": at}
    assert still_pending(entries, now=NOW, hold=hold, stored=frozenset({"a"})) == {"b": at}
    assert still_pending({"bad": "not a time"}, now=NOW, hold=hold, stored=frozenset()) == {}
    assert user_key("alice@example.com") != user_key("bob") and len(user_key("system:serviceaccount:a:b")) == 40


def test_the_mutating_patch_adds_created_by_with_or_without_annotations() -> None:
    assert annotation_patch(None, {CREATED_BY: "alice"}) == [
        {"op": "add", "path": "/metadata/annotations", "value": {CREATED_BY: "alice"}}
    ]
    assert annotation_patch({"x": "y"}, {CREATED_BY: "alice"}) == [
        {"op": "add", "path": "/metadata/annotations/credop.dev~1created-by", "value": "alice"}
    ]


# Certificates -------------------------------------------------------------------------------------


def test_a_bundle_serves_its_hosts_signed_by_its_ca() -> None:
    bundle = new_bundle(["credop-webhook.credop-system.svc", "127.0.0.1"], now=NOW)
    ca = x509.load_pem_x509_certificate(bundle.ca_cert)
    cert = x509.load_pem_x509_certificate(bundle.cert)
    cert.verify_directly_issued_by(ca)
    assert covers(bundle.cert, ["127.0.0.1", "credop-webhook.credop-system.svc"])
    assert not covers(bundle.cert, ["elsewhere.svc"])
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert b"PRIVATE KEY" in bundle.key


def test_renewal_keeps_the_ca_while_it_lasts() -> None:
    bundle = new_bundle(["a.svc"], now=NOW)
    assert renewed(bundle, ["a.svc"], now=NOW + datetime.timedelta(days=300)) is None
    later = renewed(bundle, ["a.svc"], now=NOW + datetime.timedelta(days=340))
    assert later is not None and later.ca_cert == bundle.ca_cert and later.cert != bundle.cert
    moved = renewed(bundle, ["b.svc"], now=NOW)
    assert moved is not None and moved.ca_cert == bundle.ca_cert and covers(moved.cert, ["b.svc"])
    old_ca = renewed(bundle, ["a.svc"], now=NOW + datetime.timedelta(days=3300))
    assert old_ca is not None and old_ca.ca_cert != bundle.ca_cert
    assert renewed(None, ["a.svc"], now=NOW) is not None


# Settings -----------------------------------------------------------------------------------------


def test_no_port_means_no_webhook_server() -> None:
    assert WebhookSettings.from_environment({}) is None


def test_settings_from_the_environment() -> None:
    env = {
        "CREDOP_WEBHOOK_PORT": "9443",
        "CREDOP_WEBHOOK_TLS_SECRET": "credop-webhook-tls",
        "CREDOP_WEBHOOK_HOSTS": "a.svc, b.svc.cluster.local,",
        "CREDOP_WEBHOOK_CONFIGURATION": "credop",
        "CREDOP_WEBHOOK_CERT_DIR": "/etc/credop/webhook",
    }
    settings = WebhookSettings.from_environment(env)
    assert settings == WebhookSettings(
        port=9443,
        address="0.0.0.0",
        cert_dir=Path("/etc/credop/webhook"),
        tls_secret="credop-webhook-tls",
        hosts=("a.svc", "b.svc.cluster.local"),
        configuration="credop",
    )
    assert settings.manages_certificate


# The certificate credop keeps ---------------------------------------------------------------------


class FakeKube:
    """The calls :mod:`credop.webhooks.tls` makes, against dicts."""

    def __init__(self) -> None:
        self.secrets: dict[tuple[str, str], dict[str, Any]] = {}
        self.configurations = {
            kind: {"webhooks": [{"name": f"a.{kind}.credop.dev", "clientConfig": {"url": "https://x"}}]}
            for kind in ("validating", "mutating")
        }
        self.patches: list[tuple[str, dict[str, Any]]] = []
        self.version = 0

    async def read_secret(self, namespace: str, name: str) -> dict[str, Any]:
        if (namespace, name) not in self.secrets:
            raise NotFoundError(name)
        return self.secrets[(namespace, name)]

    async def create_secret(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.replace_secret(namespace, body["metadata"]["name"], body)

    async def replace_secret(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        stored = {**body, "metadata": {**body["metadata"], "resourceVersion": str(self.version)}}
        self.secrets[(namespace, name)] = stored
        return stored

    async def read_webhook_configuration(self, kind: str, name: str) -> dict[str, Any]:
        return self.configurations[kind]

    async def patch_webhook_configuration(self, kind: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.patches.append((kind, patch))
        for change in patch["webhooks"]:
            webhook = next(w for w in self.configurations[kind]["webhooks"] if w["name"] == change["name"])
            webhook["clientConfig"].update(change["clientConfig"])
        return self.configurations[kind]


async def test_a_kept_certificate_is_shared_renewed_and_its_ca_injected(tmp_path: Path) -> None:
    kube = FakeKube()
    settings = WebhookSettings(port=9443, tls_secret="tls", hosts=("a.svc",), configuration="credop")
    first = await certificate_files(settings, kube=kube, namespace="ns", now=NOW, directory=tmp_path / "one")  # type: ignore[arg-type]
    assert first.ca is not None
    assert covers(first.cert.read_bytes(), ["a.svc"])
    ca = base64.b64encode(first.ca.read_bytes()).decode()
    assert {w["clientConfig"]["caBundle"] for c in kube.configurations.values() for w in c["webhooks"]} == {ca}
    replica = await certificate_files(settings, kube=kube, namespace="ns", now=NOW, directory=tmp_path / "two")  # type: ignore[arg-type]
    assert replica.cert.read_bytes() == first.cert.read_bytes(), "every replica serves the Secret's certificate"
    assert len(kube.patches) == 2, "an injected CA is not patched again"
    moved = WebhookSettings(port=9443, tls_secret="tls", hosts=("b.svc",), configuration="credop")
    renewed_files = await certificate_files(moved, kube=kube, namespace="ns", now=NOW, directory=tmp_path / "one")  # type: ignore[arg-type]
    assert covers(renewed_files.cert.read_bytes(), ["b.svc"])
    assert renewed_files.ca is not None
    assert renewed_files.ca.read_bytes() == first.ca.read_bytes(), "a renewal keeps the CA the API server trusts"
    kube.configurations["validating"]["webhooks"][0]["clientConfig"] = {"url": "https://x"}
    await certificate_files(moved, kube=kube, namespace="ns", now=NOW, directory=tmp_path / "one")  # type: ignore[arg-type]
    assert kube.configurations["validating"]["webhooks"][0]["clientConfig"]["caBundle"] == ca


def test_mounted_certificates_are_used_as_they_are(tmp_path: Path) -> None:
    (tmp_path / "tls.crt").write_text("c")
    files = mounted_files(tmp_path)
    assert (files.cert, files.key, files.ca) == (tmp_path / "tls.crt", tmp_path / "tls.key", None)


def test_a_grace_period_beyond_the_policys_bound_is_refused_on_create_and_when_raised() -> None:
    long = key_body(rotation={"gracePeriod": "48h"})
    denials = decide(request("CREATE", new=long), facts(), now=NOW)
    assert rules_of(denials) == ["maxGracePeriod"]
    assert "spec.rotation.gracePeriod" in str(denials[0].violation) and "24h" in str(denials[0].violation)
    short = key_body(rotation={"gracePeriod": "1h"})
    assert decide(request("CREATE", new=short), facts(), now=NOW) == []
    assert rules_of(decide(request("UPDATE", new=long, old=short), facts(), now=NOW)) == ["maxGracePeriod"]
    roomy = KeyPolicySpec.model_validate({"rotation": {"maxGracePeriod": "72h"}})
    assert decide(request("CREATE", new=long), facts(default=roomy), now=NOW) == []
