"""Progress bars on stderr (stdout stays clean for --json)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator


@contextmanager
def progress_bar(total: int, label: str) -> Iterator[Callable[[], None]]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(),
                  console=console, transient=not console.is_terminal, disable=not console.is_terminal) as bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.advance(task)


@dataclass(frozen=True)
class RunCounts:
    """What a long run has done so far, for `run_progress`."""

    files: int
    files_total: int
    calls: int             # model calls answered
    calls_total: int       # model calls made so far (grows as files are sliced)
    speakers: int          # speakers judged
    speakers_total: int
    audio_s: float         # audio sliced so far


@contextmanager
def run_progress(label: str) -> Iterator[Callable[[RunCounts], None]]:
    """Two bars on a terminal (files, then model calls, whose total grows as files are sliced),
    with speakers judged, audio hours and speed in audio hours per hour; nothing otherwise."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    started = time.perf_counter()
    with Progress(TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[note]}"),
                  TimeElapsedColumn(), console=console, transient=True, disable=not console.is_terminal) as bar:
        files = bar.add_task(f"{label} files", total=None, note="")
        calls = bar.add_task("model calls", total=None, note="")

        def update(c: RunCounts) -> None:
            hours = c.audio_s / 3600
            speed = c.audio_s / max(time.perf_counter() - started, 1e-9)
            bar.update(files, completed=c.files, total=c.files_total, note=f"{hours:.3f} audio h, {speed:.1f} h/h")
            bar.update(calls, completed=c.calls, total=max(c.calls_total, 1),
                       note=f"speakers judged {c.speakers}/{c.speakers_total}")
        yield update
