"""The misfire policy in the client (``misfire=``, ``max_catch_up=``), the CLI
(``--misfire``, ``--max-catch-up``) and ``bgjobs describe``."""

from __future__ import annotations

import pytest

from backgroundjobs import InvalidSpec
from backgroundjobs.cli._parser import build_parser
from backgroundjobs.cli.render.misfire import misfire_lines
from backgroundjobs.client._arguments import prepare_call
from backgroundjobs.client._manifests import build_manifest
from backgroundjobs.client._misfire import misfire_spec
from backgroundjobs.errors import InvalidArguments

pytestmark = pytest.mark.unit

CALL = prepare_call("report.nightly", [], {})


def recurring_manifest(policy: str | None, max_catch_up: int | None) -> dict[str, object]:
    when = {"schedule": "0 2 * * *", "timeZone": "UTC", **misfire_spec(policy, max_catch_up)}
    return build_manifest(name="nightly", namespace="shop", call=CALL, when=when)


def test_client_puts_the_policy_in_the_spec() -> None:
    spec = recurring_manifest("All", 5)["spec"]
    assert spec["misfire"] == {"policy": "All", "maxCatchUp": 5}  # type: ignore[index]
    assert recurring_manifest("Skip", None)["spec"]["misfire"] == {"policy": "Skip"}  # type: ignore[index]
    assert "misfire" not in recurring_manifest(None, None)["spec"]  # type: ignore[operator]


@pytest.mark.parametrize(
    ("policy", "max_catch_up", "error", "match"),
    [
        ("Strict", None, InvalidArguments, "misfire must be one of Latest, Skip, All"),
        ("Skip", 3, InvalidArguments, "max_catch_up is only for misfire='All'"),
        (None, 3, InvalidArguments, "max_catch_up is only for"),
        ("All", 0, InvalidSpec, "maxCatchUp"),
        ("All", 101, InvalidSpec, "maxCatchUp"),
    ],
)
def test_client_refuses_bad_values_by_name(
    policy: str | None, max_catch_up: int | None, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        recurring_manifest(policy, max_catch_up)


def test_cli_flags() -> None:
    args = build_parser().parse_args(
        [
            *("recurring", "add", "nightly", "report.nightly", "--cron", "0 2 * * *"),
            *("--misfire", "All", "--max-catch-up", "4"),
        ]
    )
    assert (args.misfire, args.max_catch_up) == ("All", 4)
    plain = build_parser().parse_args(["recurring", "add", "n", "h", "--cron", "@daily"])
    assert (plain.misfire, plain.max_catch_up) == (None, None)
    with pytest.raises(SystemExit):
        build_parser().parse_args(
            ["recurring", "add", "n", "h", "--cron", "@daily", "--misfire", "x"]
        )


def test_describe_shows_the_policy_and_the_times() -> None:
    lines = misfire_lines(
        {"schedule": "* * * * *", "misfire": {"policy": "All", "maxCatchUp": 3}},
        {
            "misfire": {
                "caughtUp": 2,
                "skipped": 1,
                "lastCaughtUp": ["2030-01-01T12:01:00Z", "2030-01-01T12:02:00Z"],
                "lastSkipped": ["2030-01-01T12:03:00Z"],
            }
        },
    )
    assert lines == [
        "Misfire:    All (at most 3 catch-ups waiting); 2 caught up, 1 skipped",
        "            caught up: 2030-01-01T12:01:00Z, 2030-01-01T12:02:00Z",
        "            skipped: 2030-01-01T12:03:00Z",
    ]
    assert misfire_lines({"schedule": "* * * * *"}, {}) == []
    assert misfire_lines({}, {"misfire": {"skipped": 4}})[0].endswith("0 caught up, 4 skipped")
