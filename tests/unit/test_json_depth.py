"""JSON of any depth (backgroundjobs._json): what the API server stores, the operator decodes."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backgroundjobs import _json
from backgroundjobs._json import TooDeep, check_depth, deeper_than, loads

pytestmark = pytest.mark.unit

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


def nested(depth: int, leaf: str = "1") -> str:
    """A JSON text of ``depth`` levels, objects and arrays alternating."""
    opens = "".join('{"a":' if i % 2 == 0 else "[" for i in range(depth))
    closes = "".join("}" if i % 2 == 0 else "]" for i in reversed(range(depth)))
    return opens + leaf + closes


def depth_of(value: Any) -> int:  # the recursive definition, for shallow values
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


@given(json_values)
def test_the_iterative_decoder_agrees_with_json(value: Any) -> None:
    text = json.dumps(value)
    assert _json._loads_iterative(text) == json.loads(text)
    spaced = json.dumps(value, indent=2)
    assert _json._loads_iterative(spaced) == json.loads(spaced)


@given(json_values, st.integers(min_value=0, max_value=8))
def test_deeper_than_matches_the_recursive_definition(value: Any, limit: int) -> None:
    assert deeper_than(value, limit) is (depth_of(value) > limit)


@pytest.mark.parametrize("depth", [200, 1200, 3000, 10000])
def test_any_depth_the_api_server_stores_decodes(depth: int) -> None:
    value = loads(nested(depth))
    assert deeper_than(value, depth - 1)
    assert not deeper_than(value, depth)
    with pytest.raises(TooDeep, match="kwargs is nested more than 64 levels deep"):
        check_depth(value, 64, "kwargs")


def test_bytes_and_floats() -> None:
    assert loads(b'{"x": [1.5e3, -0, "\\u00e9"]}') == {"x": [1500.0, 0, "é"]}
    deep = loads(nested(2000, leaf="2.5"))
    while isinstance(deep, dict | list):
        deep = deep["a"] if isinstance(deep, dict) else deep[0]
    assert math.isclose(deep, 2.5)


@pytest.mark.parametrize(
    "text", ["[1,]", '{"a" 1}', '{"a":1,}', "[1 2]", "[tru]", '{"a":1}x', "[", "{1:2}", ""]
)
def test_the_iterative_decoder_refuses_what_json_refuses(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    with pytest.raises(json.JSONDecodeError):
        _json._loads_iterative(text)


async def _chunks(parts: list[bytes]) -> Any:
    for part in parts:
        yield part


def _lines_of(parts: list[bytes]) -> list[bytes]:
    async def collect() -> list[bytes]:
        return [line async for line in _json.lines(_chunks(parts))]

    return asyncio.run(collect())


@given(
    st.lists(st.binary(min_size=0, max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=8),
    st.data(),
)
def test_watch_lines_come_back_whole_however_the_stream_is_cut(
    lines: list[bytes], data: st.DataObject
) -> None:
    stream = b"".join(line + b"\n" for line in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    parts = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert _lines_of(parts) == [line for line in lines if line.strip()]


def test_a_megabyte_line_and_a_last_line_without_newline() -> None:
    big = json.dumps({"items": ["x" * 1000] * 1000}).encode()
    stream = b'{"type":"ADDED"}\n\n' + big + b"\n" + b'{"type":"BOOKMARK"}'
    parts = [stream[i : i + 65536] for i in range(0, len(stream), 65536)]
    assert _lines_of(parts) == [b'{"type":"ADDED"}', big, b'{"type":"BOOKMARK"}']
