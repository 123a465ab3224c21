"""The README and the documentation site: the site builds strictly and offline, every page the
README map names is in its navigation, the generated references cover everything they document,
and the README's commands name real make targets and `m5` commands."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import types
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from m5_assets import cli, settings, tables

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"


def _module(name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, DOCS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reference():
    return _module("gen_reference")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site as `make docs` builds it (strict), into a temporary folder."""
    out = tmp_path_factory.mktemp("site")
    env = os.environ | {"NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
    mkdocs = Path(sys.executable).with_name("mkdocs")
    done = subprocess.run(
        [str(mkdocs), "build", "--strict", "-d", str(out)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def _nav_pages(items) -> set[str]:
    pages: set[str] = set()
    for item in items:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        pages |= _nav_pages(value) if isinstance(value, list) else {value}
    return pages


def _config() -> dict:
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text())


class _Tags(HTMLParser):
    """Every address a page loads: `script src` and `link href`."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href"}.get(tag)
        self.loaded += [value for name, value in attrs if name == wanted and value]


def test_the_site_builds_strictly_and_loads_nothing_from_another_host(site):
    pages = list(site.rglob("*.html"))
    assert len(pages) > 40
    remote = []
    for page in pages:
        tags = _Tags()
        tags.feed(page.read_text())
        remote += [f"{page.relative_to(site)}: {url}" for url in tags.loaded if urlsplit(url).netloc]
    assert remote == []
    # No web font is asked for, not even from the theme's stylesheets.
    for sheet in site.rglob("*.css"):
        assert "fonts.googleapis" not in sheet.read_text()


def test_every_page_of_the_navigation_is_built_and_the_generated_references_are_among_them(site):
    for page in _nav_pages(_config()["nav"]):
        assert (site / page.removesuffix("index.md").removesuffix(".md") / "index.html").exists(), page
    for name in ("settings", "tables", "api", "cli", "layout"):
        assert (
            "Generated from the code when the site is built" in (site / "reference" / name / "index.html").read_text()
        )
    assert (site / "reference" / "openapi.json").exists()


def test_every_page_the_readme_map_names_is_in_the_navigation_and_every_old_section_is_mapped():
    nav = _nav_pages(_config()["nav"])
    rows = [
        (found.group(1), line)
        for line in (DOCS / "readme-map.md").read_text().splitlines()
        if (found := re.match(r"\| `+ ?(#{1,4} .*?) ?`+ \|", line))
    ]
    # The README of 1dc4f5b, the last one of one page, had 31 headings; each has its row, once.
    headings = [heading for heading, _ in rows]
    assert len(headings) == 31 and len(set(headings)) == 31 and headings[0] == "# m5-forecasting"
    for _, row in rows:
        targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", row.split(" | ", 1)[1])
        assert targets and all(t in nav for t in targets), row


def _code_blocks(text: str) -> list[list[str]]:
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("```"):
            if current is None:
                current = []
            else:
                blocks.append(current)
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def _make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))


@pytest.mark.parametrize("page", [README, *sorted(p for p in DOCS.rglob("*.md"))], ids=lambda p: p.name)
def test_every_command_in_a_code_block_names_a_real_target_or_m5_command(reference, page):
    targets = _make_targets()
    commands = reference.subcommands(cli.parser())
    for block in _code_blocks(page.read_text()):
        for line in block:
            words = line.split("#", 1)[0].split()
            while words and "=" in words[0]:  # VAR=value make up
                words = words[1:]
            if not words:
                continue
            if words[0] == "make":
                named = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
                assert named and all(t in targets for t in named), f"{page.name}: {line}"
            elif words[0] in ("m5", ".venv/bin/m5"):
                assert len(words) > 1 and words[1] in commands, f"{page.name}: {line}"
                sub = commands[words[1]]
                known = {flag for action in sub._actions for flag in action.option_strings}
                flags = [w.split("=")[0] for w in words[2:] if w.startswith("--")]
                assert set(flags) <= known, f"{page.name}: {line}"


def test_the_readme_is_short_and_links_only_to_what_exists():
    text = README.read_text()
    assert len(text.splitlines()) <= 150
    for target in re.findall(r"\]\(([^)]+)\)", text):
        if urlsplit(target).scheme or target.startswith("#"):
            continue
        assert (ROOT / target.split("#")[0]).exists(), target
    for image in ("docs/dashboard-home.png", "docs/dagster-asset-graph.png"):
        assert f"]({image})" in text


def test_the_readme_sample_output_is_the_script_s_abridgement_of_a_real_run():
    sample = _module("first_run_sample")
    full = (DOCS / "snippets" / "first-run.txt").read_text()
    assert sample.readme_block(README.read_text()) == sample.abridge(full)
    # The full output is of a real run: it has the summary tables and the backtest's result.
    assert "checks: 14 of 14 passed" in full and re.search(r"mean WRMSSE \d\.\d{4} vs seasonal naive", full)


def test_the_reference_pages_cover_every_setting_table_column_operation_and_command(reference):
    page = reference.settings_page()
    assert all(f"`{settings.Settings.variable(n)}`" in page for n in settings.Settings.model_fields)

    page = reference.tables_page()
    for table in tables.ALL:
        assert f"## `{table.name}`" in page
        assert all(f"| `{column}` |" in page for column in table.columns)

    schema = reference.openapi_schema()
    page = reference.api_page(schema)
    for path, methods in schema["paths"].items():
        for method in methods:
            assert f"## {method.upper()} `{path}`" in page
    assert all(f"### `{name}`" in page for name in schema["components"]["schemas"])

    page = reference.cli_page()
    for name, sub in reference.subcommands(cli.parser()).items():
        assert f"## `m5 {name}`" in page
        for action in sub._actions:
            assert all(f"`{flag}`" in page for flag in action.option_strings if flag not in ("-h", "--help"))

    modules = reference.pure_modules()
    assert "m5_assets.metrics" in modules and "m5_assets.defs" not in modules and "m5_assets.cli" not in modules
    assert all(".defs" not in m for members in modules.values() for m in members)
