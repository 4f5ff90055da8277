"""Benchmark: CPU the MessageBird emulator spends per ``POST /messages``, for this checkout and for
any ``--ref`` (a git revision) in the same run. Prints numbers; asserts nothing.

Each emulator runs as the benchmarks run it (``python -m tenant_worker_dev.emulators.messagebird
--latency 0``, a subprocess); ``--threads`` clients each keep one ``http.client`` connection alive and
send ``--requests`` messages between them, shaped like the worker's. The emulator's CPU is its
``utime + stime`` from ``/proc/<pid>/stat`` after a warm-up and after the run. ``--rounds`` alternates
the sources so that load from other processes on the box hits them alike.

    .venv/bin/python scripts/bench_emulator.py --ref HEAD~3 --requests 20000 --threads 4
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

ACCESS_KEY = "bench-access-key"
ROOT = Path(__file__).resolve().parent.parent
HEADERS = {
    "Accept": "application/json",
    "Authorization": f"AccessKey {ACCESS_KEY}",
    "User-Agent": "tenant-worker MessageBird/ApiClient",
    "Content-Type": "application/json; charset=UTF-8",
    "Connection": "keep-alive",
}


def export_revision(ref: str, into: Path) -> Path:
    """The emulators as of ``ref``, unpacked under ``into``: ``dev/`` where it exists, else the
    ``tenant_worker`` package (which held the emulators before they moved to ``dev/``)."""
    tree = ["git", "ls-tree", "--name-only", ref]
    listed = subprocess.run(tree, cwd=ROOT, capture_output=True, check=True, text=True)
    paths = [path for path in ("dev", "tenant_worker") if path in listed.stdout.split()]
    archive = subprocess.run(["git", "archive", ref, *paths], cwd=ROOT, capture_output=True, check=True)
    target = into / ref.replace("/", "_")
    target.mkdir()
    archive_path = target / "src.tar"
    archive_path.write_bytes(archive.stdout)
    with tarfile.open(archive_path) as tar:
        tar.extractall(target, filter="data")
    return target


def emulator_command(source: Path) -> tuple[str, str]:
    """(PYTHONPATH, module) that runs the MessageBird emulator of ``source``."""
    if (source / "dev" / "tenant_worker_dev").is_dir():
        return str(source / "dev"), "tenant_worker_dev.emulators.messagebird"
    return str(source), "tenant_worker.emulators.messagebird"


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def send(port: int, count: int, errors: list[str]) -> None:
    """``count`` messages on one kept-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for n in range(count):
        text = f"Dear Customer {n}, your Fiber subscription of 29.95 EUR expires on 2026-05-04."
        fields = {"reference": str(n), "datacoding": "plain", "originator": "BenchNet", "body": text}
        body = json.dumps({**fields, "recipients": f"+3161{n % 10_000_000:07d}"})
        connection.request("POST", "/messages", body=body, headers=HEADERS)
        response = connection.getresponse()
        response.read()
        if response.status != 201:
            errors.append(f"HTTP {response.status}")
    connection.close()


def fire(port: int, total: int, threads: int) -> list[str]:
    """``total`` messages from ``threads`` clients at once; returns what went wrong."""
    errors: list[str] = []
    workers = [threading.Thread(target=send, args=(port, total // threads, errors)) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return errors


def measure(source: Path, total: int, threads: int) -> tuple[float, float, float]:
    """(emulator user and system CPU seconds, wall seconds) for ``total`` messages against the
    emulator in ``source``."""
    pythonpath, module = emulator_command(source)
    env = {**os.environ, "PYTHONPATH": pythonpath}
    command = [sys.executable, "-m", module, "--latency", "0"]
    command += ["--access-key", ACCESS_KEY]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=source) as process:
        try:
            assert process.stdout is not None
            port = int(process.stdout.readline().rsplit(":", 1)[1])
            fire(port, 100 * threads, threads)
            (user, system), started = cpu_seconds(process.pid), time.perf_counter()
            errors = fire(port, total, threads)
            wall = time.perf_counter() - started
            user_after, system_after = cpu_seconds(process.pid)
        finally:
            process.terminate()
            process.wait(10)
    if errors:
        sys.exit(f"{source}: {len(errors)} requests failed, e.g. {errors[0]}")
    return user_after - user, system_after - system, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", action="append", default=[], help="also measure this git revision")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    total = args.requests - args.requests % args.threads
    with tempfile.TemporaryDirectory(prefix="bench-emulator-") as scratch:
        sources = {ref: export_revision(ref, Path(scratch)) for ref in args.ref}
        sources["checkout"] = ROOT
        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in sources}
        for _ in range(args.rounds):
            for name, source in sources.items():
                results[name].append(measure(source, total, args.threads))
    print(f"{total} POST /messages on {args.threads} keep-alive connections, {args.rounds} rounds")
    for name, runs in results.items():
        sent = total * len(runs)
        user, system, wall = (sum(run[i] for run in runs) for i in range(3))
        per_round = ", ".join(f"{(u + s) / total * 1e6:.0f}" for u, s, _ in runs)
        print(
            f"{name:>12}: emulator CPU {(user + system) / sent * 1e6:6.1f} us/request "
            f"(user {user / sent * 1e6:.1f} + system {system / sent * 1e6:.1f}; rounds: {per_round}), "
            f"{sent / wall:6.0f} requests/s"
        )


if __name__ == "__main__":
    main()
