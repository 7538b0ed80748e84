"""Progress bars on long work (rich, on stderr), or nothing when not asked for."""

from __future__ import annotations


class steps:
    """A rich progress bar (or nothing) whose ``advance()`` moves one step."""

    def __init__(self, enabled: bool, total: int, description: str):
        self.enabled, self.total, self.description = enabled, total, description

    def __enter__(self):
        if not self.enabled:
            return lambda: None
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)
        from rich.console import Console
        self._p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                           TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True))
        self._p.__enter__()
        task = self._p.add_task(self.description, total=self.total)
        return lambda: self._p.advance(task)

    def __exit__(self, *exc):
        if self.enabled:
            self._p.__exit__(*exc)
        return False
