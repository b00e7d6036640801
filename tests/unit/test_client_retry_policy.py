"""``RetryPolicy`` in the client's manifests and the CLI's ``--retry-*`` flags."""

from __future__ import annotations

from datetime import timedelta

import pytest

from backgroundjobs import RetryPolicy
from backgroundjobs.cli._parser import build_parser
from backgroundjobs.cli._retry import retry_policy_of
from backgroundjobs.client._arguments import PreparedCall
from backgroundjobs.client._manifests import build_manifest
from backgroundjobs.errors import InvalidSpec

pytestmark = pytest.mark.unit


def _spec(**options: object) -> dict[str, object]:
    call = PreparedCall("mail.send", [], {})
    manifest = build_manifest(name="j", namespace="shop", call=call, **options)  # type: ignore[arg-type]
    spec: dict[str, object] = manifest["spec"]
    return spec


def test_the_policy_becomes_spec_retry_policy() -> None:
    policy = RetryPolicy(initial=timedelta(seconds=5), factor=3, max="10m", jitter=0.2)
    assert _spec(retry_policy=policy)["retryPolicy"] == {
        "backoff": {"initial": "5s", "factor": 3.0, "max": "10m", "jitter": 0.2}
    }
    assert "retryPolicy" not in _spec()


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (RetryPolicy(factor=0.5), "factor"),
        (RetryPolicy(jitter=2), "jitter"),
        (RetryPolicy(initial=timedelta(seconds=-1)), "must not be negative"),
        ({"backoff": {}}, "must be a RetryPolicy"),
    ],
)
def test_a_bad_policy_is_refused_before_anything_is_sent(policy: object, message: str) -> None:
    with pytest.raises(InvalidSpec, match=message):
        _spec(retry_policy=policy)


def test_cli_flags() -> None:
    parser = build_parser("bgjobs")
    assert retry_policy_of(parser.parse_args(["enqueue", "h"])) is None
    args = parser.parse_args(["enqueue", "h", "--retry-initial", "2s", "--retry-jitter", "0.5"])
    assert retry_policy_of(args) == RetryPolicy(initial="2s", jitter=0.5)
    args = parser.parse_args(["schedule", "h", "--delay", "1h", "--retry-factor", "4",
                              "--retry-max", "1h"])  # fmt: skip
    assert retry_policy_of(args) == RetryPolicy(factor=4.0, max="1h")
