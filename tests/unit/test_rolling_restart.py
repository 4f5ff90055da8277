"""scripts/rolling_restart.sh against a stand-in ``docker`` that records what it is asked: each old
worker container is stopped (with a grace period longer than the longest batch) only after its
replacement is healthy, and beat is recreated last."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tenant_worker.celery_app import create_app
from tenant_worker.config import Settings

ROOT = Path(__file__).resolve().parents[2]

# A docker CLI that keeps its containers in state.json and logs every call to calls.log.
FAKE_DOCKER = """
import json, sys
from pathlib import Path
here = Path(__file__).parent
state = json.loads((here / "state.json").read_text())
args = sys.argv[1:]
with (here / "calls.log").open("a") as log:
    log.write(" ".join(args) + "\\n")
def save():
    (here / "state.json").write_text(json.dumps(state))
if args[:2] == ["compose", "config"]:
    print("\\n".join(["worker-shards-a", "api", "beat"]))
elif args[:2] == ["compose", "ps"]:
    print("\\n".join(state["containers"].get(args[-1], [])))
elif args[:2] == ["compose", "up"]:
    service = args[-1]
    scale = [a for a in args if a.startswith(service + "=")]
    if scale:
        state["next"] += 1
        state["containers"][service].append(f"new{state['next']}")
        save()
elif args[0] == "inspect":
    print("healthy")
elif args[0] == "stop":
    for name, ids in state["containers"].items():
        state["containers"][name] = [i for i in ids if i != args[-1]]
    save()
"""


def test_each_old_worker_stops_only_after_its_replacement_is_healthy(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(f"#!{sys.executable}\n{FAKE_DOCKER}")
    docker.chmod(0o755)
    state = {"next": 0, "containers": {"worker-shards-a": ["old1", "old2"], "beat": ["beat1"]}}
    (bin_dir / "state.json").write_text(json.dumps(state))
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}

    out = subprocess.run([str(ROOT / "scripts" / "rolling_restart.sh"), "compose"], env=env, capture_output=True,
                         text=True, timeout=60)  # fmt: skip

    assert out.returncode == 0, out.stderr
    calls = (bin_dir / "calls.log").read_text().splitlines()
    stops = [i for i, c in enumerate(calls) if c.startswith("stop")]
    assert [calls[i].split()[-1] for i in stops] == ["old1", "old2"]
    limit = create_app(Settings(redis_url="redis://localhost:6379/0")).conf.task_time_limit
    for i, new in zip(stops, ["new1", "new2"], strict=True):
        assert int(calls[i].split()[2]) > limit
        assert any(c.startswith("inspect") and c.endswith(new) for c in calls[:i])
    assert calls[-1] == "compose up -d --no-deps --force-recreate beat"
    assert json.loads((bin_dir / "state.json").read_text())["containers"]["worker-shards-a"] == ["new1", "new2"]
