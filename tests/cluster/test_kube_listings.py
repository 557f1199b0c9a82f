"""Large listings against the API server: the operator's and the credential service's, in pages."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from credop.kube.client import Kube, load_configuration
from credop.service import _watches as watches
from credop.service._records import SERVICE_ACCOUNT_KEY
from tests.cluster.helpers import SAK, key_manifest
from tests.cluster.kube import Cluster
from tests.servicekit import in_memory_state


def test_secret_metadata_comes_a_page_at_a_time_and_without_data(cluster: Cluster, namespace: str) -> None:
    """At startup the operator reads every credential Secret's metadata: 200,000 at once would be some 600 MB."""
    label = f"credop-test/page-{uuid.uuid4().hex[:8]}"
    for index in range(5):
        cluster.core.create_namespaced_secret(
            namespace,
            {"metadata": {"name": f"paged-{index}", "labels": {label: "yes"}}, "stringData": {"secret": "s3cret"}},
        )

    async def pages() -> list[list[dict[str, object]]]:
        kube = Kube(load_configuration(cluster.kubeconfig))
        try:
            return [page async for page in kube.secret_metadata_pages(label, page=2)]
        finally:
            kube.close()

    listed = asyncio.run(pages())
    assert [len(page) for page in listed] == [2, 2, 1]
    items = [item for page in listed for item in page]
    assert sorted(item["metadata"]["name"] for item in items) == [f"paged-{index}" for index in range(5)]  # type: ignore[index]
    assert all("data" not in item and "stringData" not in item for item in items)


def test_the_service_lists_credentials_a_page_at_a_time(
    cluster: Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The credential service's listing, in pages of 2 here (500 in use): every key arrives, trimmed."""
    monkeypatch.setattr(watches, "PAGE", 2)
    for index in range(5):
        cluster.apply(key_manifest(f"paged-{index}", namespace))
    uids = {cluster.get(SAK, namespace, f"paged-{index}")["metadata"]["uid"] for index in range(5)}

    async def listed() -> set[str]:
        state = in_memory_state()
        kube = Kube(load_configuration(cluster.kubeconfig))
        loop = watches.WatchLoop(
            watches.credential_feed(kube, state, SERVICE_ACCOUNT_KEY), loop=asyncio.get_running_loop(), state=state
        )
        loop.start()
        try:
            async with asyncio.timeout(30):
                while state.unsynced:
                    await asyncio.sleep(0.05)
        finally:
            loop.stop()
            kube.close()
        return {uid for uid in uids if state.view.credential(uid) is not None}

    assert asyncio.run(listed()) == uids
