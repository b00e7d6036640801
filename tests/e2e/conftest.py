"""Fixtures for the image tests: the images built by hack/build-images.sh, and running them.

The session builds (or refreshes: a warm build takes seconds) the images with the project's
own script, which installs and starts Docker when the machine has none. The tests are skipped
only when no Docker engine can run here at all (no engine answers and this user cannot
install or start one); a failing image build is a test error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.e2e.docker_jobs import BASE, EXAMPLES, OPERATOR, ROOT, JobRunner

BUILD_TIMEOUT_S = 1200
CACHE = Path(os.environ.get("BACKGROUNDJOBS_CACHE", Path.home() / ".cache" / "backgroundjobs"))


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        probe = subprocess.run(["docker", "info"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def _why_docker_cannot_run() -> str | None:
    """None when the build script can get an engine; else why not."""
    if _docker_answers():
        return None
    if os.geteuid() != 0:
        return "no Docker engine answers and, not being root, the tests cannot install or start one"
    if shutil.which("dockerd") is None and shutil.which("apt-get") is None:
        return "no Docker engine, no dockerd and no apt-get to install docker.io"
    return None


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    """The three images, freshly built from the work tree."""
    reason = _why_docker_cannot_run()
    if reason:
        pytest.skip(reason)
    log_path = CACHE / "e2e-build-images.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        build = subprocess.run(
            ["bash", str(ROOT / "hack" / "build-images.sh")],
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=BUILD_TIMEOUT_S,
        )
    output = log_path.read_text()
    if build.returncode != 0:
        if not _docker_answers() and "dockerd did not come up" in output:
            dockerd_log = CACHE / "dockerd.log"
            tail = dockerd_log.read_text()[-2000:] if dockerd_log.exists() else ""
            pytest.skip(f"Docker cannot run on this machine: dockerd did not start:\n{tail}")
        pytest.fail(f"hack/build-images.sh failed (log {log_path}):\n{output[-4000:]}")
    return {"base": BASE, "examples": EXAMPLES, "operator": OPERATOR}


@pytest.fixture
def job_runner(images: dict[str, str], tmp_path: Path) -> Iterator[JobRunner]:
    tmp_path.chmod(0o755)
    yield JobRunner(tmp_path)
