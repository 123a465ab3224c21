"""The reference pages, generated from the code each time the site is built (mkdocs-gen-files runs
this script), so they cannot drift from it: settings from the settings class, warehouse tables from
``tables.py``, the REST API from its OpenAPI schema, the ``m5`` command from its argument parser,
the repository layout from the modules' docstrings and the Python API of the pure modules
(mkdocstrings). Each ``*_page`` function returns one page's Markdown; the tests call them too.
"""

from __future__ import annotations

import argparse
import ast
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from m5_assets import cli, settings, tables
from m5_assets.table_files import MANIFEST

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("m5_assets", "m5_serving", "m5_dashboard")
# The layers of m5_assets that import Dagster (docs/architecture.md): not part of the Python API.
NOT_PURE = {"m5_assets.cli", "m5_assets.definitions", "m5_assets.defs"}
GENERATED = "*Generated from the code when the site is built ({source}); edit that, not this page.*"


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def first_sentence(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text(), str(path))) or ""
    paragraph = " ".join(doc.split("\n\n", 1)[0].split())
    end = paragraph.find(". ")
    return (paragraph if end < 0 else paragraph[: end + 1]).replace("|", "\\|")


def settings_page() -> str:
    return settings.reference()


def layout_page() -> str:
    lines = [
        "# Repository layout",
        "",
        GENERATED.format(source="every module's docstring"),
        "",
        "Every module of the three packages and what it is for (the first sentence of its docstring).",
        "Which module may import which is on [the architecture page](../architecture.md).",
        "",
    ]
    for package in PACKAGES:
        lines += [f"## `{package}`", "", "| module | what |", "| --- | --- |"]
        for path in sorted((ROOT / package).rglob("*.py")):
            lines.append(f"| `{path.relative_to(ROOT).as_posix()}` | {first_sentence(path)} |")
        lines.append("")
    return "\n".join(lines)


def _table_location(table: tables.Table) -> str:
    """Where the table's files are, as the declaration itself names them (placeholders for keys)."""
    root = Path("warehouse")
    if table.by_store:
        (store_file,) = table.new_store_files(root, "<g>", ["<store>"]).paths
        return f"`{store_file.as_posix()}`, published by `{(table.folder(root) / MANIFEST).as_posix()}`"
    if table.partition_column:
        key = "YYYY-MM-DD" if table.date_keyed else "<key>"
        return f"`{table.path(root, key).as_posix()}`, one file per partition"
    return f"`{table.path(root).as_posix()}`"


def tables_page() -> str:
    lines = [
        "# Warehouse tables",
        "",
        GENERATED.format(source="`m5_assets/tables.py`, where each table is declared once"),
        "",
        "Every table the pipeline writes under `$M5_DATA_DIR/warehouse/` (or the object store of",
        "`M5_WAREHOUSE_URL`), with each column's meaning. The same declarations give the column schema",
        "each asset shows in the Dagster UI, and the API and the dashboard read the tables through them.",
        "Feature columns are described by the [feature catalog](../concepts/partitions.md#features-and-the-28-day-horizon).",
        "",
        "| table | partitioned by | what it holds |",
        "| --- | --- | --- |",
    ]
    for table in tables.ALL:
        lines.append(
            f"| [`{table.name}`](#{table.name}) | {table.partition_column or ''} | {_cell(table.description)} |"
        )
    for table in tables.ALL:
        lines += ["", f"## `{table.name}` {{#{table.name}}}", "", _cell(table.description), "", _table_location(table)]
        if table.columns or table.column_families:
            lines += ["", "| column | meaning |", "| --- | --- |"]
            lines += [f"| `{name}` | {_cell(text)} |" for name, text in table.columns.items()]
            lines += [
                f"| `{pattern}` (a family: any column matching it) | {_cell(text.replace('{0}', 'the column'))} |"
                for pattern, text in table.column_families
            ]
    return "\n".join(lines) + "\n"


