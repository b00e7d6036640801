"""The one rule set for a handler's arguments (backgroundjobs._arguments), which the client
applies before a job is created and the runtime before the handler runs."""

from __future__ import annotations

from datetime import date
from enum import Enum
from typing import Any

import pydantic
import pytest

from backgroundjobs._arguments import bind_arguments
from backgroundjobs.errors import InvalidArguments

pytestmark = pytest.mark.unit


def send_mail(to: str, subject: str, body: str = "") -> None:
    """A plain signature."""


class Format(Enum):
    PDF = "pdf"
    CSV = "csv"


class Address(pydantic.BaseModel):
    street: str
    zip: int


async def report(
    user_id: int, day: date, fmt: Format = Format.PDF, *tags: str, **extra: float
) -> str:
    """An async handler with *args, **kwargs, enums and dates."""
    return ""


def ship(address: Address, items: list[int]) -> None:
    """A model and a list."""


def untyped(a, b=2):  # type: ignore[no-untyped-def]
    """No annotations."""


class Opaque:
    """A class pydantic has no validator for."""


def takes_opaque(thing: Opaque) -> None:
    """An annotation that cannot be checked."""


def forward(x: UnknownType) -> None:  # type: ignore[name-defined]  # noqa: F821
    """An annotation that cannot be resolved."""


def problems(fn: Any, args: list[Any], kwargs: dict[str, Any] | None = None) -> str:
    with pytest.raises(InvalidArguments) as err:
        bind_arguments(fn, "h", args, kwargs or {})
    return str(err.value)


def test_arguments_must_bind_to_the_signature() -> None:
    assert problems(send_mail, ["a@b.c"], {"body": "x"}) == (
        "handler h: missing a required argument: 'subject'"
    )
    assert "unexpected keyword argument 'cc'" in problems(
        send_mail, ["a"], {"subject": "s", "cc": "x"}
    )
    assert "too many positional arguments" in problems(send_mail, ["a", "b", "c", "d"])


def test_a_wrong_type_names_the_parameter_and_the_value() -> None:
    assert problems(send_mail, [42], {"subject": "s"}) == (
        "handler h: parameter 'to': Input should be a valid string (got 42)"
    )


def test_every_problem_is_reported() -> None:
    message = problems(ship, [{"street": 1, "zip": "abc"}, ["one", 2, "three"]])
    assert "parameter 'address' at street: Input should be a valid string (got 1)" in message
    assert "parameter 'address' at zip: Input should be a valid integer" in message
    assert "parameter 'items' at 0: Input should be a valid integer" in message
    assert "parameter 'items' at 2: Input should be a valid integer" in message


def test_values_are_coerced_by_their_annotations() -> None:
    args, kwargs = bind_arguments(ship, "h", [{"street": "Main", "zip": "1"}, ["2", 3]], {})
    assert args == (Address(street="Main", zip=1), [2, 3])
    assert kwargs == {}
    args, _ = bind_arguments(report, "h", [7, "2026-01-02", "csv", "a"], {})
    assert args == (7, date(2026, 1, 2), Format.CSV, "a")


def test_var_positional_and_var_keyword_items_are_each_checked() -> None:
    args, kwargs = bind_arguments(report, "h", [7, "2026-01-02", "pdf", "x", "y"], {"w": "1.5"})
    assert args[3:] == ("x", "y")
    assert kwargs == {"w": 1.5}
    assert "parameter 'tags[1]': Input should be a valid string" in problems(
        report, [7, "2026-01-02", "pdf", "ok", 5]
    )
    assert "parameter 'weight': Input should be a valid number" in problems(
        report, [7, "2026-01-02"], {"weight": "heavy"}
    )


def test_an_enum_value_outside_the_enum() -> None:
    assert "parameter 'fmt': Input should be 'pdf' or 'csv'" in problems(
        report, [7, "2026-01-02", "xls"]
    )


def test_unannotated_any_and_unresolvable_parameters_are_not_checked() -> None:
    assert bind_arguments(untyped, "h", [{"any": ["thing"]}], {"b": None}) == (
        ({"any": ["thing"]}, None),
        {},
    )
    assert bind_arguments(forward, "h", [object], {}) == ((object,), {})


def test_an_annotation_pydantic_cannot_validate_is_refused_not_skipped() -> None:
    # the runtime cannot check it either: accepting it at enqueue would make a job that
    # fails for good in its pod
    assert "parameter 'thing' cannot be checked: pydantic cannot validate" in problems(
        takes_opaque, [{}]
    )


def test_a_callable_without_a_signature_is_called_as_given() -> None:
    assert bind_arguments(print, "h", ["x"], {"sep": "-"}) == (("x",), {"sep": "-"})
