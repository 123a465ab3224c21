"""Named sizes of the synthetic data set: tiny for tests, small for the demo, full M5 shape."""

from __future__ import annotations

from dataclasses import dataclass

# Items per department in the real M5 data (3,049 items in all).
M5_ITEMS_PER_DEPT = {
    "HOBBIES_1": 416,
    "HOBBIES_2": 149,
    "HOUSEHOLD_1": 532,
    "HOUSEHOLD_2": 515,
    "FOODS_1": 216,
    "FOODS_2": 398,
    "FOODS_3": 823,
}
M5_STORES_PER_STATE = {"CA": 4, "TX": 3, "WI": 3}


@dataclass(frozen=True)
class Scale:
    """How many stores, items and days a generated data set has."""

    name: str
    stores_per_state: dict[str, int]
    items_per_dept: dict[str, int]
    n_days: int

    @property
    def store_ids(self) -> list[str]:
        return [f"{state}_{k}" for state, n in self.stores_per_state.items() for k in range(1, n + 1)]

    @property
    def n_items(self) -> int:
        return sum(self.items_per_dept.values())

    @property
    def n_series(self) -> int:
        return self.n_items * len(self.store_ids)


SCALES: dict[str, Scale] = {
    "tiny": Scale(
        name="tiny",
        stores_per_state={"CA": 2, "TX": 1},
        items_per_dept={"HOBBIES_1": 2, "HOUSEHOLD_1": 2, "FOODS_1": 3, "FOODS_3": 3},
        n_days=500,
    ),
    "small": Scale(
        name="small",
        stores_per_state=M5_STORES_PER_STATE,
        items_per_dept={
            "HOBBIES_1": 15,
            "HOBBIES_2": 5,
            "HOUSEHOLD_1": 15,
            "HOUSEHOLD_2": 15,
            "FOODS_1": 15,
            "FOODS_2": 20,
            "FOODS_3": 30,
        },
        n_days=1941,
    ),
    "full": Scale(
        name="full",
        stores_per_state=M5_STORES_PER_STATE,
        items_per_dept=M5_ITEMS_PER_DEPT,
        n_days=1941,
    ),
}
