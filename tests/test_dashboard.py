"""The Streamlit dashboard on the tiny data: every page runs, its KPIs equal values computed here
from the warehouse files with pyarrow and DuckDB, empty warehouses get a message, and a real
browser renders every page."""

import datetime as dt
import json
import os
import shutil
import sys
import time
from pathlib import Path
from statistics import NormalDist

import browser
import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import servers
from conftest import NEWEST
from forecasting import WEAK, copy_data, issue, score, train
from streamlit.testing.v1 import AppTest

from m5_assets import reader, tables

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["home", "forecasting", "performance", "inventory", "data_quality"]
SCORED = ("2016-04-20", "2016-04-21")


@pytest.fixture(scope="module")
def dashboard_dir(tmp_path_factory, warehouse_dir):
    """The API's warehouse plus an April model whose forecasts of 2016-04-20 and -21 are scored."""
    data_dir = tmp_path_factory.mktemp("dashboard")
    copy_data(warehouse_dir, data_dir)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        train(data_dir, "2016-04-01", WEAK)
        issue(data_dir, *SCORED)
        score(data_dir, *SCORED)
    return data_dir


def _page(name: str, data_dir: Path, monkeypatch, query: dict[str, str] | None = None) -> AppTest:
    monkeypatch.setenv("M5_DATA_DIR", str(data_dir))
    # AppTest leaves the page installed as __main__: a later test that spawns processes
    # (multiprocess runs) would have each child run the page. Put the real one back.
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])
    app = AppTest.from_file(str(ROOT / "m5_dashboard" / "pages" / f"{name}.py"), default_timeout=60)
    app.query_params.update(query or {})
    return app.run()


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs_without_an_exception(page, dashboard_dir, monkeypatch):
    app = _page(page, dashboard_dir, monkeypatch)
    assert not app.exception, [e.message for e in app.exception]
    assert not app.info  # nothing missing: no "run make run first"


def test_home_kpis_equal_the_warehouse_files(dashboard_dir, monkeypatch):
    metrics = {m.label: m for m in _page("home", dashboard_dir, monkeypatch).metric}
    root = dashboard_dir / "warehouse"
    forecast = (
        pq.read_table(tables.FORECASTS.path(root, NEWEST), columns=["forecast"]).column("forecast").to_numpy().sum()
    )
    assert metrics["Units forecast, next 28 days"].value == f"{forecast:,.0f}"
    sold = duckdb.sql(
        f"SELECT sum(units) FROM read_parquet('{tables.SALES_LONG.path(root)}') "
        f"WHERE date BETWEEN DATE '{NEWEST - dt.timedelta(days=28)}' AND DATE '{NEWEST - dt.timedelta(days=1)}'"
    ).fetchall()[0][0]
    assert metrics["Units forecast, next 28 days"].delta == f"{100 * (forecast / sold - 1):+.1f} % vs the last 28 days"
    latest = pq.read_table(tables.FORECAST_ACCURACY.path(root, dt.date.fromisoformat(SCORED[-1]))).to_pylist()[0]
    assert metrics[f"WRMSSE, forecast of {SCORED[-1]}"].value == f"{latest['wrmsse']:.3f}"
    assert metrics["95 % interval coverage"].value == f"{latest['coverage_95']:.1f} %"
    assert metrics["Newest forecast date"].value == NEWEST.isoformat()
    assert metrics["Last sales day"].value == "2016-05-22"


def test_the_data_page_counts_the_checks_the_pipeline_recorded(dashboard_dir, monkeypatch):
    (metric,) = _page("data_quality", dashboard_dir, monkeypatch).metric
    results = duckdb.sql(
        f"SELECT passed FROM read_parquet('{tables.CHECK_RESULTS.folder(dashboard_dir / 'warehouse')}/*/*.parquet')"
    ).fetchall()
    assert metric.value == f"{sum(p for (p,) in results)} of {len(results)}" and len(results) >= 13


@pytest.mark.parametrize("page", PAGES)
def test_an_empty_warehouse_or_one_without_forecasts_says_what_to_run(page, tmp_path, built, monkeypatch):
    shutil.copytree(built["tiny"], tmp_path / "features-only" / "warehouse")
    for data_dir in (tmp_path / "empty", tmp_path / "features-only"):
        app = _page(page, data_dir, monkeypatch)
        assert not app.exception, [e.message for e in app.exception]
        if page == "data_quality" and data_dir.name == "features-only":
            continue  # checks, catalog and sales exist before any forecast
        assert any("make run" in i.value for i in app.info), [i.value for i in app.info]


