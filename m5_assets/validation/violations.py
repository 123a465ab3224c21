"""A broken rule, said the way a user needs it: which file, which column, which rule, which rows."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Violation:
    """One rule broken by ``count`` rows of ``file``; ``examples`` shows a few of them."""

    file: str
    column: str
    rule: str
    count: int
    examples: pd.DataFrame = field(default_factory=pd.DataFrame, compare=False)

    def message(self) -> str:
        head = f"{self.file}, column '{self.column}': {self.rule} — {self.count} offending row(s)"
        if self.examples.empty:
            return head
        return f"{head}, e.g.\n{self.examples.head(MAX_EXAMPLES).to_string(index=False)}"


class DataValidationError(Exception):
    """Raised when input cannot be read under its contract; carries every violation found."""

    def __init__(self, violations: list[Violation]):
        self.violations = violations
        super().__init__("\n".join(v.message() for v in violations))


def describe(violations: list[Violation]) -> str:
    """Markdown for the UI: one bullet per violation, examples as code blocks."""
    parts = []
    for v in violations:
        parts.append(f"- **{v.file}**, column `{v.column}`: {v.rule} ({v.count} rows)")
        if not v.examples.empty:
            parts.append("\n```\n" + v.examples.head(MAX_EXAMPLES).to_string(index=False) + "\n```")
    return "\n".join(parts)
