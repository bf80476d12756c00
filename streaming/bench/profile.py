"""Summaries of ``py-spy record --format raw --threads`` profiles (folded stacks).

``python -m streaming.bench.profile FILE [--top N]`` prints, per thread, the share of
samples and the top functions by self time and by inclusive time; ``sentinel bench
--profile DIR`` puts the same summary into its JSON.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    """``func (path/file.py:123)`` -> ``func (path/file.py)``: lines of one function merge."""
    m = _FRAME.match(frame.strip())
    return f"{m['func']} ({m['file']})" if m else frame.strip()


def parse(path: Path) -> list[tuple[str, list[str], int]]:
    """(thread, frames root first, samples) per folded line."""
    out = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _LINE.match(raw)
        if not m:
            continue
        frames = m["stack"].split(";")
        thread = frames[0].split(": ", 1)[-1] if frames[0].startswith("thread") else "?"
        body = frames[1:] if frames[0].startswith("thread") else frames
        out.append((thread, [frame_name(f) for f in body], int(m["count"])))
    return out


# A sample whose innermost frame is one of these is a thread waiting, not working.
IDLE_LEAVES = frozenset({"EpollSelector.select", "_PollLikeSelector.select", "_worker", "Condition.wait",
                         "Thread._wait_for_tstate_lock"})
# Where a sample's time goes, first match wins (substrings of the folded stack).
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("onnxruntime Session.run", ("Session.run",)),
    ("numpy pre/post-processing", ("normalise_windows", "denormalise_forecasts", "Tokenizer.encode")),
    ("pipeline: windows, detector, records", ("process_ticks", "classify_feedback")),
    ("handler: decode + validate", ("decode_ticks", "decode_feedback")),
    ("handler: table state (from_dict/to_dict/changelog)", ("write_table", "SymbolState", "Table.")),
    ("handler: publish outputs (producer.send)", ("PriceHandler._publish", "FeedbackHandler.finish",
                                                 "DeadLetters.publish")),
    ("handler: other (gather acks, metrics)", ("PriceHandler.", "FeedbackHandler.")),
    ("faust: producer buffer (table changelog)", ("ProducerBuffer",)),
    ("aiokafka: producer sender", ("aiokafka/producer",)),
    ("faust: take_events / stream delivery", ("take_events", "Stream._c_aiter", "_passive_drainer",
                                              "Conductor", "Consumer._drain_messages", "Fetcher._fetcher")),
    ("aiokafka: consumer fetch", ("aiokafka/consumer", "AIOKafkaConsumerThread")),
    ("asyncio loop machinery", ("asyncio/",)),
)


def categorise(path: Path) -> dict[str, dict[str, float]]:
    """Percent of all samples per (thread, category): a coarse answer to "where does time go"."""
    stacks = parse(path)
    total = sum(n for _, _, n in stacks) or 1
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for thread, frames, n in stacks:
        joined = ";".join(frames) + ";"
        if frames and frames[-1].split(" (")[0] in IDLE_LEAVES:
            label = "idle: waiting in select / for work"
        else:
            label = next((name for name, keys in CATEGORIES if any(k in joined for k in keys)), "other")
        out[thread][label] += n
    return {t: {k: round(100 * v / total, 1) for k, v in c.most_common()} for t, c in out.items()}


def summarise(path: Path, top: int = 15) -> dict[str, Any]:
    """Per thread: samples, top self-time and inclusive-time functions (percent of all samples)."""
    stacks = parse(path)
    total = sum(n for _, _, n in stacks) or 1
    threads: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: {"self": Counter(), "incl": Counter()})
    samples: Counter[str] = Counter()
    for thread, frames, n in stacks:
        samples[thread] += n
        if frames:
            threads[thread]["self"][frames[-1]] += n
        for name in set(frames):
            threads[thread]["incl"][name] += n

    def pct(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / total, 1)) for name, n in counter.most_common(top)]

    return {"file": str(path), "samples": total, "categories": categorise(path),
            "threads": {t: {"percent": round(100 * samples[t] / total, 1), "self": pct(c["self"]),
                            "inclusive": pct(c["incl"])}
                        for t, c in sorted(threads.items(), key=lambda kv: -samples[kv[0]])}}


def render(summary: dict[str, Any]) -> str:
    lines = [f"{summary['file']}: {summary['samples']} samples", "", "where the time goes (% of all samples)"]
    for thread, cats in summary["categories"].items():
        lines += [f"  {p:5.1f}%  {thread}: {name}" for name, p in cats.items() if p >= 0.5]
    for thread, data in summary["threads"].items():
        lines.append(f"\n== thread {thread}: {data['percent']}% of samples")
        for kind in ("self", "inclusive"):
            lines.append(f"  -- top by {kind} time (% of all samples)")
            lines += [f"  {p:5.1f}%  {name}" for name, p in data[kind]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    print(render(summarise(args.file, args.top)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
