"""Progress bars for long work (rich), including one Keras callback per training run."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

# Progress and status lines go to stderr so `--json` output on stdout stays machine-readable.
console = Console(stderr=True)


def bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=console)


def keras_progress(epochs: int, description: str) -> Any:
    """A Keras callback showing epochs done, losses and elapsed time; keeps per-epoch durations."""
    import keras

    class RichProgress(keras.callbacks.Callback):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.progress = bar()
            self.task: Any = None
            self.epoch_seconds: list[float] = []
            self._t0 = 0.0

        def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
            self.progress.start()
            self.task = self.progress.add_task(description, total=epochs, status="")

        def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            self.epoch_seconds.append(time.perf_counter() - self._t0)
            shown = " ".join(f"{k}={v:.4g}" for k, v in (logs or {}).items() if "loss" in k or "auc" in k)
            self.progress.update(self.task, advance=1, status=shown)

        def on_train_end(self, logs: dict[str, float] | None = None) -> None:
            self.progress.stop()

    return RichProgress()
