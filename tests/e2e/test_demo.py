"""The README's demo command end to end: it starts its own broker, the worker with the
released models, replays real prices and feedback, and prints real alerts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"


@pytest.mark.integration
def test_demo_prints_alerts_and_metrics(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINEL_")}
    env["PYTHONPATH"] = str(REPO)
    cmd = [sys.executable, "-m", "sentinel", "demo", "--duration", "45", "--rate", "600"]
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    assert "worker up; metrics at http://127.0.0.1:" in text
    released = [p.name for p in (REPO / "models" / "price-forecast").iterdir()]
    anomalies = re.findall(r"^\[(LOW|MEDIUM|HIGH|CRITICAL)\s*\] (\S+) .* price-forecast@(\S+)$", text, re.M)
    escalations = re.findall(r"^\[(P1|P2|P3)\s*\] feedback \S+: p_negative=", text, re.M)
    assert anomalies, text[-3000:]
    assert {v for _, _, v in anomalies} <= set(released)  # served by the released model
    if DATA.is_dir():  # real replay: every alerting symbol is one of the shared data's
        known = {p.name.split("_")[0] for p in (DATA / "prices/intraday/recent_5min").iterdir()}
        assert {s for _, s, _ in anomalies} <= known
    assert escalations, text[-3000:]
    status = re.findall(r"forecasts=(\d+) anomalies=(\d+) feedback=(\d+)", text)
    assert status and int(status[-1][0]) > 1000 and int(status[-1][2]) > 50
    assert "demo stopped" in text
    assert not (tmp_path / ".sentinel/demo/broker/broker.pid").exists()  # broker stopped


@pytest.mark.integration
def test_fresh_clone_replays_the_sample_and_a_second_process_tails_it(tmp_path: Path) -> None:
    """Issue 15's acceptance: no ../shared, so the shipped real sample replays (no synthetic
    fallback), and `alerts tail --json` with no flags, started in another process in the same
    directory, finds the demo's broker through .sentinel/demo/bootstrap and gets the alerts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINEL_")}
    env["PYTHONPATH"] = str(REPO)
    demo_env = {**env, "SENTINEL_DATA_ROOT": str(tmp_path / "no-shared-data")}
    cmd = [sys.executable, "-m", "sentinel", "demo", "--duration", "60", "--rate", "300"]
    demo = subprocess.Popen(cmd, cwd=tmp_path, env=demo_env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    head = []
    assert demo.stdout is not None
    for line in demo.stdout:
        head.append(line)
        if "worker up; metrics at" in line or len(head) > 200:
            break
    assert (tmp_path / ".sentinel/demo/bootstrap").is_file(), "".join(head)
    tail = subprocess.Popen([sys.executable, "-m", "sentinel", "alerts", "tail", "--json"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Read through the same text file as the loop above: communicate() reads the pipe's fd
        # directly and would lose the lines the loop had already buffered (the producers line
        # printed right after "worker up" went missing that way on a loaded machine).
        rest = demo.stdout.read()  # the demo ends by itself after --duration
        demo.wait(timeout=300)
    finally:
        tail.terminate()
        tailed, tail_err = tail.communicate(timeout=60)
    text = "".join(head) + rest
    assert demo.returncode == 0, text[-3000:]
    assert "replaying the shipped real sample" in text and "synthetic labelled stream" not in text
    sample = {p.name.split("_")[0] for p in (REPO / "data/samples/prices").iterdir()}
    printed = set(re.findall(r"^\[(?:LOW|MEDIUM|HIGH|CRITICAL)\s*\] (\S+) ", text, re.M))
    assert printed and printed <= sample, text[-3000:]
    assert "using the running demo's broker" in tail_err
    received = [orjson.loads(line) for line in tailed.splitlines() if line.startswith("{")]
    assert {a["symbol"] for a in received if "severity" in a} & printed, tail_err[-2000:]
    assert any("priority" in a for a in received)
    assert not (tmp_path / ".sentinel/demo/bootstrap").exists()  # removed when the demo stopped
