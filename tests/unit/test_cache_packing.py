"""The cache keeps args, kwargs and podTemplate as JSON text (memory) and gives them back
parsed; a finished job is kept whole as compressed text; a value that cannot be text (too
deep, NaN) is kept as it is for decide to refuse; deleting every object leaves nothing
behind that grows."""

from __future__ import annotations

import copy
import gc
import math
import tracemalloc
from typing import Any

import pytest
from bench.cache_memory import bgj, measure

from backgroundjobs.controller import cache as cache_module
from backgroundjobs.controller.cache import Cache, Finished, Packed

pytestmark = pytest.mark.unit

KEY = ("shop", "report-000001")


def running(i: int) -> dict[str, Any]:
    body = bgj(i)
    body["status"]["phase"] = "Running"
    return body


def test_free_form_fields_are_kept_as_text_and_given_back_parsed() -> None:
    cache = Cache()
    body = running(1)
    cache.store_bgj(KEY, body)
    kept = cache._bgjs[KEY]["spec"]
    assert all(isinstance(kept[f], Packed) for f in ("args", "kwargs", "podTemplate"))
    assert "managedFields" not in cache._bgjs[KEY]["metadata"]
    again = cache.bgj(KEY)
    assert again is not None
    assert again["spec"] == body["spec"]
    assert cache.version(KEY) == body["metadata"]["resourceVersion"]
    assert cache.queue(KEY) == "default"


def nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("hostile", [[float("nan")], {"x": nested(100)}], ids=["nan", "deep"])
def test_a_value_that_cannot_be_text_is_kept_for_decide_to_refuse(hostile: object) -> None:
    cache = Cache()
    body = running(1)
    body["spec"]["kwargs"] = hostile
    cache.store_bgj(KEY, body)
    assert not isinstance(cache._bgjs[KEY]["spec"]["kwargs"], Packed)
    again = cache.bgj(KEY)
    assert again is not None
    value = again["spec"]["kwargs"]
    if isinstance(value, list):
        assert math.isnan(value[0])
    else:
        assert value["x"][0][0][0] == nested(97)


def test_the_early_hand_off_keeps_the_text_and_its_undo_restores_the_status() -> None:
    cache = Cache()
    cache.store_bgj(KEY, bgj(1))
    body = cache.bgj(KEY)
    assert body is not None
    shown = {"phase": "Succeeded", "runs": 9}
    cache.show_status(KEY, body, shown)
    assert isinstance(cache._bgjs[KEY]["spec"]["kwargs"], Packed)
    assert (cache.bgj(KEY) or {})["status"] is shown
    cache.unshow_status(KEY, body, shown)
    assert (cache.bgj(KEY) or {})["status"] == body["status"]


def test_deleting_every_object_leaves_nothing_that_grows() -> None:
    per_object, _, leak = measure(500)
    assert per_object > 1000  # it measured something
    assert leak < 8  # bytes per object a second round of 500 adds


def test_a_finished_job_is_kept_whole_as_compressed_text() -> None:
    cache = Cache()
    body = bgj(1)
    cache.store_bgj(KEY, copy.deepcopy(body))
    kept = cache._bgjs[KEY]
    assert isinstance(kept, Finished)
    assert len(kept.text) < 600  # the JSON alone is about 1,500 bytes
    del body["metadata"]["managedFields"]
    assert cache.bgj(KEY) == body
    assert cache.bgj(KEY) is not cache.bgj(KEY)  # a copy each time: deciding cannot alter it
    assert cache.version(KEY) == body["metadata"]["resourceVersion"]
    assert cache.queue(KEY) == "default"
    assert cache.routine(KEY)
    assert list(cache.phases()) == [("Succeeded", "default")]


def test_an_older_answer_does_not_replace_a_finished_job_and_a_requeue_unpacks_it() -> None:
    cache = Cache()
    cache.store_bgj(KEY, bgj(1))
    older = bgj(1)
    older["metadata"]["resourceVersion"] = "5"
    older["status"]["phase"] = "Running"
    cache.store_bgj(KEY, older)
    assert cache.bgj(KEY)["status"]["phase"] == "Succeeded"  # type: ignore[index]
    requeued = bgj(1)
    requeued["metadata"]["resourceVersion"] = "200000"
    requeued["metadata"]["annotations"] = {"backgroundjobs.dev/requeue": "1"}
    cache.store_bgj(KEY, requeued)
    assert not isinstance(cache._bgjs[KEY], Finished)
    assert not cache.routine(KEY)


@pytest.mark.parametrize(
    "hostile", [[float("nan")], {"x": nested(5000)}], ids=["nan", "too-deep-for-the-encoder"]
)
def test_a_finished_job_that_cannot_be_text_is_kept_parsed(hostile: object) -> None:
    cache = Cache()
    body = bgj(1)
    body["status"]["result"] = hostile
    cache.store_bgj(KEY, body)
    assert isinstance(cache._bgjs[KEY], dict)
    assert cache.routine(KEY)
    assert (cache.bgj(KEY) or {})["status"]["result"] is not None


def test_a_finished_job_nested_deep_but_encodable_comes_back_whole() -> None:
    cache = Cache()
    body = bgj(1)
    body["status"]["result"] = {"x": nested(300)}
    cache.store_bgj(KEY, copy.deepcopy(body))
    assert isinstance(cache._bgjs[KEY], Finished)
    assert (cache.bgj(KEY) or {})["status"]["result"] == {"x": nested(300)}


def stored_heap(n: int) -> float:
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    cache = Cache()
    for i in range(n):
        body = bgj(i)
        cache.store_bgj(("shop", body["metadata"]["name"]), body)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del cache
    return used / n


def test_finished_jobs_take_under_half_the_memory_of_parsed_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compressed = stored_heap(1000)
    monkeypatch.setattr(cache_module.Finished, "of", classmethod(lambda cls, obj: None))
    parsed = stored_heap(1000)
    assert compressed < parsed / 2, (compressed, parsed)
