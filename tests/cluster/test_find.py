"""Finding credentials the way Knox's search and columns do: field selectors, wide columns, credop status --search."""

from __future__ import annotations

import pytest

from credop.cli import main
from tests.cluster.helpers import active, client_manifest, key_manifest, wait_status
from tests.cluster.kube import Cluster

pytestmark = pytest.mark.usefixtures("operator")


def names(cluster: Cluster, namespace: str, plural: str, *selector: str) -> list[str]:
    printed = cluster.kubectl("get", plural, "-n", namespace, *selector, "-o", "name").stdout.split()
    return sorted(line.split("/", 1)[1] for line in printed)


def test_kubectl_finds_a_client_by_its_id_and_keys_by_service_account(cluster: Cluster, namespace: str) -> None:
    cluster.apply(client_manifest("portal", namespace, clientId="partner-portal-prod"))
    cluster.apply(client_manifest("other", namespace, clientId="billing"))
    cluster.apply(key_manifest("deploy", namespace, serviceAccount="deployer", roles=[{"name": "GlobalViewer"}]))
    cluster.apply(key_manifest("ci", namespace))
    assert names(cluster, namespace, "apic", "--field-selector", "spec.clientId=partner-portal-prod") == ["portal"]
    assert names(cluster, namespace, "sak", "--field-selector", "spec.serviceAccount=deployer") == ["deploy"]
    assert names(cluster, namespace, "sak", "--field-selector", "spec.serviceAccount!=deployer") == ["ci"]


def test_wide_columns_show_roles_creator_and_last_update(cluster: Cluster, namespace: str) -> None:
    cluster.apply(key_manifest("deploy", namespace, roles=[{"name": "GlobalViewer"}, {"name": "GlobalAdmin"}]))
    wait_status(cluster, namespace, "deploy", active)
    header, row = cluster.kubectl("get", "sak", "deploy", "-n", namespace, "-o", "wide").stdout.splitlines()[:2]
    for column in ("ROLES", "CREATED-BY", "LAST-UPDATED"):
        assert column in header.split()
    assert "GlobalViewer" in row
    narrow = cluster.kubectl("get", "sak", "deploy", "-n", namespace).stdout.splitlines()[0].split()
    assert "ROLES" not in narrow, "the crowded columns are for -o wide"


def test_credop_status_searches_every_column_people_look_for(
    cluster: Cluster, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster.apply(client_manifest("portal", namespace, clientId="partner-portal-prod"))
    cluster.apply(key_manifest("deploy", namespace, serviceAccount="release-bot"))
    wait_status(cluster, namespace, "deploy", active)
    capsys.readouterr()
    results = {}
    for text in ("PARTNER", "release-bot", "crak_", "nothing-like-this"):
        main(["--kubeconfig", str(cluster.kubeconfig), "status", "-n", namespace, "--search", text])
        results[text] = [line.split()[1] for line in capsys.readouterr().out.splitlines()[1:]]
    assert results == {"PARTNER": ["portal"], "release-bot": ["deploy"], "crak_": ["deploy"], "nothing-like-this": []}
