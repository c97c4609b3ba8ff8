"""The one exception type users see for bad input."""

from pathlib import Path


class InputError(ValueError):
    """A file, or a config value, that hepclust cannot use; the message names it and the problem."""

    def __init__(self, source: str | Path, problem: str):
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{source}: {problem}")
