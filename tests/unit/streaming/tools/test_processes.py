"""CPU pinning for ``sentinel bench --pin``: the list syntax, the check, and a real child pinned."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from streaming.bench.cli import add_bench_parser, options_from
from streaming.bench.suite import split_pin
from streaming.errors import SentinelError
from streaming.tools.processes import parse_cpus, pin, stop_process


def test_cpu_lists_as_taskset_reads_them() -> None:
    assert parse_cpus("0") == {0}
    assert parse_cpus("0,2") == {0, 2}
    assert parse_cpus("1-3,5") == {1, 2, 3, 5}
    assert split_pin("0/1") == ({0}, {1})
    assert split_pin(None) == (None, None)


def _options(pin_text: str) -> object:
    parser = argparse.ArgumentParser()
    add_bench_parser(parser.add_subparsers(dest="command"))
    return options_from(parser.parse_args(["bench", "--quick", "--pin", pin_text]))


def test_bench_pin_option_is_checked_in_one_line() -> None:
    cpu = min(os.sched_getaffinity(0))
    assert _options(f"{cpu}/{cpu}").pin == f"{cpu}/{cpu}"  # type: ignore[attr-defined]
    for bad in ("0", "0/", "x/1", "0/4096"):
        with pytest.raises(SentinelError, match="--pin wants BROKER_CPUS/WORKER_CPUS"):
            _options(bad)


def test_pin_moves_every_thread_of_a_running_child() -> None:
    code = ("import threading, time\n"
            "threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
            "print('up', flush=True); time.sleep(30)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
        cpu = max(os.sched_getaffinity(0))
        pin(proc.pid, {cpu})
        tids = os.listdir(f"/proc/{proc.pid}/task")
        assert len(tids) == 2
        assert all(os.sched_getaffinity(int(t)) == {cpu} for t in tids)
        pin(proc.pid, None)  # no pinning asked: untouched
        assert all(os.sched_getaffinity(int(t)) == {cpu} for t in tids)
    finally:
        stop_process(proc, timeout=5)