def _arguments(parser: argparse.ArgumentParser) -> Iterator[str]:
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        name = ", ".join(f"`{flag}`" for flag in action.option_strings) or f"`{action.dest}`"
        if action.metavar or (action.option_strings and action.nargs != 0):
            name += f" `{action.metavar or action.dest.upper()}`"
        values = " / ".join(f"`{c}`" for c in action.choices) if action.choices else ""
        default = "" if action.default in (None, False, argparse.SUPPRESS) else f"`{action.default}`"
        required = "yes" if action.required else ""
        yield f"| {name} | {values} | {default} | {required} | {_cell(action.help or '')} |"


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The ``m5`` subcommands by name."""
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def cli_page() -> str:
    command = cli.parser()
    helps = {
        a.dest: a.help
        for group in command._actions
        if isinstance(group, argparse._SubParsersAction)
        for a in group._choices_actions
    }
    lines = [
        "# Command line: `m5`",
        "",
        GENERATED.format(source="the argument parser of `m5_assets/cli.py`"),
        "",
        "`make run` and `make backtest` call it; after `make run` it is `.venv/bin/m5`. Every command",
        "reads the [settings](settings.md) (`M5_DATA_DIR` above all) and stops with the variable's name",
        "and its rule when one is wrong (exit code 2).",
        "",
        "| command | what it does |",
        "| --- | --- |",
    ]
    found = subcommands(command)
    lines += [f"| [`m5 {name}`](#m5-{name}) | {_cell(helps.get(name, ''))} |" for name in found]
    for name, sub in found.items():
        usage = " ".join(sub.format_usage().removeprefix("usage: ").split())
        lines += ["", f"## `m5 {name}` {{#m5-{name}}}", "", _cell(helps.get(name, "")), "", "```", usage, "```"]
        rows = list(_arguments(sub))
        if rows:
            lines += [
                "",
                "| argument | values | default | required | what it sets |",
                "| --- | --- | --- | --- | --- |",
            ]
            lines += rows
    return "\n".join(lines) + "\n"


def openapi_schema() -> dict[str, Any]:
    """The REST API's OpenAPI schema, as `/openapi.json` serves it (the app is built, not started)."""
    from m5_serving.app import create_app

    return create_app(watch=False).openapi()