@pytest.fixture
def dashboard_server(dashboard_dir, tmp_path):
    port = servers.free_port()
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROOT / "m5_dashboard" / "app.py"),
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    with servers.started(
        command, os.environ | {"M5_DATA_DIR": str(dashboard_dir)}, tmp_path / "streamlit.log"
    ) as server:
        servers.wait_until(
            lambda: servers.http_ok(f"http://127.0.0.1:{port}/_stcore/health"), server, "streamlit", seconds=60
        )
        yield f"http://127.0.0.1:{port}"


EXPECTED = {
    "home": ["Units forecast, next 28 days", "WRMSSE, forecast of 2016-04-21", "by state"],
    "forecasting": ["Forecast issued on", "Download these rows (CSV)"],
    "performance": ["WRMSSE by forecast date", "Models in use", "Feature drift"],
    "inventory": ["Service level", "Safety stock", "Most exposed"],
    "data_quality": ["Asset checks, latest results", "Feature catalog", "Sales explorer"],
}


@pytest.mark.skipif(
    not browser.available(),
    reason="chromium and chromedriver (Debian packages) are not installed; .ci/run installs them",
)
def test_every_page_renders_in_a_real_browser(dashboard_server, tmp_path):
    driver = browser.open_browser(browser.new_profile())
    try:
        for page, texts in EXPECTED.items():
            driver.get(f"{dashboard_server}/{'' if page == 'home' else page}")
            browser.wait_for_text(driver, texts)
            assert not browser.exception_boxes(driver), browser.exception_boxes(driver)
            driver.save_screenshot(str(tmp_path / f"{page}.png"))
            assert (tmp_path / f"{page}.png").stat().st_size > 10_000
    finally:
        driver.quit()


def test_the_models_table_says_how_each_model_issues(dashboard_dir, monkeypatch):
    app = _page("performance", dashboard_dir, monkeypatch)
    (table,) = [d.value for d in app.dataframe if "issued as" in d.value]
    cards = duckdb.sql(
        f"SELECT model_version, issue_rule FROM read_parquet('{tables.MODEL_CARDS.folder(dashboard_dir / 'warehouse')}/*/*.parquet')"
    ).df()
    expected = {
        str(v): json.loads(r)["issued_as"] for v, r in zip(cards["model_version"], cards["issue_rule"], strict=True)
    }
    assert expected and table["issued as"].to_dict() == expected
    # Like for like: each model beside the version it was compared with, on the model's own window.
    compared = duckdb.sql(
        f"SELECT model_version, serving_version, serving_wrmsse_same_window FROM read_parquet('{tables.MODEL_CARDS.folder(dashboard_dir / 'warehouse')}/*/*.parquet', union_by_name = true)"
    ).df()
    for row in compared.itertuples():
        shown = table.loc[str(row.model_version)]
        versus = shown["compared with version"]
        assert (str(versus) if pd.notna(versus) else "") == (row.serving_version or "")
        assert shown["its WRMSSE, same window"] == pytest.approx(round(row.serving_wrmsse_same_window, 4), nan_ok=True)


def test_the_inventory_slider_recomputes_safety_stock_from_the_plans_sigma(dashboard_dir, monkeypatch):
    app = _page("inventory", dashboard_dir, monkeypatch)
    plan = pq.read_table(tables.INVENTORY_PLAN.path(dashboard_dir / "warehouse", NEWEST)).to_pandas()
    shown = {m.label: m.value for m in app.metric}
    assert shown["Safety stock"] == f"{plan['safety_stock'].sum():,.0f} units"  # at the plan's own level
    totals = []
    for level in (0.8, 0.99):
        app.slider[0].set_value(level).run()
        shown = {m.label: m.value for m in app.metric}
        expected = NormalDist().inv_cdf(level) * plan["lead_time_sigma"].sum()
        assert shown["Safety stock"] == f"{expected:,.0f} units"
        assert shown["Reorder points"] == f"{plan['lead_time_demand'].sum() + expected:,.0f} units"
        totals.append(expected)
    assert totals[0] < totals[1]


def test_the_performance_page_shows_the_drift_of_each_issued_date(dashboard_dir, monkeypatch):
    app = _page("performance", dashboard_dir, monkeypatch)
    stored = pq.read_table(tables.FEATURE_DRIFT.path(dashboard_dir / "warehouse", NEWEST)).to_pandas()
    (table,) = [d.value for d in app.dataframe if "PSI" in d.value]
    assert table["feature"].tolist() == stored["feature"].tolist()


