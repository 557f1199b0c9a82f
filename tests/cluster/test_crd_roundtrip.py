"""Model instances survive the real API server's validation, defaulting and pruning unchanged.

Hypothesis builds valid specs from the pydantic models' own rules; each goes
through a server-side dry-run create, and what the server would store must
parse back to the same model instance. A field the CRD schema forgot (pruned),
a default that differs, or a rule that refuses valid input fails this test.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from credop.api.apiclient import ApiClientSpec
from credop.api.keypolicy import KeyPolicySpec
from credop.api.serviceaccountkey import ServiceAccountKeySpec
from tests.cluster.kube import Cluster

NAMESPACE = "credop-roundtrip"
RUNS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

names = st.from_regex(r"[a-z][a-z0-9-]{0,18}[a-z0-9]", fullmatch=True)
texts = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)
durations = st.builds(lambda n, unit: f"{n}{unit}", st.integers(1, 5000), st.sampled_from("smhd"))
notices = st.one_of(st.just("None"), durations)
periods = st.one_of(st.just("Never"), durations)
instants = st.datetimes(
    min_value=datetime.datetime(2030, 1, 1), max_value=datetime.datetime(2090, 1, 1), timezones=st.just(datetime.UTC)
).map(lambda moment: moment.replace(microsecond=0))
label_values = st.from_regex(r"[a-z0-9]{1,10}", fullmatch=True)
templates = st.fixed_dictionaries(
    {},
    optional={
        "data": st.dictionaries(
            st.from_regex(r"[a-z]{1,8}", fullmatch=True),
            st.sampled_from(["{{ .accessKeyId }}", "{{ .tenant }}:x", "plain"]),
            max_size=3,
        ),
        "labels": st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), label_values, max_size=2),
        "annotations": st.dictionaries(st.from_regex(r"example\.com/[a-z]{1,8}", fullmatch=True), texts, max_size=2),
    },
)


@st.composite
def roles(draw: st.DrawFn) -> list[dict[str, Any]]:
    chosen = draw(
        st.lists(
            st.sampled_from(["GlobalAdmin", "GlobalViewer", "CloudAccountViewer", "Auditor"]), unique=True, max_size=4
        )
    )
    made = []
    for name in chosen:
        scope = draw(
            st.lists(st.one_of(st.just("*"), names), min_size=1 if name == "CloudAccountViewer" else 0, max_size=3)
        )
        made.append({"name": name, **({"scope": scope} if scope else {})})
    return made


@st.composite
def key_specs(draw: st.DrawFn) -> ServiceAccountKeySpec:
    expiry = draw(
        st.one_of(
            st.just({}),
            durations.map(lambda d: {"expiresIn": d}),
            instants.map(lambda t: {"expiresAt": t}),
            st.just({"neverExpires": True}),
        )
    )
    rotation = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "autoRotate": st.booleans(),
                "renewBefore": durations,
                "gracePeriod": durations,
                "restartTargets": st.lists(
                    st.fixed_dictionaries(
                        {"kind": st.sampled_from(["Deployment", "StatefulSet", "DaemonSet"]), "name": names}
                    ),
                    max_size=2,
                ),
            },
        )
    )
    optional = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "description": texts,
                "keyType": st.sampled_from(["Access", "Api"]),
                "format": st.sampled_from(["Pair", "JWT"]),
                "active": st.booleans(),
                "secretName": names,
                "secretTemplate": templates,
                "policyName": names,
                "deletionProtection": st.booleans(),
            },
        )
    )
    fields = {"serviceAccount": draw(names), "roles": draw(roles()), "rotation": rotation, **expiry, **optional}
    return ServiceAccountKeySpec.model_validate(fields)


@st.composite
def client_specs(draw: st.DrawFn) -> ApiClientSpec:
    fields = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "clientId": st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,48}", fullmatch=True),
                "description": texts,
                "clientSecretRef": st.fixed_dictionaries(
                    {"name": names}, optional={"key": st.from_regex(r"[a-zA-Z0-9._-]{1,20}", fullmatch=True)}
                ),
                "tokenValiditySeconds": st.integers(1, 31_536_000),
                "permissionLevel": st.sampled_from(["ReadOnly", "CanEdit"]),
                "active": st.booleans(),
                "secretName": names,
                "policyName": names,
                "deletionProtection": st.booleans(),
            },
        )
    )
    return ApiClientSpec.model_validate(fields)


@st.composite
def policy_specs(draw: st.DrawFn) -> KeyPolicySpec:
    low = draw(st.integers(1, 100))
    fields = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "defaultExpiry": periods,
                "maxExpiry": durations,
                "allowNeverExpire": st.booleans(),
                "expiryNotifyBefore": notices,
                "rotation": st.fixed_dictionaries(
                    {},
                    optional={
                        "period": periods,
                        "notifyBefore": notices,
                        "action": st.sampled_from(["Disable", "None"]),
                    },
                ),
                "usage": st.fixed_dictionaries(
                    {},
                    optional={
                        "maxIdle": periods,
                        "notifyBefore": notices,
                        "action": st.sampled_from(["Disable", "None"]),
                    },
                ),
                "maxKeysPerOwner": st.integers(0, 1000),
                "maxActiveClients": st.integers(0, 10_000),
                "creators": st.fixed_dictionaries(
                    {}, optional={"users": st.lists(names, max_size=3), "groups": st.lists(names, max_size=3)}
                ),
                "adminGroups": st.lists(names, max_size=3),
                "clientSecret": st.fixed_dictionaries(
                    {"minLength": st.just(low), "maxLength": st.integers(low, 200)},
                    optional={"requireSpecial": st.booleans()},
                ),
                "tokenValidity": st.fixed_dictionaries(
                    {
                        "minSeconds": st.just(low),
                        "defaultSeconds": st.integers(low, 5000),
                        "maxSeconds": st.integers(5000, 86_400),
                    }
                ),
                "roles": st.lists(
                    st.fixed_dictionaries(
                        {"name": st.from_regex(r"[A-Z][a-zA-Z]{0,10}", fullmatch=True)},
                        optional={"requiresScope": st.booleans(), "readOnly": st.booleans()},
                    ),
                    max_size=4,
                    unique_by=lambda r: r["name"],
                ),
            },
        )
    )
    return KeyPolicySpec.model_validate(fields)


@pytest.fixture(scope="module")
def roundtrip_namespace(crds: Cluster) -> str:
    crds.kubectl("create", "namespace", NAMESPACE, check=False)
    return NAMESPACE


def server_side_dry_run(cluster: Cluster, kind: str, plural: str, spec: BaseModel) -> dict[str, Any]:
    body = {
        "apiVersion": "credop.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "roundtrip"},
        "spec": spec.model_dump(mode="json", by_alias=True, exclude_none=True),
    }
    stored = cluster.custom.create_namespaced_custom_object(
        "credop.dev", "v1alpha1", NAMESPACE, plural, body, dry_run="All"
    )
    return stored["spec"]  # type: ignore[no-any-return]


@RUNS
@given(key_specs())
def test_service_account_key_specs_round_trip(
    crds: Cluster, roundtrip_namespace: str, spec: ServiceAccountKeySpec
) -> None:
    assert (
        ServiceAccountKeySpec.model_validate(server_side_dry_run(crds, "ServiceAccountKey", "serviceaccountkeys", spec))
        == spec
    )


@RUNS
@given(client_specs())
def test_api_client_specs_round_trip(crds: Cluster, roundtrip_namespace: str, spec: ApiClientSpec) -> None:
    assert ApiClientSpec.model_validate(server_side_dry_run(crds, "ApiClient", "apiclients", spec)) == spec


@RUNS
@given(policy_specs())
def test_key_policy_specs_round_trip(crds: Cluster, roundtrip_namespace: str, spec: KeyPolicySpec) -> None:
    assert KeyPolicySpec.model_validate(server_side_dry_run(crds, "KeyPolicy", "keypolicies", spec)) == spec


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"clientSecret": {"minLength": 20, "maxLength": 10}}, "spec.clientSecret.minLength must not exceed maxLength"),
        ({"tokenValidity": {"minSeconds": 600, "defaultSeconds": 60}}, "minSeconds <= defaultSeconds <= maxSeconds"),
        ({"rotation": {"period": "monthly"}}, "spec.rotation.period"),
        ({"maxActiveClients": -1}, "spec.maxActiveClients"),
        ({"roles": [{"name": "A"}, {"name": "A"}]}, "spec.roles[1]"),
    ],
)
def test_invalid_policies_are_refused_naming_the_field(
    crds: Cluster, roundtrip_namespace: str, spec: dict[str, Any], message: str
) -> None:
    body = {"apiVersion": "credop.dev/v1alpha1", "kind": "KeyPolicy", "metadata": {"name": "bad"}, "spec": spec}
    refused = crds.kubectl("apply", "-n", NAMESPACE, "--dry-run=server", "-f", "-", input=json.dumps(body), check=False)
    assert refused.returncode != 0
    assert message in refused.stderr, refused.stderr