def _schema_name(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[`{name}`](#{name.lower()})"
    if "anyOf" in schema:
        return " or ".join(_schema_name(s) for s in schema["anyOf"] if s.get("type") != "null")
    if schema.get("type") == "array":
        return f"array of {_schema_name(schema.get('items', {}))}"
    if "enum" in schema:
        return " / ".join(f"`{v}`" for v in schema["enum"])
    kind = schema.get("type", "any")
    return f"{kind} ({schema['format']})" if "format" in schema else str(kind)


def _example(value: object) -> list[str]:
    return ["", "```json", json.dumps(value, indent=2, ensure_ascii=False), "```"]


def api_page(schema: dict[str, Any]) -> str:
    lines = [
        "# REST API",
        "",
        GENERATED.format(source="the service's OpenAPI schema, the one `/openapi.json` serves"),
        "",
        f"{schema['info']['title']}, version {schema['info']['version']}. How to run and call it,",
        "with keys, limits and the online store: [Call the REST API](../how-to/api.md). The schema itself:",
        "[openapi.json](openapi.json). Every error is a JSON body with `detail`.",
        "",
        "| method | path | what it answers |",
        "| --- | --- | --- |",
    ]
    operations = [
        (path, method, operation) for path, methods in schema["paths"].items() for method, operation in methods.items()
    ]
    for path, method, operation in operations:
        anchor = operation["operationId"].lower()
        lines.append(f"| {method.upper()} | [`{path}`](#{anchor}) | {_cell(operation.get('summary', ''))} |")
    for path, method, operation in operations:
        lines += ["", f"## {method.upper()} `{path}` {{#{operation['operationId'].lower()}}}", ""]
        lines.append(operation.get("description") or operation.get("summary", ""))
        if "401" in operation.get("responses", {}):
            lines += ["", "Needs an API key once keys are set (`Authorization: Bearer <secret>`)."]
        elif operation.get("security"):
            lines += ["", "Open unless `M5_API_PROTECT_HEALTH=1`; then it needs a key like the rest."]
        parameters = operation.get("parameters", [])
        if parameters:
            lines += ["", "| parameter | in | type | required | meaning |", "| --- | --- | --- | --- | --- |"]
            for p in parameters:
                samples = ", ".join(f"`{e['value']}`" for e in p.get("examples", {}).values())
                lines.append(
                    f"| `{p['name']}` | {p['in']} | {_schema_name(p.get('schema', {}))} | "
                    f"{'yes' if p.get('required') else ''} | {_cell(p.get('description', ''))}"
                    f"{f' (e.g. {samples})' if samples else ''} |"
                )
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body:
            lines += ["", f"Request body: {_schema_name(body['schema'])}."]
            examples = body.get("examples") or {}
            for example in examples.values():
                lines += ["", f"Example: {example.get('summary', '')}", *_example(example.get("value"))]
        lines += ["", "| status | meaning | body |", "| --- | --- | --- |"]
        for status, response in operation.get("responses", {}).items():
            content = response.get("content", {})
            kinds = ", ".join(
                _schema_name(c["schema"]) if c.get("schema") else f"`{media}`" for media, c in content.items()
            )
            lines.append(f"| {status} | {_cell(response.get('description', ''))} | {kinds} |")
    lines += ["", "## Schemas"]
    for name, component in schema.get("components", {}).get("schemas", {}).items():
        lines += ["", f"### `{name}` {{#{name.lower()}}}", ""]
        if component.get("description"):
            lines += [_cell(component["description"]), ""]
        properties = component.get("properties", {})
        required = set(component.get("required", []))
        if properties:
            lines += ["| field | type | required | meaning |", "| --- | --- | --- | --- |"]
            for field, spec in properties.items():
                lines.append(
                    f"| `{field}` | {_schema_name(spec)} | {'yes' if field in required else ''} | "
                    f"{_cell(spec.get('description', spec.get('title', '')))} |"
                )
        else:
            lines.append(f"Type: {_schema_name(component)}.")
        for example in component.get("examples", []):
            lines += ["", "Example:", *_example(example)]
    return "\n".join(lines) + "\n"


def pure_modules() -> dict[str, list[str]]:
    """The Python API's pages: each top-level module or package of ``m5_assets`` below the Dagster
    layers, with the modules it documents (a package's submodules)."""
    pages: dict[str, list[str]] = {}
    base = ROOT / "m5_assets"
    for path in sorted(base.iterdir()):
        name = f"m5_assets.{path.stem}"
        if path.name.startswith("_") or name in NOT_PURE:
            continue
        if path.is_dir() and (path / "__init__.py").exists():
            subs = sorted(p.stem for p in path.glob("*.py") if not p.name.startswith("_"))
            pages[name] = [name] + [f"{name}.{sub}" for sub in subs]
        elif path.suffix == ".py":
            pages[name] = [name]
    return pages


def python_index_page(pages: dict[str, list[str]]) -> str:
    lines = [
        "# Python API",
        "",
        GENERATED.format(source="the docstrings, by mkdocstrings"),
        "",
        "The pure modules of `m5_assets`: the pipeline's logic, with no Dagster in it (the layers are on",
        "[the architecture page](../../architecture.md)). The API and the dashboard read the warehouse",
        "through `m5_assets.reader`; a stored model is loaded as in",
        "[the demand model](../../concepts/demand-model.md).",
        "",
        "| module | what it is |",
        "| --- | --- |",
    ]
    for name in pages:
        path = ROOT / Path(*name.split("."))
        source = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        lines.append(f"| [`{name}`]({name}.md) | {first_sentence(source)} |")
    return "\n".join(lines) + "\n"


def python_module_page(name: str, modules: list[str]) -> str:
    # The module's own heading is the page's title; a package's modules are its sections.
    lines = []
    for module in modules:
        lines += [f"::: {module}", "    options:", f"      heading_level: {1 if module == name else 2}", ""]
    return "\n".join(lines)


def write_pages() -> None:
    import mkdocs_gen_files

    schema = openapi_schema()
    pages = {
        "reference/settings.md": settings_page(),
        "reference/layout.md": layout_page(),
        "reference/tables.md": tables_page(),
        "reference/cli.md": cli_page(),
        "reference/api.md": api_page(schema),
        "reference/openapi.json": json.dumps(schema, indent=2),
    }
    modules = pure_modules()
    pages["reference/python/index.md"] = python_index_page(modules)
    for name, members in modules.items():
        pages[f"reference/python/{name}.md"] = python_module_page(name, members)
    for path, text in pages.items():
        with mkdocs_gen_files.open(path, "w") as page:
            page.write(text)


if __name__ in ("__main__", "<run_path>"):
    write_pages()
