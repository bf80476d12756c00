"""Serving never imports TensorFlow (nor the training stack)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

BLOCKER = """
import importlib.abc, sys
BLOCKED = ("tensorflow", "tf2onnx", "keras", "pandas", "matplotlib", "sklearn")
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"serving imported {name}")
sys.meta_path.insert(0, Block())
import streaming.worker.run, streaming.worker.app, streaming.worker.prices, streaming.worker.feedback
import streaming.cli, streaming.tools.demo
import streaming.sources.producers_cli, streaming.tools.alerts
import sentinel.cli
sentinel.cli.build_parser()  # also wires the train/evaluate/export subcommands lazily
print("ok", sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED))
"""


def test_worker_and_cli_import_without_tensorflow() -> None:
    out = subprocess.run([sys.executable, "-c", BLOCKER], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok []"


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_streaming_and_export_never_import_training() -> None:
    """The layering rule ``training -> export <- streaming``, lazy imports included."""
    offenders = [f"{path.relative_to(REPO)}: {name}"
                 for package in ("streaming", "export")
                 for path in sorted((REPO / package).rglob("*.py"))
                 for name in _imported_modules(path)
                 if name == "training" or name.startswith("training.")]
    assert offenders == []
