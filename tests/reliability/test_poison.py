"""Hostile objects beside ordinary work: the operator never exits, every ordinary job
succeeds, and each hostile object is refused by the API server or ends ``Failed``/
``InvalidSpec`` with one Warning within 30 s (a hostile result: stored as a string with a
Warning). One SIGKILL in the middle: the restarted operator meets them all again at once.

``RELIABILITY_SCALE`` scales the 100 ordinary jobs.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

from kubernetes import client
from tests.integration.bgj import MESSAGE, Jobs, manifest, wait_for
from tests.reliability.conftest import OperatorFactory, scaled
from tests.reliability.scenario import bgj_text, create_raw, nested_json

from backgroundjobs import _json
from backgroundjobs.api import constants as c

INVALID_WITHIN = 30.0


@dataclass
class Poison:
    name: str
    text: str  # the object as JSON text
    message: str  # what the Failed condition's message must contain ("" = any)
    # Why it fails: InvalidSpec, or PolicyDenied for a pod the operator's pod policy refuses
    # before any Job is made (docs/SECURITY.md; the policy is on by default)
    reason: str = "InvalidSpec"
    created_at: float = 0.0
    stored: bool = False
    answer: str = ""


def poisons() -> list[Poison]:
    tag = uuid.uuid4().hex[:4]
    out = []
    for depth in (200, 600, 1200, 3000, 9990):
        out.append(
            Poison(
                f"deep-kwargs-{depth}-{tag}",
                bgj_text(f"deep-kwargs-{depth}-{tag}", f'"kwargs":{{"x":{nested_json(depth)}}}'),
                "nested more than",
            )
        )
    out.append(
        Poison(
            f"deep-args-{tag}",
            bgj_text(f"deep-args-{tag}", f'"args":[{nested_json(3000)}]'),
            "nested more than",
        )
    )
    out.append(
        Poison(
            f"deep-pod-{tag}",
            bgj_text(
                f"deep-pod-{tag}",
                f'"podTemplate":{{"spec":{{"affinity":{{"x":{nested_json(3000)}}}}}}}',
            ),
            "",
        )
    )
    big = "x" * (1600 * 1024)
    huge = f"huge-kwargs-{tag}"
    out.append(Poison(huge, bgj_text(huge, f'"kwargs":{{"x":"{big}"}}'), ""))
    out.append(
        Poison(
            f"bad-container-{tag}",
            bgj_text(
                f"bad-container-{tag}",
                '"podTemplate":{"spec":{"containers":[{"name":"Bad_Name","image":"x"}]}}',
            ),
            "spec.podTemplate.spec.containers",
            reason="PolicyDenied",
        )
    )
    out.append(
        Poison(
            f"bad-selector-{tag}",
            bgj_text(
                f"bad-selector-{tag}",
                '"podTemplate":{"metadata":{"labels":'
                '{"batch.kubernetes.io/controller-uid":"not-this-job"}}}',
            ),
            "",
        )
    )
    out.append(
        Poison(f"bad-cron-{tag}", bgj_text(f"bad-cron-{tag}", '"schedule":"61 * * * *"'), "")
    )
    out.append(
        Poison(
            f"bad-zone-{tag}",
            bgj_text(f"bad-zone-{tag}", '"schedule":"@daily","timeZone":"Mars/Olympus"'),
            "",
        )
    )
    out.append(
        Poison(
            f"late-{tag}",
            bgj_text(f"late-{tag}", '"runAt":"9999-12-31T23:00:00-05:00"'),
            "",
        )
    )
    out.append(
        Poison(
            f"self-parent-{tag}",
            bgj_text(f"self-parent-{tag}", f'"after":{{"name":"self-parent-{tag}"}}'),
            "",
        )
    )
    # continuation cycles: a -> b -> a, and ten in a ring
    for ring, size in (("pair", 2), ("ring", 10)):
        names = [f"{ring}-{i}-{tag}" for i in range(size)]
        for i, name in enumerate(names):
            parent = names[(i + 1) % size]
            out.append(Poison(name, bgj_text(name, f'"after":{{"name":"{parent}"}}'), "cycle"))
    return out


def test_poison_objects_beside_ordinary_jobs(
    operators: OperatorFactory,
    api_client: client.ApiClient,
    kubeconfig: str,
    namespace: str,
) -> None:
    op = operators("poison", namespaces=[namespace])
    op.start()
    jobs = Jobs(api_client, namespace)
    ordinary = [f"ok-{i}" for i in range(scaled(100, minimum=10))]
    hostile = poisons()
    # hostile results: the handler's termination message is not a value the status can hold
    results = {
        "result-nan": "NaN",
        "result-inf": "[1e999]",
        "result-deep": "[" * 1500 + "]" * 1500,
    }
    waiting = list(hostile)
    every = max(1, len(ordinary) // (len(waiting) + 1))

    def create_next() -> None:
        p = waiting.pop(0)
        p.created_at = time.monotonic()
        p.stored, p.answer = create_raw(kubeconfig, namespace, p.text)

    for i, name in enumerate(ordinary):
        jobs.create(manifest(name, args=[i]))
        if i % every == 0 and waiting:
            create_next()
        if i == len(ordinary) // 2:
            op.kill()  # one SIGKILL with poison stored
            op.start()
    while waiting:
        create_next()
    for name, message in results.items():
        jobs.create(manifest(name, pod_annotations={MESSAGE: message}))

    # every ordinary job succeeds
    for name in ordinary:
        jobs.wait_phase(name, "Succeeded", timeout=300)

    # each hostile object: refused, or InvalidSpec (PolicyDenied) within 30 s with one Warning
    for p in hostile:
        if not p.stored:
            assert "invalid" in p.answer.lower() or "error" in p.answer.lower(), p.answer
            continue
        remaining = max(1.0, INVALID_WITHIN - (time.monotonic() - p.created_at))
        status = wait_for(
            f"{p.name} to end Failed/{p.reason}",
            lambda p=p: _invalid(jobs, p.name, p.reason),
            timeout=remaining,
            interval=0.5,
        )
        failed = next(c for c in status["conditions"] if c["type"] == "Failed")
        assert p.message in failed["message"], (p.name, failed["message"])
        # Events are posted after the status is written: wait for the Warning, then check
        # that there is one
        wait_for(
            f"{p.name}'s {p.reason} Warning",
            lambda p=p: _warnings(jobs, p.name, p.reason),
            timeout=10,
            interval=0.5,
        )
        warnings = _warnings(jobs, p.name, p.reason)
        assert len(warnings) == 1, (p.name, warnings)

    # hostile results are kept as text, with a Warning
    for name, message in results.items():
        status = jobs.wait_phase(name, "Succeeded", timeout=120)
        assert status["result"] == message, name
        assert any(e.type == "Warning" for e in jobs.events(name)), name

    # the operator never exited but for the kill
    assert op.starts == 2
    assert op.proc is not None and op.proc.poll() is None, op.log_tail()


def _warnings(jobs: Jobs, name: str, reason: str) -> list[str]:
    return [e.message for e in jobs.events(name) if e.type == "Warning" and e.reason == reason]


def _status(jobs: Jobs, name: str) -> dict:
    """The status of a poison object: read raw and decoded without recursion (the client's
    own decoding fails on the objects nested deepest)."""
    resp = jobs.custom.get_namespaced_custom_object(
        c.GROUP, c.VERSION, jobs.ns, c.PLURAL, name, _preload_content=False
    )
    return _json.loads(resp.data).get("status") or {}


def _invalid(jobs: Jobs, name: str, reason: str) -> dict | None:
    status = _status(jobs, name)
    for cond in status.get("conditions") or []:
        if cond["type"] == "Failed" and cond["status"] == "True":
            assert cond["reason"] == reason, (name, cond)
            return status
    return None


def test_json_texts_are_what_they_claim() -> None:
    """The poison texts are valid JSON of the depth they claim (else the test proves little)."""
    from backgroundjobs._json import deeper_than, loads

    for p in poisons():
        body = loads(p.text)
        assert body["metadata"]["name"] == p.name
    assert deeper_than(loads(nested_json(3000)), 2999)
    assert json.loads(nested_json(10)) == {"a": [{"a": [{"a": [{"a": [{"a": [1]}]}]}]}]}
