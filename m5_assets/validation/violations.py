"""A broken rule, said the way a user needs it: which file, which line, which column, which rule."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd

MAX_EXAMPLES = 5


def shown(examples: pd.DataFrame) -> str:
    """The example rows as text, each text value quoted: a stray space or an empty string is
    visible ('CA_1 ' is not 'CA_1'), and a number is told from a text that looks like one."""
    quoted = examples.head(MAX_EXAMPLES).copy()
    for column in quoted.columns:
        if quoted[column].dtype == object or pd.api.types.is_string_dtype(quoted[column]):
            quoted[column] = [repr(str(v)) if isinstance(v, str) else v for v in quoted[column]]
    return quoted.to_string(index=False)


def _padded(examples: pd.DataFrame) -> bool:
    """Whether a text value of the examples starts or ends with white space."""
    return any(
        isinstance(v, str) and v != v.strip()
        for column in examples.columns
        for v in examples[column].head(MAX_EXAMPLES)
    )


def lines_of(examples: pd.DataFrame) -> tuple[int, ...]:
    """The file lines of the example rows (their ``line`` column), in order, each once."""
    if "line" not in examples.columns:
        return ()
    return tuple(dict.fromkeys(int(n) for n in examples["line"].dropna()))


@dataclass(frozen=True)
class Violation:
    """One rule broken by ``count`` rows of ``file``; ``lines`` are file lines (1 is the header),
    ``examples`` a few offending rows. A header problem has lines ``(1,)``."""

    file: str
    column: str
    rule: str
    count: int = 0
    examples: pd.DataFrame = field(default_factory=pd.DataFrame, compare=False)
    lines: tuple[int, ...] = ()

    def where(self) -> str:
        if not self.lines:
            return ""
        if self.lines == (1,):
            return "line 1 (header), "
        shown = self.lines[:MAX_EXAMPLES]
        more = ", ..." if len(self.lines) > len(shown) or self.count > len(shown) else ""
        return f"line{'s' if len(shown) > 1 or more else ''} {', '.join(map(str, shown))}{more}, "

    def message(self) -> str:
        head = f"{self.file}, {self.where()}column '{self.column}': {self.rule}"
        if self.count:
            head += f" — {self.count} offending row(s)"
        if self.examples.empty:
            return head
        if _padded(self.examples):
            head += " (a value below starts or ends with white space)"
        return f"{head}, e.g.\n{shown(self.examples)}"


class DataValidationError(Exception):
    """Raised when input cannot be read under its contract; carries every violation found."""

    def __init__(self, violations: list[Violation]) -> None:
        self.violations = violations
        super().__init__("\n".join(v.message() for v in violations))


def merged(parts: Iterable[Sequence[Violation]]) -> list[Violation]:
    """The violations that parts of one table (a store group's files each) found on their own
    rows, as one check of the whole table reports them: one per broken rule, in the order first
    found, the counts added and the first examples kept."""
    by_rule: dict[tuple[str, str, str], Violation] = {}
    for part in parts:
        for found in part:
            key = (found.file, found.column, found.rule)
            seen = by_rule.get(key)
            by_rule[key] = (
                found
                if seen is None
                else dataclasses.replace(
                    seen,
                    count=seen.count + found.count,
                    examples=pd.concat([seen.examples, found.examples], ignore_index=True).head(MAX_EXAMPLES),
                    lines=tuple(dict.fromkeys(seen.lines + found.lines)),
                )
            )
    return list(by_rule.values())


def describe(violations: list[Violation]) -> str:
    """Markdown for the UI: one bullet per violation, examples as code blocks."""
    parts = []
    for v in violations:
        rows = f" ({v.count} rows)" if v.count else ""
        parts.append(f"- **{v.file}**, {v.where()}column `{v.column}`: {v.rule}{rows}")
        if not v.examples.empty:
            parts.append("\n```\n" + shown(v.examples) + "\n```")
    return "\n".join(parts)
