"""The cache keeps args, kwargs and podTemplate as JSON text (memory) and gives them back
parsed; a value that cannot be text (too deep, NaN) is kept as it is for decide to refuse;
deleting every object leaves nothing behind that grows."""

from __future__ import annotations

import math

import pytest
from bench.cache_memory import bgj, measure

from backgroundjobs.controller.cache import Cache, Packed

pytestmark = pytest.mark.unit

KEY = ("shop", "report-000001")


def test_free_form_fields_are_kept_as_text_and_given_back_parsed() -> None:
    cache = Cache()
    body = bgj(1)
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
    body = bgj(1)
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
