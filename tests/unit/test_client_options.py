"""The create methods' options, declared once (client/_options.py) and shown in every
signature: what ``help()``, ``inspect`` and the sync facade see."""

from __future__ import annotations

import inspect

import pytest

from backgroundjobs.client import AsyncClient, Client
from backgroundjobs.client._options import JobOptions, split_options
from backgroundjobs.errors import InvalidArguments

pytestmark = pytest.mark.unit

CREATE_METHODS = ("enqueue", "schedule", "continue_with", "add_or_update_recurring", "enqueue_many")


def keyword_only(method: object) -> list[str]:
    return [
        p.name
        for p in inspect.signature(method).parameters.values()  # type: ignore[arg-type]
        if p.kind is p.KEYWORD_ONLY
    ]


@pytest.mark.parametrize("name", CREATE_METHODS)
def test_every_create_method_declares_the_options(name: str) -> None:
    method = getattr(AsyncClient, name)
    params = list(inspect.signature(method).parameters.values())
    assert params[-1].kind is inspect.Parameter.VAR_KEYWORD  # the handler's keyword arguments
    options = [o for o in JobOptions.__annotations__ if o in keyword_only(method)]
    expected = [o for o in JobOptions.__annotations__ if not (o == "name" and name in (
        "add_or_update_recurring", "enqueue_many"))]  # fmt: skip
    assert options == expected
    assert all(inspect.signature(method).parameters[o].default is None for o in options)
    assert inspect.signature(getattr(Client, name)) == inspect.signature(method)


def test_the_method_own_keywords_come_before_the_options() -> None:
    assert keyword_only(AsyncClient.schedule)[:2] == ["delay", "at"]
    assert keyword_only(AsyncClient.add_or_update_recurring)[:2] == ["cron", "time_zone"]


def test_options_are_taken_out_of_the_handler_keyword_arguments() -> None:
    options, handler = split_options(
        {"queue": "critical", "retries": None, "subject": "Hi", "handler_kwargs": {"image": "x"}}
    )
    assert options == {"queue": "critical"}  # None means: not given
    assert handler == {"subject": "Hi", "image": "x"}
    options, handler = split_options({"name": "a-job", "to": "a@b.c"}, without=("name",))
    assert options == {} and handler == {"name": "a-job", "to": "a@b.c"}
    with pytest.raises(InvalidArguments, match="'subject' is given twice"):
        split_options({"subject": "a", "handler_kwargs": {"subject": "b"}})