def test_the_performance_page_shows_the_backtest_table_the_warehouse_holds(dashboard_dir, tmp_path, monkeypatch):
    from test_backtest import _scores

    from m5_assets.backtest import report

    copy_data(dashboard_dir, tmp_path)
    scores = _scores()
    path = tables.BACKTEST_REPORT.path(tmp_path / "warehouse")
    path.parent.mkdir(parents=True)
    scores.to_parquet(path, index=False)
    app = _page("performance", tmp_path, monkeypatch)
    assert not app.exception, [e.message for e in app.exception]
    (shown,) = [d.value for d in app.dataframe if "worst_origin_bias_pct" in d.value]
    expected = report.method_table(scores).round(4)
    assert (
        shown["method"].tolist() == expected["method"].tolist()
        and shown["wrmsse"].tolist() == expected["wrmsse"].tolist()
    )
    (targets,) = [d.value for d in app.dataframe if "target" in d.value]
    assert "MISSED" in targets["met"].tolist()  # 80 % coverage at level 10 is 76 %


def test_a_failing_check_is_listed_first_in_red_and_home_links_it(dashboard_dir, tmp_path, monkeypatch):
    data_dir = tmp_path / "failing"
    copy_data(dashboard_dir, data_dir)
    folder = tables.CHECK_RESULTS.folder(data_dir / "warehouse")
    last = sorted(folder.iterdir())[-1] / "data.parquet"  # the check listed last when all pass
    result = pq.read_table(last).to_pandas()
    pq.write_table(pa.Table.from_pandas(result.assign(passed=False), preserve_index=False), last)
    asset, check = result["asset"].iloc[0], result["check"].iloc[0]

    page = _page("data_quality", data_dir, monkeypatch)
    (table,) = [d for d in page.dataframe if "result" in d.value]
    first = table.value.iloc[0]
    assert (first["asset"], first["check"], first["result"]) == (asset, check, "FAILED")
    assert (table.value["result"] == "FAILED").sum() >= 1 and any("failing" in e.value for e in page.error)

    home = _page("home", data_dir, monkeypatch)
    (banner,) = [e.value for e in home.error]
    assert f"[{asset} · {check}](" in banner and f"/assets/{asset}?view=checks" in banner
    # Nothing fails in the warehouse the pipeline wrote: no banner there.
    assert not _page("home", dashboard_dir, monkeypatch).error or any(
        not p
        for (p,) in duckdb.sql(
            f"SELECT passed FROM read_parquet('{tables.CHECK_RESULTS.folder(dashboard_dir / 'warehouse')}/*/*.parquet')"
        ).fetchall()
    )


def test_the_sales_explorer_opens_on_the_last_six_months_with_every_day_a_click_away():
    from m5_dashboard import charts

    days = pd.date_range("2014-01-01", "2016-05-22")
    history = pd.DataFrame({"date": days, "units": 1.0, "sell_price": 2.0, "snap": 0, "event_name_1": None})
    fig = charts.sales_chart(history, "a series")
    start, end = (pd.Timestamp(x) for x in fig.layout.xaxis.range)
    assert (start, end) == (pd.Timestamp("2015-11-22"), pd.Timestamp("2016-05-22"))
    assert len(fig.data[0].x) == len(days)  # the whole history is plotted, only the view is narrowed
    assert [b.label for b in fig.layout.xaxis.rangeselector.buttons] == ["6 months", "1 year", "all"]


def test_the_drift_chart_has_a_legend_entry_for_every_colour_and_keeps_the_largest_first():
    from m5_dashboard import charts

    drift = pd.DataFrame(
        {
            "feature": ["roll_mean_28", "has_event", "sell_price", "units_lag_28"],
            "score": [0.4, 0.3, 0.15, 0.01],
            "status": ["drift", "calendar", "warn", "ok"],
        }
    )
    fig = charts.drift_bars(drift, 0.1, 0.25, "drift")
    assert {t.name for t in fig.data} == {"drift", "warn", "ok", "measured, not judged (events)"}
    assert all(t.showlegend is not False for t in fig.data)
    assert list(fig.layout.xaxis.categoryarray) == drift["feature"].tolist()


