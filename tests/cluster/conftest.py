"""Cluster tests: a real single-node Slurm on this machine (scripts/cluster/slurm_up.sh).

They are deselected (not skipped: CI counts a skip as a failure) unless CXQ_CLUSTER_TESTS=1, which
`make test-cluster` sets; `make test` therefore never needs root or Slurm.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SCRIPTS = REPO / "scripts" / "cluster"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("CXQ_CLUSTER_TESTS") == "1":
        return
    cluster = [item for item in items if item.get_closest_marker("cluster")]
    if cluster:
        config.hook.pytest_deselected(items=cluster)
        items[:] = [item for item in items if not item.get_closest_marker("cluster")]


def _cluster_answers(env: dict[str, str]) -> bool:
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], check=False, env=env, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and ("idle" in out.stdout or "mix" in out.stdout)


@pytest.fixture(scope="session")
def slurm_env() -> Iterator[dict[str, str]]:
    """SLURM_CONF of a running cluster: the one `make test-cluster` started, else one started here."""
    if os.environ.get("SLURM_CONF") and _cluster_answers(dict(os.environ)):
        yield {"SLURM_CONF": os.environ["SLURM_CONF"]}
        return
    up = subprocess.run([str(CLUSTER_SCRIPTS / "slurm_up.sh")], check=False, capture_output=True, text=True, timeout=600)
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        conf = up.stdout.strip().rsplit("=", 1)[-1]
        yield {"SLURM_CONF": conf}
    finally:
        subprocess.run([str(CLUSTER_SCRIPTS / "slurm_down.sh")], check=False, timeout=60)
