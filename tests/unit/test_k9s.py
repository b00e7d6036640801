"""k9s/plugins.yaml, views.yaml and jumps.yaml against the shape k9s accepts (its configuration
schemas: unknown keys refused, required keys, types) and against the project: the GVRs, label
and annotations the operator uses, columns that exist in the CRD, actions marked dangerous,
commands that honour the kubeconfig and context k9s runs with."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from backgroundjobs.api import constants as c

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
K9S = REPO_ROOT / "k9s"
CRD = REPO_ROOT / "crds" / "backgroundjobs.dev_backgroundjobs.yaml"
GVR = f"{c.GROUP}/{c.VERSION}/{c.PLURAL}"

_STRINGS = {"type": "array", "items": {"type": "string"}}
# The keys and types k9s (>= 0.51) accepts in each file.
PLUGINS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["plugins"],
    "properties": {
        "plugins": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["shortCut", "description", "scopes", "command"],
                "properties": {
                    "shortCut": {"type": "string", "pattern": "^(Shift-[A-Z]|Ctrl-[A-Z]|[a-z])$"},
                    "override": {"type": "boolean"},
                    "description": {"type": "string", "minLength": 1},
                    "confirm": {"type": "boolean"},
                    "dangerous": {"type": "boolean"},
                    "scopes": {**_STRINGS, "minItems": 1},
                    "command": {"type": "string", "minLength": 1},
                    "background": {"type": "boolean"},
                    "overwriteOutput": {"type": "boolean"},
                    "args": {"type": "array", "items": {"type": ["string", "number"]}},
                },
            },
        }
    },
}
VIEWS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["views"],
    "properties": {
        "views": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["columns"],
                "properties": {"sortColumn": {"type": "string"}, "columns": _STRINGS},
            },
        }
    },
}
JUMPS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["jumps"],
    "properties": {
        "jumps": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["targetGVR"],
                "properties": {
                    "targetGVR": {"type": "string"},
                    "labelSelector": {"type": "string"},
                    "fieldSelector": {"type": "string"},
                    "targetNamespace": {"type": "string"},
                },
            },
        }
    },
}
# The variables k9s gives a plugin's arguments ($NAME, ${NAME}); any other $WORD is left to
# the shell only when k9s knows no variable of that name in upper case.
K9S_VARIABLES = {
    "NAME", "NAMESPACE", "CONTEXT", "CLUSTER", "USER", "GROUPS", "KUBECONFIG", "CONTAINER",
    "FILTER", "POD", "RESOURCE_GROUP", "RESOURCE_VERSION", "RESOURCE_NAME",
}  # fmt: skip
K9S_VARIABLE = re.compile(r"\$(?:\{!?([\w\-%/: ]+)\}|!?([\w\-]+))")


def load(name: str) -> Any:
    return yaml.safe_load((K9S / name).read_text())


def plugins() -> dict[str, Any]:
    return load("plugins.yaml")["plugins"]  # type: ignore[no-any-return]


def script(plugin: dict[str, Any]) -> str:
    assert plugin["command"] == "sh" and plugin["args"][0] == "-c", plugin
    return str(plugin["args"][1])


@pytest.mark.parametrize(
    ("name", "schema"),
    [("plugins.yaml", PLUGINS_SCHEMA), ("views.yaml", VIEWS_SCHEMA), ("jumps.yaml", JUMPS_SCHEMA)],
)
def test_files_have_the_shape_k9s_accepts(name: str, schema: dict[str, Any]) -> None:
    jsonschema.validate(load(name), schema)


def test_the_schemas_refuse_a_typo() -> None:
    """The checks above can fail: a misspelt key is refused."""
    bad = {"plugins": {"x": {**plugins()["bgj-trigger"], "dangerus": True}}}
    with pytest.raises(jsonschema.ValidationError, match="dangerus"):
        jsonschema.validate(bad, PLUGINS_SCHEMA)
    with pytest.raises(jsonschema.ValidationError, match="targetGvr"):
        jsonschema.validate({"jumps": {GVR: {"targetGvr": "batch/v1/jobs"}}}, JUMPS_SCHEMA)


def test_plugins_belong_to_the_backgroundjobs_view_with_distinct_keys() -> None:
    keys = [p["shortCut"] for p in plugins().values()]
    assert len(keys) == len(set(keys))
    for name, plugin in plugins().items():
        scope = c.QUEUE_PLURAL if name.startswith("bgjq-") else c.PLURAL
        assert plugin["scopes"] == [scope], name


@pytest.mark.parametrize(("plugin", "paused"), [("bgjq-pause", "true"), ("bgjq-resume", "false")])
def test_queue_actions_are_dangerous_confirmed_and_set_paused(plugin: str, paused: str) -> None:
    action = plugins()[plugin]
    assert action["dangerous"] is True and action["confirm"] is True
    text = script(action)
    assert 'patch backgroundjobqueues.backgroundjobs.dev "$NAME" --type merge' in text
    assert f"""-p '{{"spec":{{"paused":{paused}}}}}'""" in text


@pytest.mark.parametrize(
    ("plugin", "annotation"),
    [("bgj-trigger", c.ANNOTATION_TRIGGER), ("bgj-requeue", c.ANNOTATION_REQUEUE),
     ("bgj-cancel", c.ANNOTATION_CANCEL)],
)  # fmt: skip
def test_actions_are_dangerous_confirmed_and_write_their_annotation(
    plugin: str, annotation: str
) -> None:
    """Read-only k9s (--readonly) hides dangerous plugins: every action that changes a job."""
    action = plugins()[plugin]
    assert action["dangerous"] is True and action["confirm"] is True
    assert f'"{annotation}=$(date -u +%Y-%m-%dT%H:%M:%SZ)"' in script(action)


@pytest.mark.parametrize(("plugin", "suspend"), [("bgj-suspend", "true"), ("bgj-resume", "false")])
def test_suspend_and_resume_patch_the_spec(plugin: str, suspend: str) -> None:
    action = plugins()[plugin]
    assert action["dangerous"] is True and action["confirm"] is True
    patch = f"""-p '{{"spec":{{"suspend":{suspend},"suspendUntil":null}}}}'"""
    assert "--type merge" in script(action) and patch in script(action)


def test_only_the_actions_change_anything() -> None:
    for name, plugin in plugins().items():
        changes = any(verb in script(plugin) for verb in (" annotate ", " delete ", " patch "))
        assert changes == bool(plugin.get("dangerous")), name


def test_every_command_uses_the_kubeconfig_and_context_k9s_runs_with() -> None:
    for name, plugin in plugins().items():
        text = script(plugin)
        assert text.startswith('[ -z "$KUBECONFIG" ] || export KUBECONFIG="$KUBECONFIG";'), name
        calls = re.findall(r"\b(kubectl|bgjobs)\b([^;|]*)", text.split(";", 1)[1])
        assert calls, name
        for tool, rest in calls:
            assert '--context "$CONTEXT"' in rest, f"{name}: {tool}{rest}"


def test_plugin_arguments_use_only_variables_k9s_knows_or_leaves_to_the_shell() -> None:
    for name, plugin in plugins().items():
        for arg in plugin["args"]:
            for braced, bare in K9S_VARIABLE.findall(str(arg)):
                var = braced or bare
                if var.isupper():
                    assert var in K9S_VARIABLES, f"{name}: ${var} is no k9s variable"
                else:  # a shell variable: k9s must not know it
                    assert var.upper() not in K9S_VARIABLES, f"{name}: k9s replaces ${var}"


def crd_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    (version,) = crd["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def test_view_is_for_the_crd_and_its_columns_exist() -> None:
    views = load("views.yaml")["views"]
    assert list(views) == [GVR]
    schema = crd_schema()
    printer = {
        col["name"].upper()
        for col in yaml.safe_load(CRD.read_text())["spec"]["versions"][0][
            "additionalPrinterColumns"
        ]
    }
    for column in views[GVR]["columns"]:
        name, _, rest = column.partition(":")
        path = rest.split("|")[0]
        if not path:
            assert name in printer | {"NAMESPACE", "NAME", "AGE"}, column
            continue
        node = schema
        for part in path.strip(".").split("."):
            node = node["properties"][part]  # KeyError: a column of a field the CRD lacks
    assert views[GVR]["sortColumn"].split(":")[0] in {
        c.split(":")[0] for c in views[GVR]["columns"]
    }


def test_jump_opens_the_jobs_the_operator_labels() -> None:
    jumps = load("jumps.yaml")["jumps"]
    assert list(jumps) == [GVR]
    jump = jumps[GVR]
    assert jump["targetGVR"] == "batch/v1/jobs"
    assert jump["labelSelector"] == f"{c.LABEL_NAME}={{{{.metadata.name}}}}"
    assert "targetNamespace" not in jump  # the BackgroundJob's own namespace