def test_the_performance_page_shows_each_level_s_wape_bias_and_coverage_as_materialized(dashboard_dir, monkeypatch):
    from m5_assets.intervals import short_of_nominal

    app = _page("performance", dashboard_dir, monkeypatch)
    assert not app.exception, [e.message for e in app.exception]
    scored = reader.read_accuracy(dashboard_dir / "warehouse").iloc[-1]  # the date the page opens on
    (table,) = [d.value for d in app.dataframe if "WAPE %" in d.value and "level" in d.value]
    assert table["level"].tolist() == list(range(1, 13))
    for row in table.to_dict("records"):
        level = row["level"]
        assert row["WAPE %"] == pytest.approx(round(scored[f"wape_level_{level}"], 1))
        assert row["bias %"] == pytest.approx(round(scored[f"bias_level_{level}"], 1))
        assert row["95 % coverage"] == pytest.approx(round(scored[f"coverage_95_level_{level}"], 1))
    # The warning names exactly the levels short of nominal beyond chance, judged on their own size.
    day = scored["forecast_date"]
    sizes = pq.read_table(tables.FORECAST_LEVELS.path(dashboard_dir / "warehouse", day)).to_pandas()["level"]
    sizes = sizes.value_counts().to_dict() | {
        12: pq.read_metadata(tables.FORECASTS.path(dashboard_dir / "warehouse", day)).num_rows
    }
    short = {
        (level, nominal)
        for level in range(1, 13)
        for nominal in (80, 95)
        if short_of_nominal(scored[f"coverage_{nominal}_level_{level}"], nominal, sizes[level])
    }
    warned = " ".join(w.value for w in app.warning)
    for level, nominal in short:
        assert f"level {level} (" in warned and f"the {nominal} % band" in warned
    assert bool(short) == ("Intervals too narrow" in warned)
    # Each figure's definition is one hover away, and written out under the chart.
    assert "sum of |forecast - actual|" in " ".join(c.value for c in app.caption)


def _filter(app: AppTest, label: str):
    (box,) = [b for b in app.selectbox if b.label == label]
    return box


def test_choosing_a_state_narrows_the_stores_and_the_view_is_the_level_it_names(dashboard_dir, monkeypatch):
    app = _page("forecasting", dashboard_dir, monkeypatch)
    series = pq.read_table(tables.FORECASTS.path(dashboard_dir / "warehouse", NEWEST)).to_pandas()
    assert _filter(app, "Store").options == ["All", *sorted(series["store_id"].unique())]
    assert "Level 1: Total" in " ".join(c.value for c in app.caption)
    state = sorted(series["state_id"].unique())[-1]
    _filter(app, "State").set_value(state).run()
    stores = sorted(series.loc[series["state_id"] == state, "store_id"].unique())
    assert _filter(app, "Store").options == ["All", *stores]
    _filter(app, "Store").set_value(stores[0]).run()
    category = sorted(series.loc[series["store_id"] == stores[0], "cat_id"].unique())[0]
    _filter(app, "Category").set_value(category).run()
    assert f"Level 8: Store x Category, series {stores[0]}/{category}" in " ".join(c.value for c in app.caption)
    # The table is that series' 28 days, as forecast_levels holds them.
    levels = pq.read_table(tables.FORECAST_LEVELS.path(dashboard_dir / "warehouse", NEWEST)).to_pandas()
    held = levels[(levels["level"] == 8) & (levels["store_id"] == stores[0]) & (levels["cat_id"] == category)]
    (table,) = [d.value for d in app.dataframe if "forecast (units)" in d.value]
    assert table["forecast (units)"].tolist() == held.sort_values("horizon")["forecast"].round(1).tolist()
    # The URL now carries the view: a copied link opens on the same series.
    assert dict(app.query_params) == {"date": str(NEWEST), "state": state, "store": stores[0], "cat": category}
    again = _page("forecasting", dashboard_dir, monkeypatch, query=dict(app.query_params))
    assert [c.value for c in again.caption if "Level" in c.value] == [
        c.value for c in app.caption if "Level" in c.value
    ]
    assert _filter(again, "Store").value == stores[0] and _filter(again, "State").value == state


def test_a_link_to_an_item_in_a_store_opens_its_bottom_level_forecast(dashboard_dir, monkeypatch):
    series = pq.read_table(tables.FORECASTS.path(dashboard_dir / "warehouse", NEWEST)).to_pandas()
    first = series.iloc[0]
    app = _page("forecasting", dashboard_dir, monkeypatch, query={"store": first["store_id"], "item": first["item_id"]})
    assert not app.exception, [e.message for e in app.exception]
    assert f"Level 12: Item x Store, series {first['item_id']}/{first['store_id']}" in " ".join(
        c.value for c in app.caption
    )


