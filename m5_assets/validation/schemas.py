"""Pandera schemas for the raw tables that fit comfortably in memory (calendar, prices).

Types are enforced when the CSV is read (see ``m5_assets.ingest``), so these schemas check
values only and leave dtypes unchecked.
"""

from __future__ import annotations

import ast
import re

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from m5_assets.validation.violations import MAX_EXAMPLES, Violation, lines_of

CALENDAR_SCHEMA = pa.DataFrameSchema(
    {
        "date": pa.Column(nullable=False, unique=True),
        "wm_yr_wk": pa.Column(None, pa.Check.gt(0), nullable=False),
        "wday": pa.Column(None, pa.Check.in_range(1, 7), nullable=False),
        "month": pa.Column(None, pa.Check.in_range(1, 12), nullable=False),
        "year": pa.Column(nullable=False),
        "d": pa.Column(None, pa.Check.str_matches(r"^d_[0-9]+$"), nullable=False, unique=True),
        r"snap_\w+": pa.Column(None, pa.Check.isin([0, 1]), nullable=False, regex=True),
    },
    checks=[
        pa.Check(
            lambda df: df["event_name_1"].isna() == df["event_type_1"].isna(),
            name="event_type_1 is given exactly when event_name_1 is",
        ),
        pa.Check(
            lambda df: df["event_name_2"].isna() == df["event_type_2"].isna(),
            name="event_type_2 is given exactly when event_name_2 is",
        ),
    ],
    strict=False,
)

PRICES_SCHEMA = pa.DataFrameSchema(
    {
        "store_id": pa.Column(nullable=False),
        "item_id": pa.Column(nullable=False),
        "wm_yr_wk": pa.Column(nullable=False),
        "sell_price": pa.Column(None, pa.Check.gt(0), nullable=False),
    },
    unique=["store_id", "item_id", "wm_yr_wk"],
    report_duplicates="exclude_first",
    strict=False,
)


# pandera names a failed check by its function ("greater_than(0)"); a user reads a sentence.
_CHECK_SENTENCES = {
    "greater_than": "must be greater than {}",
    "greater_than_or_equal_to": "must be at least {}",
    "less_than": "must be less than {}",
    "less_than_or_equal_to": "must be at most {}",
    "equal_to": "must equal {}",
    "not_equal_to": "must not equal {}",
    "in_range": "must be between {} and {}",
    "isin": "must be one of {}",
    "notin": "must not be one of {}",
    "str_matches": "must match the pattern {!r}",
    "str_startswith": "must start with {!r}",
    "str_endswith": "must end with {!r}",
    "not_nullable": "must be present (no empty cells)",
    "field_uniqueness": "must be unique: a value repeats an earlier row's",
    "multiple_fields_uniqueness": "must be unique together: a row repeats an earlier row's values",
}


def rule_sentence(check: str) -> str:
    """pandera's name of a failed check as a sentence; a check named by a sentence stays as it is."""
    match = re.fullmatch(r"(\w+)(?:\((.*)\))?", check, flags=re.DOTALL)
    if match is None or match.group(1) not in _CHECK_SENTENCES:
        return check
    name, arguments = match.groups()
    try:
        values = ast.literal_eval(f"({arguments},)") if arguments else ()
    except (ValueError, SyntaxError):
        return check
    shown = [", ".join(map(repr, v)) if isinstance(v, list | tuple | set) else v for v in values]
    sentence = _CHECK_SENTENCES[name]
    if sentence.count("{") != len(shown):
        return check
    return sentence.format(*shown)


def schema_violations(schema: pa.DataFrameSchema, frame: pd.DataFrame, file: str) -> list[Violation]:
    """Validate ``frame`` lazily and report each failed (column, check) once with examples."""
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as errors:
        cases = errors.failure_cases
        violations = []
        # A failed multi-column uniqueness check is reported once per column; keep one.
        unique_check = cases["check"] == "multiple_fields_uniqueness"
        cases = pd.concat(
            [cases[~unique_check], cases[unique_check].drop_duplicates(subset=["index"]).assign(column=None)]
        )
        for (column, check), rows in cases.groupby(["column", "check"], dropna=False, sort=False):
            index = pd.to_numeric(rows["index"], errors="coerce").dropna().astype(int)
            if len(index):
                # Rows carry their file line (see raw_rules.RawTable.scan); the frame's index does not.
                examples = frame.loc[index.sort_values().head(MAX_EXAMPLES)]
            else:
                examples = rows[["failure_case"]].head(MAX_EXAMPLES)
            column_name = column if isinstance(column, str) else ", ".join(schema.unique or [])
            violations.append(
                Violation(
                    file, column_name or "(table)", rule_sentence(str(check)), len(rows), examples, lines_of(examples)
                )
            )
        return violations
    return []
