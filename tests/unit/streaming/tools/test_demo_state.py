"""The demo's state file: how `alerts tail`, `produce` and `broker status` find the demo's broker,
and which data the demo replays (the shipped sample without ../shared)."""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streaming import cli
from streaming.tools import demo, demo_state

REPO = Path(__file__).resolve().parents[4]


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_round_trip_while_the_demo_lives(tmp_path: Path) -> None:
    path = demo_state.state_path(tmp_path)
    demo_state.write_state(path, "127.0.0.1:40093")
    assert path == tmp_path / ".sentinel/demo/bootstrap"
    assert path.read_text().splitlines() == ["127.0.0.1:40093", f"pid={os.getpid()}"]
    assert demo_state.read_state(path) == "127.0.0.1:40093"


def test_stale_or_malformed_files_are_ignored(tmp_path: Path) -> None:
    path = demo_state.state_path(tmp_path)
    assert demo_state.read_state(path) is None  # no file
    demo_state.write_state(path, "127.0.0.1:40093", pid=dead_pid())  # demo killed -9
    assert demo_state.read_state(path) is None
    for text in ("", "garbage\npid=1\n", "127.0.0.1:1\n", "127.0.0.1:1\npid=x\n", "\xff"):
        path.write_text(text)
        assert demo_state.read_state(path) is None


def test_remove_only_deletes_its_own_file(tmp_path: Path) -> None:
    path = demo_state.state_path(tmp_path)
    demo_state.write_state(path, "127.0.0.1:1", pid=os.getpid())
    demo_state.remove_state(path, pid=os.getpid() + 1)  # another demo's stop: keep ours
    assert path.exists()
    demo_state.remove_state(path)
    assert not path.exists()
    demo_state.remove_state(path)  # already gone: fine


def _args(bootstrap: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(bootstrap=bootstrap, topic_prefix=None, models_dir=None, log_level=None)


def test_commands_follow_the_demo_unless_a_bootstrap_is_given(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SENTINEL_KAFKA_BOOTSTRAP", raising=False)
    assert cli._settings(_args(), follow_demo=True).kafka_bootstrap == "127.0.0.1:9092"  # no demo
    demo_state.write_state(demo_state.state_path(), "127.0.0.1:40093")
    assert cli._settings(_args(), follow_demo=True).kafka_bootstrap == "127.0.0.1:40093"
    assert cli._settings(_args()).kafka_bootstrap == "127.0.0.1:9092"  # worker, demo: never
    assert cli._settings(_args("h:1"), follow_demo=True).kafka_bootstrap == "h:1"  # flag wins
    monkeypatch.setenv("SENTINEL_KAFKA_BOOTSTRAP", "env:2")
    assert cli._settings(_args(), follow_demo=True).kafka_bootstrap == "env:2"  # variable wins


def test_broker_status_reports_the_demo_broker(tmp_path: Path) -> None:
    demo_state.write_state(demo_state.state_path(tmp_path), "127.0.0.1:40093", pid=os.getpid())
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINEL_")}
    env["PYTHONPATH"] = str(REPO)
    out = subprocess.run([sys.executable, "-m", "streaming.cli", "broker", "status"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "demo broker running at 127.0.0.1:40093" in out.stdout


def test_the_demo_replays_the_shared_data_when_present_else_the_sample(tmp_path: Path) -> None:
    assert demo.choose_data(tmp_path / "absent").is_sample
    (tmp_path / "prices/intraday/recent_5min").mkdir(parents=True)
    (tmp_path / "reviews").mkdir()
    (tmp_path / "reviews" / demo.REVIEWS).write_bytes(b"")
    full = demo.choose_data(tmp_path)
    assert not full.is_sample and full.rate > demo.SAMPLE_RATE
    with pytest.raises(Exception, match="no demo data"):
        demo.choose_data(tmp_path / "absent", sample_root=tmp_path / "no-sample")


def test_the_shipped_sample_is_small_real_and_mixed() -> None:
    root = demo.SAMPLE_ROOT
    assert sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) <= 1_000_000
    assert len(list((root / "prices").glob("*_5min.csv"))) == 10
    with gzip.open(root / "reviews" / demo.REVIEWS, "rt", encoding="utf-8") as fh:
        ratings = [int(r["Rating"]) for r in csv.DictReader(fh)]
    assert 200 <= len(ratings) <= 500 and min(ratings) == 1 and max(ratings) == 5
    assert (root / "README.md").read_text().count("License") >= 2


def test_the_demo_takes_9092_only_when_free_and_says_how_to_subscribe() -> None:
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        assert not demo._port_free(held.getsockname()[1])
    hint = demo.subscribe_hint("127.0.0.1:40093", explicit=False)
    assert "alerts tail" in hint and "--bootstrap 127.0.0.1:40093" in hint and "this directory" in hint
    assert "this directory" not in demo.subscribe_hint("h:1", explicit=True)