def test_the_forecast_chart_overlays_the_same_weekdays_last_year_and_marks_the_calendar_s_events(
    dashboard_dir, monkeypatch
):
    from m5_dashboard import charts, data

    monkeypatch.setenv("M5_DATA_DIR", str(dashboard_dir))
    calendar = pq.read_table(tables.RAW_CALENDAR.path(dashboard_dir / "warehouse")).to_pandas()
    with_events = calendar[calendar["event_name_1"].notna()]
    first = dt.date.fromisoformat(str(with_events["date"].iloc[-1])) - dt.timedelta(days=10)
    last = first + dt.timedelta(days=27)
    events = data.events(first, last)
    held = with_events[(with_events["date"].astype(str) >= str(first)) & (with_events["date"].astype(str) <= str(last))]
    assert events["date"].astype(str).tolist() == held["date"].astype(str).tolist() and len(events) >= 1
    days = pd.date_range(first, last).date
    forecast = pd.DataFrame(
        {"date": days, "forecast": 1.0} | {f"{s}_{c}": 1.0 for s in ("lo", "hi") for c in (50, 80, 95)}
    )
    year_before = pd.DataFrame({"date": [d - dt.timedelta(days=364) for d in days], "units": range(28)})
    fig = charts.forecast_chart(
        pd.DataFrame(columns=["date", "units"]), forecast, pd.DataFrame(), "t", year_before, events
    )
    (overlay,) = [t for t in fig.data if t.name == "same weekdays last year"]
    # Drawn on the days it is compared with: each point a year after it was sold, on the same weekday.
    assert [pd.Timestamp(x).date() for x in overlay.x] == list(days) and list(overlay.y) == list(range(28))
    assert [a.text for a in fig.layout.annotations] == events["event"].tolist()
    assert fig.layout.modebar.orientation == "v"  # the toolbar stands at the side, off the title


def test_home_says_when_the_last_forecast_run_failed_and_links_it_until_a_run_succeeds(
    dashboard_dir, tmp_path, monkeypatch
):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # The pipeline's own runs succeeded: their outcomes are recorded, and Home raises nothing.
    outcomes = duckdb.sql(
        f"SELECT status FROM read_parquet('{tables.RUN_OUTCOMES.folder(dashboard_dir / 'warehouse')}/*/*.parquet')"
    ).fetchall()
    assert sorted(outcomes) == [("succeeded",), ("succeeded",)]
    assert not [e for e in _page("home", dashboard_dir, monkeypatch).error if "run failed" in e.value]

    data_dir = copy_data(dashboard_dir, tmp_path / "no-model")  # no MLflow store: no model to issue with
    failed = issue(data_dir, NEWEST.isoformat(), raise_on_error=False)
    assert not failed.success
    (banner,) = [e.value for e in _page("home", data_dir, monkeypatch).error if "run failed" in e.value]
    assert "The last issue_forecast run failed (launched by manual" in banner
    assert f"/runs/{failed.run_id})" in banner

    train(data_dir, "2016-04-01", WEAK)
    assert issue(data_dir, NEWEST.isoformat()).success
    assert not [e for e in _page("home", data_dir, monkeypatch).error if "run failed" in e.value]


@pytest.mark.skipif(not browser.available(), reason="chromium and chromedriver (Debian packages) are not installed")
def test_in_a_browser_a_copied_link_and_home_s_and_the_heat_map_s_click_through_open_the_drilled_down_view(
    dashboard_server, dashboard_dir
):
    from selenium.webdriver.common.by import By

    series = pq.read_table(tables.FORECASTS.path(dashboard_dir / "warehouse", NEWEST)).to_pandas()
    store, category = sorted(series["store_id"].unique())[0], sorted(series["cat_id"].unique())[0]
    driver = browser.open_browser(browser.new_profile())
    try:
        driver.get(f"{dashboard_server}/forecasting?date={NEWEST}&store={store}&cat={category}")
        browser.wait_for_text(driver, [f"Level 8: Store x Category, series {store}/{category}"])
        assert not browser.exception_boxes(driver)

        driver.get(dashboard_server)
        browser.wait_for_text(driver, ["Open the forecast of"])
        driver.find_element(By.XPATH, "//*[@role='tab'][contains(., 'by store')]").click()
        driver.find_element(By.LINK_TEXT, store).click()
        driver.switch_to.window(driver.window_handles[-1])  # Streamlit opens a link in a new tab
        browser.wait_for_text(driver, [f"Level 3: Store, series {store}"])
        assert f"store={store}" in driver.current_url

        # A heat-map cell's link (its row in the table beside it, worst first) opens that series.
        driver.get(f"{dashboard_server}/performance")
        browser.wait_for_text(driver, ["WAPE of each store x department", "WAPE, bias and interval coverage per level"])
        worst = _worst_cell_link(dashboard_dir)
        driver.get(f"{dashboard_server}/{worst}")
        store, dept = worst.split("store=")[1].split("&")[0], worst.split("dept=")[1].split("&")[0]
        browser.wait_for_text(driver, [f"Level 9: Store x Department, series {store}/{dept}"])
    finally:
        driver.quit()


