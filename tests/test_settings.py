"""One settings class: every variable of the project declared once, read nowhere else."""

import ast
import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from m5_assets import settings
from m5_assets.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("m5_assets", "m5_serving", "m5_dashboard")
# The only modules that touch os.environ: the settings and the libraries' own variables.
ENVIRONMENT_MODULES = {ROOT / "m5_assets" / "settings.py", ROOT / "m5_assets" / "library_env.py"}


def _sources():
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def test_only_the_settings_and_library_modules_read_the_environment():
    readers = []
    for path in _sources():
        if path in ENVIRONMENT_MODULES:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            named = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
            if named in ("environ", "getenv", "putenv", "unsetenv"):
                readers.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert readers == []


def test_no_module_of_the_project_is_imported_by_name_at_run_time():
    found = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                if any(n == "importlib" or (n.startswith("importlib") and not n.endswith("metadata")) for n in names):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def test_the_reference_page_names_every_setting_with_its_type_and_default():
    page = settings.reference()
    for name, field in settings.Settings.model_fields.items():
        (row,) = [line for line in page.splitlines() if line.startswith(f"| `{settings.Settings.variable(name)}` |")]
        assert field.description and field.description in row
        if field.default not in (None, "", ()):
            assert f"`{field.default}`" in row


def test_values_are_typed_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("M5_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("M5_FORECAST_START", "2016-04-25")
    monkeypatch.setenv("M5_API_CORS_ORIGINS", "https://a.example, https://b.example,")
    monkeypatch.setenv("M5_API_PROTECT_HEALTH", "true")
    monkeypatch.setenv("M5_API_KEYS_FILE", "")
    read = load_settings()
    assert read.paths.root == tmp_path.resolve()
    assert read.forecast_start == dt.date(2016, 4, 25)
    assert read.api_cors_origins == ("https://a.example", "https://b.example")
    assert read.api_protect_health is True and read.api_keys_file is None


@pytest.mark.parametrize(
    "variable, value, rule",
    [
        ("M5_STORE_GROUPS", "0", "greater than or equal to 1"),
        ("M5_STORE_GROUPS", "two", "valid integer"),
        ("M5_STEP_EXECUTOR", "celery", "'multiprocess' or 'k8s'"),
        ("M5_FORECAST_START", "2016-13-01", "valid date"),
        ("M5_API_RATE_LIMIT", "-1", "greater than or equal to 0"),
    ],
)
def test_a_refused_value_names_its_variable_value_and_rule(monkeypatch, variable, value, rule):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert f"{variable}={value!r}" in str(refused.value) and rule in str(refused.value)


def test_m5_refuses_to_start_on_a_bad_setting_before_doing_anything(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "M5_DATA_DIR": str(tmp_path), "M5_STORE_GROUPS": "none"}
    done = subprocess.run(
        [sys.executable, "-m", "m5_assets.cli", "run"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert "M5_STORE_GROUPS='none'" in done.stderr
    assert not (tmp_path / "raw").exists()  # no demo data generated, no run started
