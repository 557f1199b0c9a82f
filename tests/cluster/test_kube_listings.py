"""The kube adapter's large listings, against the API server: in pages, metadata only."""

from __future__ import annotations

import asyncio
import uuid

from credop.kube.client import Kube, load_configuration
from tests.cluster.kube import Cluster


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
