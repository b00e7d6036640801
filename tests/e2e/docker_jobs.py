"""Running the built images as a kubelet would, for the e2e tests."""

from __future__ import annotations

import json
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
BASE = f"backgroundjobs/base:{VERSION}"
EXAMPLES = f"backgroundjobs/examples:{VERSION}"
OPERATOR = f"backgroundjobs/operator:{VERSION}"
NONROOT = 65532


@dataclass
class ContainerRun:
    code: int
    termination_log: str
    records: list[dict[str, Any]]
    stdout: str
    stderr: str

    def result(self) -> Any:
        return json.loads(self.termination_log)


class JobRunner:
    """Runs a handler the way the kubelet would: env from the operator, a termination log file
    bind-mounted at /dev/termination-log, a read-only root filesystem, the non-root user."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.count = 0

    def writable_dir(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o777)
        return path

    def docker_args(
        self,
        handler: str,
        args: list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        *,
        image: str = EXAMPLES,
        env: dict[str, str] | None = None,
        volumes: dict[Path, str] | None = None,
        name: str = "e2e-job",
        run: int = 1,
    ) -> tuple[list[str], Path]:
        self.count += 1
        termination_log = self.workdir / f"termination-log-{self.count}"
        termination_log.write_text("")
        termination_log.chmod(0o666)
        job_env = {
            "BACKGROUNDJOBS_HANDLER": handler,
            "BACKGROUNDJOBS_ARGS": json.dumps(args or []),
            "BACKGROUNDJOBS_KWARGS": json.dumps(kwargs or {}),
            "BACKGROUNDJOBS_NAME": name,
            "BACKGROUNDJOBS_NAMESPACE": "e2e",
            "BACKGROUNDJOBS_RUN": str(run),
            **(env or {}),
        }
        command = [
            "docker", "run", "--rm", "--read-only", "--user", f"{NONROOT}:{NONROOT}",
            "--network", "host", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "-v", f"{termination_log}:/dev/termination-log",
        ]  # fmt: skip
        for source, target in (volumes or {}).items():
            command += ["-v", f"{source}:{target}"]
        for key, value in job_env.items():
            command += ["-e", f"{key}={value}"]
        return [*command, image], termination_log

    def run(self, handler: str, *args: Any, timeout: float = 120, **kwargs: Any) -> ContainerRun:
        command, termination_log = self.docker_args(handler, *args, **kwargs)
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        return collect(proc.returncode, proc.stdout, proc.stderr, termination_log)


def collect(code: int, stdout: str, stderr: str, termination_log: Path) -> ContainerRun:
    records = []
    for line in stderr.splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return ContainerRun(code, termination_log.read_text(), records, stdout, stderr)
