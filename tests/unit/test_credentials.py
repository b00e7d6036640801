"""Which arguments the client warns about as credentials: secrets by name or by shape, and
ordinary data left alone; the finding names where, never the value."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backgroundjobs._credentials import _SHAPES, credential_findings

pytestmark = pytest.mark.unit

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("args", "kwargs", "where", "why"),
    [
        ([], {"password": "hunter2"}, "kwargs['password']", "its name"),
        ([], {"reset_token": "x1"}, "kwargs['reset_token']", "its name"),
        ([], {"smtp": {"api_key": "k"}}, "kwargs['smtp']['api_key']", "its name"),
        ([], {"clientSecret": "c"}, "kwargs['clientSecret']", "its name"),
        ([JWT], {}, "args[0]", "a JSON Web Token"),
        (["Bearer abcdefghijklmnopqrstuvwx"], {}, "args[0]", "a bearer token"),
        ([], {"dsn": "postgres://app:pw@db:5432/x"}, "kwargs['dsn']", "a URL with a password"),
        (
            [],
            {"body": "Click https://shop.example/login?token=0123456789abcdef to sign in"},
            "kwargs['body']",
            "a URL with a token",
        ),
        (
            [],
            {"body": "Use https://shop.example/reset/Zk2n3b4v5c6x7z8a9s0d within an hour"},
            "kwargs['body']",
            "a one-time link",
        ),
        (
            [["-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl..."]],
            {},
            "args[0][0]",
            "a private key",
        ),
        ([], {"key": "AKIAABCDEFGHIJKLMNOP"}, "kwargs['key']", "an API key"),
    ],
)
def test_credentials_are_found_and_located(
    args: list[Any], kwargs: dict[str, Any], where: str | None, why: str | None
) -> None:
    found = credential_findings(args, kwargs)
    if where is None:
        assert found == []
        return
    assert len(found) == 1, found
    assert found[0].startswith(where) and why in found[0]


def test_findings_never_quote_the_value() -> None:
    (finding,) = credential_findings([], {"password": "hunter2-value"})
    assert "hunter2-value" not in finding


@pytest.mark.parametrize(
    "kwargs",
    [
        {"to": "new.user@example.com", "subject": "Welcome", "body": "<h1>Hi!</h1>"},
        {"token_count": 3, "password": "", "secret": None, "tokens": ["a", "b"]},
        {"url": "https://shop.example/orders/12345?page=2&sort=desc"},
        {"link": "https://shop.example/reset/abc"},  # too short to be a one-time token
        {"report": {"title": "Monthly", "user_id": 42, "passwords_changed": 7}},
        {"path": "/data/reports/2026-11.pdf", "key": "reports/2026-11.pdf"},
    ],
)
def test_ordinary_data_is_left_alone(kwargs: dict[str, Any]) -> None:
    assert credential_findings(["a@b.c", 1, None], kwargs) == []


# The textbook forms of the two shapes whose scans were quadratic (each start rescanned the
# rest of the value): the linear checks must find exactly what these find.
_JWT_TEXTBOOK = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.")
_URL_TEXTBOOK = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@")
_PIECES = ["eyJ", "eyJhbGciOiJIUzI1NiJ9", "a", "Z9", "-", "_", ".", " ", "x.", "://", ":", "@"]


def _shape(why: str) -> Any:
    return next(check for name, check in _SHAPES if name == why)


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=16).map("".join))
def test_the_linear_token_check_finds_what_the_textbook_pattern_finds(value: str) -> None:
    assert bool(_shape("a JSON Web Token")(value)) == bool(_JWT_TEXTBOOK.search(value))


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from([*_PIECES, "postgres", "u", "pw"]), max_size=12).map("".join))
def test_the_bounded_scheme_finds_what_the_textbook_pattern_finds(value: str) -> None:
    """Schemes here are shorter than the bound of 32 characters (as real ones are)."""
    assert bool(_shape("a URL with a password")(value)) == bool(_URL_TEXTBOOK.search(value))


@pytest.mark.parametrize(
    "value",
    ["a" * 500_000, "eyJ-" * 125_000, "/reset" + "a" * 500_000, "x://" + "a" * 500_000],
)
def test_half_a_megabyte_of_hostile_text_is_checked_and_left_alone(value: str) -> None:
    """Values shaped to make the old patterns rescan the rest from each start (about ten
    minutes each at this size); the cost is measured by bench/credentials_scan.py, not here."""
    assert credential_findings([value], {}) == []
