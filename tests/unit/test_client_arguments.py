"""A handler call made ready for a job: JSON values, a size limit, and the signature checked
(by the rules of tests/unit/test_arguments.py) before anything is created."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from datetime import date, datetime

import pytest
from tests.unit.test_arguments import Address, Format, report, ship

from backgroundjobs import CredentialWarning, InvalidArguments, SecretKey, handler
from backgroundjobs.client._arguments import prepare_call

pytestmark = pytest.mark.unit


@handler("test-client.mail.send")
def send_mail(to: str, subject: str, body: str = "") -> None:
    """A handler with a plain signature."""


def untyped(a, b=2):  # type: ignore[no-untyped-def]
    """A module:function handler without annotations."""


def test_a_valid_call_becomes_json_values() -> None:
    call = prepare_call(send_mail, ["a@b.c"], {"subject": "Welcome", "body": "<p>Hi</p>"})
    assert call.handler == "test-client.mail.send"
    assert call.args == ["a@b.c"]
    assert call.kwargs == {"subject": "Welcome", "body": "<p>Hi</p>"}


def test_a_registered_name_is_checked_like_the_function() -> None:
    with pytest.raises(InvalidArguments, match="missing a required argument: 'subject'"):
        prepare_call("test-client.mail.send", ["a@b.c"], {})


def test_values_are_checked_in_their_json_form() -> None:
    call = prepare_call(report, [7, date(2026, 1, 2), Format.CSV, "a", "b"], {"weight": 1.5})
    assert call.args == [7, "2026-01-02", "csv", "a", "b"]
    assert call.kwargs == {"weight": 1.5}


def test_a_model_instance_becomes_its_json_object() -> None:
    call = prepare_call(ship, [Address(street="Main", zip=1), [1, 2]], {})
    assert call.args == [{"street": "Main", "zip": 1}, [1, 2]]


class Connection:
    """A type pydantic has no validator for."""


def needs_a_connection(conn: Connection) -> None:
    """A handler the runtime cannot check the arguments of."""


def test_the_client_refuses_what_the_runtime_would_refuse() -> None:
    with pytest.raises(InvalidArguments, match="parameter 'conn' cannot be checked"):
        prepare_call(needs_a_connection, [{}], {})


def test_unannotated_handler_only_needs_json_values() -> None:
    name = f"{__name__}:untyped"
    call = prepare_call(name, [{"any": ["thing"]}], {"b": None})
    assert call.handler == name
    with pytest.raises(InvalidArguments, match="missing a required argument: 'a'"):
        prepare_call(name, [], {})


def test_unknown_handler_name_is_not_checked_but_must_be_json() -> None:
    call = prepare_call("somewhere.else", [1, "two"], {"three": [3]})
    assert (call.args, call.kwargs) == ([1, "two"], {"three": [3]})

    @dataclass
    class Opaque:
        x: int

    class NotJson:
        pass

    assert prepare_call("somewhere.else", [Opaque(1)], {}).args == [{"x": 1}]
    with pytest.raises(InvalidArguments, match="argument 0: a NotJson is not JSON-serialisable"):
        prepare_call("somewhere.else", [NotJson()], {})
    with pytest.raises(InvalidArguments, match="parameter 'when': a NotJson is not JSON"):
        prepare_call("somewhere.else", [], {"when": NotJson()})


def test_nan_is_refused() -> None:
    with pytest.raises(InvalidArguments, match="not valid JSON"):
        prepare_call("somewhere.else", [math.nan], {})


def test_arguments_over_64_kib_are_refused() -> None:
    prepare_call("somewhere.else", ["x" * 60_000], {})
    with pytest.raises(InvalidArguments, match=r"more than the 65536 allowed"):
        prepare_call("somewhere.else", ["x" * 40_000], {"more": "y" * 40_000})


def test_datetimes_become_iso_strings() -> None:
    call = prepare_call("somewhere.else", [datetime(2030, 1, 2, 3, 4, 5)], {})
    assert call.args == ["2030-01-02T03:04:05"]


def test_a_function_from_main_must_be_registered() -> None:
    def local(x: int) -> None: ...

    local.__module__ = "__main__"
    with pytest.raises(InvalidArguments, match="defined in __main__"):
        prepare_call(local, [1], {})


def test_an_unregistered_importable_function_uses_module_colon_name() -> None:
    call = prepare_call(untyped, [1], {})
    assert call.handler == f"{__name__}:untyped"


# ------------------------------------------------------------------ secrets by reference


@handler("test-client.mail.reset")
def send_reset(to: str, pin: int, link: str) -> None:
    """A handler whose link and pin come from a Secret."""


def test_secret_keys_are_references_bound_but_never_values() -> None:
    call = prepare_call(
        send_reset,
        ["a@b.c"],
        {"pin": SecretKey("reset-42", "pin"), "link": SecretKey("reset-42", "link")},
    )
    assert call.kwargs == {}
    assert call.kwargs_from_spec() == [
        {"name": "pin", "secretKeyRef": {"name": "reset-42", "key": "pin"}},
        {"name": "link", "secretKeyRef": {"name": "reset-42", "key": "link"}},
    ]
    # Still bound against the signature: a missing argument is refused before creating.
    with pytest.raises(InvalidArguments, match="missing a required argument: 'link'"):
        prepare_call(send_reset, ["a@b.c"], {"pin": SecretKey("reset-42", "pin")})
    with pytest.raises(InvalidArguments, match="argument 1 is a SecretKey"):
        prepare_call(send_reset, ["a@b.c", SecretKey("reset-42", "pin")], {"link": "x"})


def test_an_argument_that_looks_like_a_credential_warns_without_quoting_it() -> None:
    link = "https://shop.example/reset/4f9c2a7be81d44c0a6b3f0d2"
    with pytest.warns(CredentialWarning, match=r"kwargs\['link'\] .*SecretKey") as caught:
        prepare_call(send_reset, ["a@b.c"], {"pin": 1, "link": link})
    assert link not in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CredentialWarning)
        prepare_call(send_reset, ["a@b.c"], {"pin": 1, "link": SecretKey("reset-42", "link")})
        prepare_call(send_reset, ["a@b.c"], {"pin": 1, "link": "https://shop.example/help"})