@pytest.mark.skipif(not browser.available(), reason="chromium and chromedriver (Debian packages) are not installed")
def test_in_a_browser_a_failing_check_is_named_first_and_linked_and_the_service_level_moves_safety_stock(
    dashboard_dir, tmp_path
):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.wait import WebDriverWait

    data_dir = copy_data(dashboard_dir, tmp_path / "failing")
    folder = tables.CHECK_RESULTS.folder(data_dir / "warehouse")
    last = sorted(folder.iterdir())[-1] / "data.parquet"  # the check listed last when all pass
    result = pq.read_table(last).to_pandas()
    pq.write_table(pa.Table.from_pandas(result.assign(passed=False), preserve_index=False), last)
    asset, check = result["asset"].iloc[0], result["check"].iloc[0]
    port = servers.free_port()
    command = [sys.executable, "-m", "streamlit", "run", str(ROOT / "m5_dashboard" / "app.py")]
    command += ["--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless", "true"]
    with servers.started(command, os.environ | {"M5_DATA_DIR": str(data_dir)}, tmp_path / "streamlit.log") as server:
        base = f"http://127.0.0.1:{port}"
        servers.wait_until(lambda: servers.http_ok(f"{base}/_stcore/health"), server, "streamlit", seconds=60)
        driver = browser.open_browser(browser.new_profile())
        try:
            driver.get(base)
            browser.wait_for_text(driver, ["data-quality check(s) failing"])
            (banner,) = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stAlertContentError"]')
            (link,) = banner.find_elements(By.LINK_TEXT, f"{asset} · {check}")
            assert link.get_attribute("href").endswith(f"/assets/{asset}?view=checks")

            driver.get(f"{base}/data_quality")
            browser.wait_for_text(driver, ["check(s) failing: listed first, in red"])

            driver.get(f"{base}/inventory")
            before = browser.wait_for_text(driver, ["Safety stock"]).split("Safety stock\n")[1].split("\n")[0]
            # The slider's range input is drawn after its label and the metrics: wait for it.
            thumb = WebDriverWait(driver, 30).until(
                lambda d: d.find_element(By.CSS_SELECTOR, '[data-testid="stSlider"] input[type="range"]')
            )
            driver.execute_script("arguments[0].focus();", thumb)  # the range input is visually hidden
            ActionChains(driver).send_keys(Keys.END).perform()  # the highest service level it offers
            time.sleep(1)
            after = browser.wait_for_text(driver, ["Safety stock"]).split("Safety stock\n")[1].split("\n")[0]
            units = [float(v.replace(",", "").split()[0]) for v in (before, after)]
            assert units[1] > units[0], (before, after)
        finally:
            driver.quit()


def _worst_cell_link(data_dir: Path) -> str:
    """The link the Performance page gives the heat map's worst cell, read from the page."""
    import contextlib

    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stderr(None):
        app = _page("performance", data_dir, patch)
    (table,) = [d.value for d in app.dataframe if "department" in d.value and "forecast" in d.value]
    return table["forecast"].iloc[0]


def test_every_heat_map_cell_is_a_row_linked_to_its_forecast_worst_first(dashboard_dir, monkeypatch):
    from m5_dashboard import drill

    app = _page("performance", dashboard_dir, monkeypatch)
    (table,) = [d.value for d in app.dataframe if "department" in d.value and "forecast" in d.value]
    series = pq.read_table(tables.FORECASTS.path(dashboard_dir / "warehouse", SCORED[-1])).to_pandas()
    assert len(table) == len(series[["store_id", "dept_id"]].drop_duplicates())
    assert table["WAPE %"].is_monotonic_decreasing
    first = table.iloc[0]
    assert first["forecast"] == drill.link({"date": SCORED[-1], "store": first["store"], "dept": first["department"]})
