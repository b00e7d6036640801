"""What `make dist` builds, installed as a user installs it: the wheel into fresh virtual
environments (dependencies resolved from the package index, so an undeclared one shows) and
the chart package into the cluster, its CRD applied from the package (no checkout).

Needs the package index (PyPI) besides the cluster; pip's cache makes a second run quick.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
import uuid
import venv
import zipfile
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from tests.integration.test_chart import exists, helm_in
from tests.integration.test_rbac import kubectl
from tests.unit.test_chart_render import CHART, HELM, helm

from backgroundjobs.api import constants as c

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
CHART_VERSION = yaml.safe_load((CHART / "Chart.yaml").read_text())["version"]
CRD_FILE = REPO_ROOT / "crds" / "backgroundjobs.dev_backgroundjobs.yaml"


def run(*args: str | Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dist/ as `make dist` makes it, without the images (tests/e2e covers those)."""
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        ["bash", str(REPO_ROOT / "hack" / "dist.sh")],
        env={**os.environ, "DIST": str(out), "DIST_IMAGES": "0",
             "VENV": str(Path(sys.executable).parent.parent)},
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    return out


def fresh_venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    return path / "bin"


def test_dist_holds_wheel_sdist_chart_and_checksums(dist: Path) -> None:
    names = sorted(p.name for p in dist.iterdir())
    assert names == sorted([
        f"backgroundjobs-{VERSION}-py3-none-any.whl",
        f"backgroundjobs-{VERSION}.tar.gz",
        f"backgroundjobs-operator-{CHART_VERSION}.tgz",
        "SHA256SUMS",
    ])  # fmt: skip
    sums = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=dist, capture_output=True, text=True
    )
    assert sums.returncode == 0, sums.stdout + sums.stderr
    with zipfile.ZipFile(dist / f"backgroundjobs-{VERSION}-py3-none-any.whl") as wheel:
        files = set(wheel.namelist())
        metadata = wheel.read(f"backgroundjobs-{VERSION}.dist-info/METADATA").decode()
    assert "backgroundjobs/py.typed" in files
    assert "backgroundjobs/cli/__main__.py" in files
    assert f"backgroundjobs-{VERSION}.dist-info/licenses/LICENSE" in files
    assert "License-Expression: Apache-2.0" in metadata
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    core = [r for r in requires if "extra ==" not in r]
    assert core == ["Requires-Dist: pydantic<3,>=2.7"], core  # the runtime's only need
    assert any(r.startswith("Requires-Dist: aiohttp") and "'client'" in r for r in requires)


def pip_install(bin_dir: Path, requirement: str) -> None:
    # --no-compile: byte-compiling kubernetes-asyncio's thousands of modules is most of an
    # install's time, and nothing here depends on it.
    out = run(bin_dir / "pip", "install", "-q", "--no-compile", "--disable-pip-version-check",
              requirement)  # fmt: skip
    assert out.returncode == 0, out.stderr


