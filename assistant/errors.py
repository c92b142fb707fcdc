"""Errors that name the input at fault and the fix."""

from __future__ import annotations


class AssistantError(Exception):
    """A user-facing error: what is wrong, and what to do about it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class CorpusError(AssistantError):
    """One or more corpus files are invalid; each problem names file and line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        head = problems[0] if len(problems) == 1 else f"{len(problems)} corpus problems"
        super().__init__(head, "fix the file(s) named above and run the command again")

    def lines(self) -> list[str]:
        return list(self.problems)


class IndexStateError(AssistantError):
    """The index is missing, stale or was built with other settings."""


class InputError(AssistantError):
    """A question or parameter is not acceptable."""
