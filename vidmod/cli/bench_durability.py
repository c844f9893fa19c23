"""The cost of the embedded stack's durability, as numbers (part of ``make bench``; never a pass/fail test).

Each figure runs ``vidmod local up`` as its own process, as a user runs it, so the stack's memory is its own:

- PutObject latency of a 100 MB object (median of a few), acknowledged only once it is on disk;
- how much the stack's resident memory grows while a 2 GB object is uploaded (multipart, as the AWS CLI and
  ``vidmod submit`` upload), sampled every 50 ms.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from vidmod.emulator.clients import local_client

RESULTS_BUCKET = "vidmod-resultsbucket"  # no event rule: an upload there is storage only
CHUNK = 8 * 1024 * 1024


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextmanager
def local_stack(state_dir: Path, *parameters: str):
    """``vidmod local up`` in its own process; yields (process, endpoint) once the endpoint answers."""
    port, portal = free_port(), free_port()
    command = [sys.executable, "-m", "vidmod.cli.main", "local", "up", "--state-dir", str(state_dir),
               "--port", str(port), "--portal-port", str(portal)]  # fmt: skip
    for parameter in parameters:
        command += ["-p", parameter]
    log = (state_dir.parent / f"{state_dir.name}.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=os.environ | {"NO_COLOR": "1"})
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"vidmod local up exited: see {log.name}")
            try:
                local_client("stepfunctions", endpoint).list_state_machines()
                if "vidmod local stack is up" in Path(log.name).read_text(errors="replace"):
                    break
            except Exception:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.2)
        yield process, endpoint
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _s3(endpoint: str):
    return local_client("s3", endpoint)


def put_latency(work: Path, megabytes: int = 100, runs: int = 5) -> float:
    """Median seconds for one PutObject of ``megabytes`` MB."""
    body = os.urandom(megabytes * 1024 * 1024)
    with local_stack(work / "put-state") as (_, endpoint):
        s3 = _s3(endpoint)
        timings = []
        for run in range(runs):
            started = time.perf_counter()
            s3.put_object(Bucket=RESULTS_BUCKET, Key=f"bench/put-{run}.bin", Body=body)
            timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def upload_memory(work: Path, gigabytes: float = 2.0) -> tuple[float, float, float]:
    """(stack RSS before in MB, its peak growth during a multipart upload of ``gigabytes`` GB, upload seconds)."""
    big = work / "big.bin"
    block = os.urandom(CHUNK)
    with big.open("wb") as out:
        for _ in range(int(gigabytes * 1024**3) // CHUNK):
            out.write(block)
    try:
        with local_stack(work / "memory-state") as (process, endpoint):
            time.sleep(2)  # let start-up settle
            before, peak = rss_mb(process.pid), [0.0]
            done = threading.Event()

            def sample() -> None:
                while not done.wait(0.05):
                    peak[0] = max(peak[0], rss_mb(process.pid))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            started = time.perf_counter()
            _s3(endpoint).upload_file(str(big), RESULTS_BUCKET, "bench/big.bin")
            seconds = time.perf_counter() - started
            time.sleep(1)
            done.set()
            sampler.join()
            return before, max(peak[0], rss_mb(process.pid)) - before, seconds
    finally:
        big.unlink()


if __name__ == "__main__":  # quick run of the figures alone: python -m vidmod.cli.bench_durability
    import tempfile

    with tempfile.TemporaryDirectory(prefix="vidmod-bench-") as tmp:
        work = Path(tmp)
        print(f"PutObject 100 MB: median {put_latency(work):.2f} s")
        before, growth, seconds = upload_memory(work)
        print(f"2 GB upload: RSS {before:.0f} MB before, +{growth:.0f} MB peak growth, {seconds:.1f} s")
