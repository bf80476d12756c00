"""Dev loop: score the dev corpus with the series detector and print NAB-style scores.

Usage: PYTHONPATH=. python scripts/anomaly_dev_eval.py DATA_DIR [--set field=value ...]
Not the product harness (that is ``sentinel evaluate anomalies``); a quick ablation tool.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from streaming.core.series_detector import SeriesConfig, SeriesDetector, SeriesState
from streaming.evaluation.nab_score import file_events, sweep
from streaming.evaluation.windowed import rolling_z, windowed_gaussian


def load(root: Path) -> list[tuple[str, int, np.ndarray, list[tuple[int, int]]]]:
    out = []
    for corpus in sorted(p for p in root.iterdir() if p.is_dir()):
        wins = json.loads((corpus / "windows_nab.json").read_text())
        for i, name in enumerate(sorted(wins)):
            rows = (corpus / name).read_text().splitlines()[1:]
            ts = [r.split(",")[0] for r in rows]
            x = np.array([float(r.split(",")[1]) for r in rows])
            pos = {t: k for k, t in enumerate(ts)}
            out.append((f"{corpus.name}/{name}", i, x, [(pos[a], pos[b]) for a, b in wins[name]]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--only", default="")
    ap.add_argument("--baselines", action="store_true")
    ap.add_argument("--dump", default="", help="save per-file scores to this .npz")
    args = ap.parse_args()
    cfg = SeriesConfig()
    for item in args.set:
        k, v = item.split("=")
        cur = getattr(cfg, k)
        cfg = replace(cfg, **{k: tuple(v.split("+")) if isinstance(cur, tuple) else type(cur)(v)})
    det = SeriesDetector(cfg)
    files = [f for f in load(Path(args.data)) if args.only in f[0]]
    t0 = time.time()
    ev: dict[str, list] = {}
    ticks = 0
    dump: dict[str, np.ndarray] = {}
    for name, i, x, w in files:
        st = SeriesState()
        s = np.array([det.update(st, float(v)) for v in x])
        ticks += x.size
        dump[name] = s
        corpus = name.split("/")[0]
        half = "even" if i % 2 == 0 else "odd"
        dets = {"served": s}
        if args.baselines:
            dets["wgauss"] = windowed_gaussian(x)
            dets["rollz"] = rolling_z(x)
        for dn, sc in dets.items():
            e = file_events(sc, w)
            for key in (corpus, f"{corpus}:{half}", "ALL", f"ALL:{half}"):
                ev.setdefault(f"{dn}|{key}", []).append(e)
    dt = time.time() - t0
    if args.dump:
        np.savez(args.dump, **dump)
    for key in sorted(ev):
        r = sweep(ev[key])
        print(f"{key:40s} {r.score:7.2f} thr={r.threshold:.6f}")
    print(f"{ticks} ticks {dt:.1f}s {1e6 * dt / ticks:.1f} us/tick  cfg={args.set}")


if __name__ == "__main__":
    main()