# Two installs from the package index into one venv: minutes on a loaded machine.
@pytest.mark.timeout(1800)
def test_the_wheel_installs_lean_and_with_the_client(dist: Path, tmp_path: Path) -> None:
    bin_dir = fresh_venv(tmp_path / "venv")
    wheel = dist / f"backgroundjobs-{VERSION}-py3-none-any.whl"

    # The core: the job runtime, without the Kubernetes client.
    pip_install(bin_dir, str(wheel))
    probe = run(bin_dir / "python", "-c", (
        "import importlib.util, backgroundjobs, backgroundjobs.runtime\n"
        "from backgroundjobs import Cron, handler, PermanentError\n"
        "assert importlib.util.find_spec('kubernetes_asyncio') is None\n"
        "assert importlib.util.find_spec('aiohttp') is None\n"
        "print(backgroundjobs.__version__, Cron.daily(2))"
    ))  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == [VERSION, "0", "2", "*", "*", "*"]
    # The runtime answers with its own error (exit 2: nothing to run), not an ImportError.
    runtime = run(bin_dir / "python", "-m", "backgroundjobs.runtime")
    assert runtime.returncode == 2, runtime.stderr
    assert "Traceback" not in runtime.stderr and "BACKGROUNDJOBS_HANDLER" in runtime.stderr
    check = run(bin_dir / "pip", "check")
    assert check.returncode == 0, check.stdout
    # Without the extra, the CLI and the client say which extra to install, not a traceback.
    for command in (
        [bin_dir / "bgjobs", "get"],
        [bin_dir / "python", "-c", "import backgroundjobs.client"],
    ):
        missing = run(*command)
        assert missing.returncode != 0, command
        assert "pip install 'backgroundjobs[client]'" in missing.stderr, missing.stderr

    # [client]: the client and the CLI, under each of its names.
    pip_install(bin_dir, f"{wheel}[client]")
    for command in (
        [bin_dir / "bgjobs", "--help"],
        [bin_dir / "kubectl-bgjobs", "--help"],
        [bin_dir / "python", "-m", "backgroundjobs.cli", "--help"],
    ):
        shown = run(*command)
        assert shown.returncode == 0, f"{command}: {shown.stderr}"
        assert "enqueue" in shown.stdout and "describe" in shown.stdout, command
    version = run(bin_dir / "python", "-m", "backgroundjobs.cli", "--version")
    assert version.returncode == 0 and VERSION in version.stdout + version.stderr
    typed = run(bin_dir / "python", "-c", (
        "import importlib.resources as r, backgroundjobs.client;"
        "assert r.files('backgroundjobs').joinpath('py.typed').is_file()"
    ))  # fmt: skip
    assert typed.returncode == 0, typed.stderr
    check = run(bin_dir / "pip", "check")
    assert check.returncode == 0, check.stdout


@pytest.mark.skipif(HELM is None, reason="helm not built (make cluster-tools)")
def test_chart_package_installs_with_its_crd_from_the_package(
    dist: Path, kubeconfig: str, api_client: client.ApiClient, core_v1: client.CoreV1Api,
    namespace: str, crd: dict,
) -> None:  # fmt: skip
    """The documented upgrade, `helm show crds PACKAGE | kubectl apply --server-side
    --force-conflicts -f -`, over a CRD that Helm's install left older; then an install from
    the package."""
    package = dist / f"backgroundjobs-operator-{CHART_VERSION}.tgz"
    shown = helm("show", "crds", str(package))
    assert shown.returncode == 0, shown.stderr
    assert yaml.safe_load(shown.stdout) == yaml.safe_load(CRD_FILE.read_text())

    # An older CRD as Helm's install wrote it: a field of another value, manager "helm".
    ext = client.ApiextensionsV1Api(api_client)
    older = api_client.sanitize_for_serialization(ext.read_custom_resource_definition(c.CRD_NAME))
    schema = older["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema["description"] = "an older description"
    ext.replace_custom_resource_definition(c.CRD_NAME, older, field_manager="helm")

    plain = kubectl(kubeconfig, "apply", "--server-side", "-f", "-", stdin=shown.stdout)
    assert plain.returncode != 0, plain.stdout
    assert re.search(r'conflicts? with "helm"', plain.stderr), plain.stderr
    applied = kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", "-",
                      stdin=shown.stdout)  # fmt: skip
    assert applied.returncode == 0, applied.stderr
    assert f"customresourcedefinition.apiextensions.k8s.io/{c.CRD_NAME} serverside-applied" in (
        applied.stdout
    )
    now = ext.read_custom_resource_definition(c.CRD_NAME).spec.versions[0].schema
    assert (
        now.open_apiv3_schema.description
        == yaml.safe_load(CRD_FILE.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"][
            "description"
        ]
    )
    release = f"pkg{uuid.uuid4().hex[:5]}"
    out = helm_in(kubeconfig, "install", release, str(package), "-n", namespace,
                  "--set", "replicaCount=1", "--set", "leaderElection.enabled=false",
                  "--set", "userRoles.create=false", "--wait", "--timeout", "180s")  # fmt: skip
    assert out.returncode == 0, out.stderr
    try:
        apps = client.AppsV1Api(api_client)
        deploy = apps.read_namespaced_deployment(f"{release}-backgroundjobs-operator", namespace)
        assert deploy.status.ready_replicas == 1
        assert exists(core_v1.read_namespaced_service, f"{release}-backgroundjobs-operator-metrics",
                      namespace)  # fmt: skip
    finally:
        helm_in(kubeconfig, "uninstall", release, "-n", namespace, "--wait")
