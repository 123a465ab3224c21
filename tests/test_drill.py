import itertools

import pandas as pd
import pytest

from m5_assets.tables import LEVEL_KEYS
from m5_dashboard import drill

SERIES = pd.DataFrame(
    {
        "state_id": ["CA", "CA", "TX"],
        "store_id": ["CA_1", "CA_2", "TX_1"],
        "cat_id": ["FOODS", "HOBBIES", "FOODS"],
        "dept_id": ["FOODS_1", "HOBBIES_1", "FOODS_1"],
        "item_id": ["FOODS_1_001", "HOBBIES_1_001", "FOODS_1_001"],
    }
)


@pytest.mark.parametrize(
    "chosen, level",
    [
        ({}, 1),
        ({"state_id": "CA"}, 2),
        ({"state_id": "CA", "store_id": "CA_1"}, 3),
        ({"cat_id": "FOODS"}, 4),
        ({"cat_id": "FOODS", "dept_id": "FOODS_1"}, 5),
        ({"state_id": "CA", "cat_id": "FOODS"}, 6),
        ({"state_id": "CA", "dept_id": "FOODS_1"}, 7),
        ({"store_id": "CA_1", "cat_id": "FOODS"}, 8),
        ({"state_id": "CA", "store_id": "CA_1", "cat_id": "FOODS", "dept_id": "FOODS_1"}, 9),
        ({"dept_id": "FOODS_1", "item_id": "FOODS_1_001"}, 10),
        ({"state_id": "CA", "item_id": "FOODS_1_001"}, 11),
        ({"store_id": "CA_1", "item_id": "FOODS_1_001"}, 12),
    ],
)
def test_each_choice_of_filters_names_one_series_of_its_m5_level(chosen, level):
    got, filters = drill.level_of(chosen)
    assert got == level and set(filters) == set(LEVEL_KEYS[level])
    assert all(filters[k] == chosen[k] for k in filters)


def test_every_combination_of_the_five_filters_has_a_level():
    columns = [c for c, _, _ in drill.FILTERS]
    for size in range(len(columns) + 1):
        for subset in itertools.combinations(columns, size):
            level, _ = drill.level_of(dict.fromkeys(subset, "x"))
            assert 1 <= level <= 12


def test_a_wider_choice_narrows_the_options_below_it():
    assert sorted(drill.narrowed(SERIES, {"state_id": "CA"})["store_id"]) == ["CA_1", "CA_2"]
    assert drill.narrowed(SERIES, {"state_id": "TX", "cat_id": "HOBBIES"}).empty


def test_the_url_round_trips_the_filters_and_leaves_all_out():
    chosen = {"state_id": "CA", "store_id": "CA_1", "cat_id": drill.ALL}
    params = drill.to_url(chosen)
    assert params == {"state": "CA", "store": "CA_1"}
    assert drill.from_url(params | {"utm_source": "mail"}) == {"state_id": "CA", "store_id": "CA_1"}
