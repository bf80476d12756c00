"""Rerun the fault tests N times with fresh seeds; one JSON per test and run, and a summary.

    python scripts/fault_suite.py 5 --out docs/results/faults
    python scripts/fault_suite.py 1 --seed 123456   # replay one schedule

Each run is ``pytest tests/integration/test_faults.py`` with ``FAULT_SEED`` and
``FAULT_REPORT_DIR`` set; the summary (``summary.json``) lists every run's seed,
exit code and per-test figures, so the tables in docs/reliability.md can be rendered from it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=int)
    parser.add_argument("--out", default=".sentinel/faults", help="directory for the JSON reports")
    parser.add_argument("--seed", type=int, help="replay this seed (every run uses it)")
    parser.add_argument("-k", default="", help="pytest -k expression (a subset of the fault tests)")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for i in range(args.runs):
        seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1_000_000_007)
        env = {**os.environ, "FAULT_SEED": str(seed), "FAULT_REPORT_DIR": str(out)}
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-s",
               "tests/integration/test_faults.py", *(["-k", args.k] if args.k else [])]
        t0 = time.monotonic()
        code = subprocess.run(cmd, cwd=REPO, env=env, check=False).returncode
        reports = [json.loads(p.read_text()) for p in sorted(out.glob(f"*-{seed}.json"))]
        runs.append({"run": i + 1, "seed": seed, "exit_code": code,
                     "seconds": round(time.monotonic() - t0, 1),
                     "tests": {r["test"]: r["report"] for r in reports}})
        print(f"run {i + 1}/{args.runs}: seed={seed} exit={code}", flush=True)
    (out / "summary.json").write_text(json.dumps({"runs": runs}, indent=1, sort_keys=True))
    failed = [r for r in runs if r["exit_code"] != 0]
    print(f"{len(runs) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
