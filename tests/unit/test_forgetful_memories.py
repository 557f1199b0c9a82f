"""kopf's per-object memory is made per event and never kept: credop's store is what remembers."""

from __future__ import annotations

import kopf

from credop.controller.main import ForgetfulMemories


async def test_kopf_keeps_no_memory_of_the_objects_it_has_seen() -> None:
    memories = ForgetfulMemories()
    memobase = kopf.Memo(runtime="the runtime")
    for uid in ("u-1", "u-2", "u-1"):
        body = {"metadata": {"uid": uid, "name": "ci", "namespace": "team-a"}}
        memory = await memories.recall(body, memobase=memobase, noticed_by_listing=True)
        assert memory.memo["runtime"] == "the runtime"  # handlers still find the runtime in their memo
    assert list(memories.iter_all_memories()) == []
