"""Operator configuration from BACKGROUNDJOBS_* environment variables (API.md §6)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from backgroundjobs import __version__
from backgroundjobs.controller import settings as settings_module
from backgroundjobs.controller.settings import DEFAULT_IMAGE, QueueConfig, Settings, load

pytestmark = pytest.mark.unit


def test_defaults_from_an_empty_environment() -> None:
    s = load({})
    assert s.namespaces == ()
    assert s.clusterwide
    assert s.default_image == DEFAULT_IMAGE
    assert s.default_image.endswith(f":{__version__}")
    assert s.retention == timedelta(hours=168)
    assert dict(s.queues) == {}
    assert s.metrics_port == 8080
    assert s.log_format == "text"
    assert s.workers == 32
    assert s.events == "all"
    assert s.status_hold == 10.0
    assert s.leader_election is False
    assert s.lease_name == "backgroundjobs-operator"
    assert s.lease_duration == 15.0
    assert s.pod_policy_check is True
    assert s.pod_policy.admission is None and not s.pod_policy.service_accounts
    assert s.pod_start_grace == timedelta(seconds=60)
    assert s.unschedulable_timeout is None


def test_load_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKGROUNDJOBS_RETENTION", "2h")
    monkeypatch.setenv("BACKGROUNDJOBS_DEFAULT_IMAGE", "registry.local/jobs:1")
    s = load()
    assert s.retention == timedelta(hours=2)
    assert s.default_image == "registry.local/jobs:1"


def test_every_value_parsed() -> None:
    s = load(
        {
            "BACKGROUNDJOBS_NAMESPACES": " shop , billing,,",
            "BACKGROUNDJOBS_DEFAULT_IMAGE": " example.com/img:2 ",
            "BACKGROUNDJOBS_RETENTION": "1h30m",
            "BACKGROUNDJOBS_QUEUES": (
                '{"critical": {"priorityClassName": "high", "maxConcurrency": 10},'
                ' "bulk": {"maxConcurrency": 2}, "plain": {}}'
            ),
            "BACKGROUNDJOBS_METRICS_PORT": "9090",
            "BACKGROUNDJOBS_LOG_FORMAT": "JSON",
            "BACKGROUNDJOBS_WORKERS": "4",
            "BACKGROUNDJOBS_EVENTS": "failures",
            "BACKGROUNDJOBS_STATUS_HOLD": "0",
            "BACKGROUNDJOBS_LEADER_ELECTION": "true",
            "BACKGROUNDJOBS_LEASE_NAME": "my-lease",
            "BACKGROUNDJOBS_LEASE_NAMESPACE": "ops",
            "BACKGROUNDJOBS_LEASE_DURATION": "7.5",
            "BACKGROUNDJOBS_POD_START_GRACE": "5m",
            "BACKGROUNDJOBS_UNSCHEDULABLE_TIMEOUT": "1h",
        }
    )
    assert s.namespaces == ("shop", "billing")
    assert not s.clusterwide
    assert s.default_image == "example.com/img:2"
    assert s.retention == timedelta(minutes=90)
    assert s.queue("critical") == QueueConfig("high", 10)
    assert s.queue("bulk") == QueueConfig(None, 2)
    assert s.queue("plain") == QueueConfig(None, None)
    assert s.queue("unknown") == QueueConfig(None, None)
    assert s.metrics_port == 9090
    assert s.log_format == "json"
    assert s.workers == 4
    assert s.events == "failures"
    assert s.status_hold == 0.0
    assert s.leader_election is True
    assert s.lease_name == "my-lease"
    assert s.lease_namespace == "ops"
    assert s.lease_duration == 7.5
    assert s.pod_start_grace == timedelta(minutes=5)
    assert s.unschedulable_timeout == timedelta(hours=1)


@pytest.mark.parametrize("value", ["0", "0s", ""])
def test_an_unschedulable_timeout_of_zero_waits_for_ever(value: str) -> None:
    assert load({"BACKGROUNDJOBS_UNSCHEDULABLE_TIMEOUT": value}).unschedulable_timeout is None


@pytest.mark.parametrize("value", ["", "*", " * ", "*,"])
def test_all_namespaces(value: str) -> None:
    s = load({"BACKGROUNDJOBS_NAMESPACES": value})
    assert s.namespaces == ()
    assert s.clusterwide


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("yes", True), ("TRUE", True), ("false", False), ("0", False), ("no", False)],
)
def test_leader_election_booleans(value: str, expected: bool) -> None:
    assert load({"BACKGROUNDJOBS_LEADER_ELECTION": value}).leader_election is expected


def test_metrics_port_zero_disables() -> None:
    assert load({"BACKGROUNDJOBS_METRICS_PORT": "0"}).metrics_port == 0


def test_queues_blank_is_empty() -> None:
    assert dict(load({"BACKGROUNDJOBS_QUEUES": "  "}).queues) == {}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("LOG_FORMAT", "xml", r"BACKGROUNDJOBS_LOG_FORMAT must be json or text"),
        ("EVENTS", "some", r"BACKGROUNDJOBS_EVENTS must be all or failures"),
        ("RETENTION", "7d", r"BACKGROUNDJOBS_RETENTION: invalid duration '7d'"),
        ("RETENTION", "-1h", r"BACKGROUNDJOBS_RETENTION: invalid duration"),
        ("QUEUES", "{not json", r"BACKGROUNDJOBS_QUEUES is not valid JSON"),
        ("QUEUES", "[1, 2]", r"BACKGROUNDJOBS_QUEUES must be a JSON object"),
        ("QUEUES", '{"critical": 5}', r"BACKGROUNDJOBS_QUEUES\['critical'\] must be an object"),
        (
            "QUEUES",
            '{"critical": {"maxConcurrency": 0}}',
            r"BACKGROUNDJOBS_QUEUES\['critical'\]\.maxConcurrency must be an int >= 1",
        ),
        (
            "QUEUES",
            '{"critical": {"maxConcurrency": "10"}}',
            r"BACKGROUNDJOBS_QUEUES\['critical'\]\.maxConcurrency",
        ),
        (
            "QUEUES",
            '{"critical": {"maxConcurrency": 2.5}}',
            r"BACKGROUNDJOBS_QUEUES\['critical'\]\.maxConcurrency",
        ),
        (
            "QUEUES",
            '{"critical": {"maxConcurrency": true}}',
            r"BACKGROUNDJOBS_QUEUES\['critical'\]\.maxConcurrency",
        ),
        ("METRICS_PORT", "http", r"BACKGROUNDJOBS_METRICS_PORT must be an integer.*'http'"),
        ("METRICS_PORT", "-1", r"BACKGROUNDJOBS_METRICS_PORT"),
        ("METRICS_PORT", "70000", r"BACKGROUNDJOBS_METRICS_PORT must be a port <= 65535"),
        ("WORKERS", "many", r"BACKGROUNDJOBS_WORKERS must be an integer.*'many'"),
        ("WORKERS", "0", r"BACKGROUNDJOBS_WORKERS must be an integer >= 1"),
        ("STATUS_HOLD", "-1", r"BACKGROUNDJOBS_STATUS_HOLD must be a number >= 0"),
        ("STATUS_HOLD", "10s", r"BACKGROUNDJOBS_STATUS_HOLD must be a number.*'10s'"),
        ("LEASE_DURATION", "soon", r"BACKGROUNDJOBS_LEASE_DURATION must be a number.*'soon'"),
        ("LEASE_DURATION", "nan", r"BACKGROUNDJOBS_LEASE_DURATION"),
        ("LEASE_DURATION", "0", r"BACKGROUNDJOBS_LEASE_DURATION"),
        ("POD_START_GRACE", "1 minute", r"BACKGROUNDJOBS_POD_START_GRACE: invalid duration"),
        ("UNSCHEDULABLE_TIMEOUT", "never", r"BACKGROUNDJOBS_UNSCHEDULABLE_TIMEOUT: invalid"),
        ("LEADER_ELECTION", "maybe", r"BACKGROUNDJOBS_LEADER_ELECTION must be true or false"),
        ("POD_POLICY_CHECK", "off", r"BACKGROUNDJOBS_POD_POLICY_CHECK must be true or false"),
        ("POD_POLICY", '{"exempt": ["root"]}', r"BACKGROUNDJOBS_POD_POLICY.exempt: unknown rules"),
    ],
)
def test_bad_values_raise_naming_the_variable(key: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load({f"BACKGROUNDJOBS_{key}": value})


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(AttributeError):
        s.workers = 3  # type: ignore[misc]


def test_the_operators_namespace_and_kube_system_are_not_served_unless_listed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings_module, "service_account_namespace", lambda: "bgj-system")
    default = load({})
    assert default.exclude_namespaces == ("bgj-system", "kube-system")
    assert not default.serves("bgj-system") and not default.serves("kube-system")
    assert default.serves("shop")
    every = load({"BACKGROUNDJOBS_EXCLUDE_NAMESPACES": ""})
    assert every.serves("kube-system") and every.serves("bgj-system")
    listed = load({"BACKGROUNDJOBS_NAMESPACES": "shop,kube-system"})
    assert listed.serves("kube-system")  # explicit (only listed namespaces are watched)


def test_the_pod_policy_settings() -> None:
    s = load(
        {
            "BACKGROUNDJOBS_POD_POLICY": '{"serviceAccounts": {"shop": ["mailer"]},'
            ' "admission": {"policy": "p", "binding": "b"}}',
            "BACKGROUNDJOBS_POD_POLICY_CHECK": "false",
        }
    )
    assert s.pod_policy.service_accounts == {"shop": frozenset({"mailer"})}
    assert s.pod_policy.admission is not None and s.pod_policy.admission.binding == "b"
    assert s.pod_policy_check is False
    assert load({"BACKGROUNDJOBS_POD_POLICY_CHECK": ""}).pod_policy_check is True


def test_queue_admission_settings() -> None:
    defaults = load({})
    assert (defaults.max_running, defaults.concurrency_key_limit, defaults.queue_aging) == (
        None,
        1,
        60.0,
    )
    cfg = load(
        {
            "BACKGROUNDJOBS_MAX_RUNNING": "40",
            "BACKGROUNDJOBS_CONCURRENCY_KEY_LIMIT": "2",
            "BACKGROUNDJOBS_QUEUE_AGING": "0",
        }
    )
    assert (cfg.max_running, cfg.concurrency_key_limit, cfg.queue_aging) == (40, 2, 0.0)
    with pytest.raises(ValueError, match="BACKGROUNDJOBS_CONCURRENCY_KEY_LIMIT"):
        load({"BACKGROUNDJOBS_CONCURRENCY_KEY_LIMIT": "0"})
    with pytest.raises(ValueError, match="BACKGROUNDJOBS_MAX_RUNNING"):
        load({"BACKGROUNDJOBS_MAX_RUNNING": "-1"})
