"""`sentinel report`'s page in a real browser: Chromium (Debian's package, installed by
scripts/install_system_deps.sh) loads it headless, runs its one script and lays out the SVG
charts; the DOM it dumps shows the alerts, and a screenshot is a real, non-blank picture.

With CI=true a missing Chromium fails the test (the set-up is broken); elsewhere it skips.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from streaming.tools.report import classify, write_report

T0 = 1_760_000_000_000
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def chromium() -> str:
    found = next((p for p in map(shutil.which, BROWSERS) if p), None)
    if found is None:
        message = "chromium not found: run scripts/install_system_deps.sh (apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def run_browser(tmp_path: Path, *args: str) -> str:
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           f"--user-data-dir={tmp_path / 'profile'}", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def records() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for sym, base in (("SPY", 688.0), ("QQQ", 635.0)):
        rows += [{"symbol": sym, "ts": T0 + i * 1000, "price": base + (i % 7) * 0.3,
                  "forecast": base + (i % 7) * 0.3 + 0.1, "model": "m@1"} for i in range(400)]
    for sym, sev, score in (("SPY", "critical", 20.4), ("QQQ", "high", 11.2), ("QQQ", "low", 6.3)):
        ts = T0 + {"critical": 200, "high": 210, "low": 300}[sev] * 1000
        rows.append({"alert_id": f"{sym}:{ts}", "kind": "price", "symbol": sym, "ts": ts, "price": 683.5,
                     "expected": 688.4, "residual": -0.007, "score": score, "threshold": 6.0,
                     "severity": sev, "model": "m@1"})
    rows += [{"alert_id": f"fb:{i}", "id": str(i), "ts": T0 + i * 9000, "p_negative": 0.99,
              "priority": ("P1", "P2", "P3")[i % 3], "reason": "r", "text_excerpt": "torn seam",
              "channel": "review", "customer_id": None, "model": "s@1"} for i in range(12)]
    return rows


def png_is_not_blank(png: bytes) -> bool:
    """Inflate the (8-bit RGB/RGBA) PNG's pixel rows: a blank page is one colour, whose filtered
    rows are one or two byte values; charts and text give many."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, color = struct.unpack(">IIBB", png[16:26])
    idat, pos = b"", 8
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        if kind == b"IDAT":
            idat += png[pos + 8:pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * (4 if color == 6 else 3) + 1
    body = b"".join(raw[i * stride + 1:(i + 1) * stride] for i in range(height))
    return depth == 8 and len(set(body[::97])) > 5


def test_the_report_renders_in_chromium_and_shows_the_alerts(tmp_path: Path) -> None:
    page = write_report(tmp_path / "report.html", classify(records(), "browser test"))
    dom = run_browser(tmp_path, "--virtual-time-budget=3000", "--dump-dom", page.as_uri())
    body = re.search(r"<body([^>]*)>", dom)
    assert body is not None
    assert 'data-rendered="3"' in body.group(1)  # the page's script ran and counted 3 alert marks
    width = re.search(r'data-chart-width="(\d+)"', body.group(1))
    assert width is not None and int(width.group(1)) > 500  # the SVG was laid out, not empty
    assert len(re.findall(r'class="alert-mark sev-(critical|high|low)"', dom)) == 3
    assert "SPY" in dom and "torn seam" in dom
    shot = tmp_path / "shot.png"
    run_browser(tmp_path, "--window-size=1100,1400", f"--screenshot={shot}", page.as_uri())
    assert shot.stat().st_size > 20_000 and png_is_not_blank(shot.read_bytes())
