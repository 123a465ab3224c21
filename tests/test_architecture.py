"""The architecture page, the layout page and the import contracts describe the same code."""

import importlib.util
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _reference_module():
    spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "docs" / "gen_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_layout_page_describes_every_module_by_its_docstring():
    reference = _reference_module()
    page = reference.layout_page()
    for package in reference.PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            sentence = reference.first_sentence(path)
            assert sentence, f"{path.relative_to(ROOT)} has no docstring to describe it"
            assert f"| `{path.relative_to(ROOT).as_posix()}` | {sentence} |" in page


def test_every_layer_of_the_contract_is_on_the_architecture_page_in_its_order():
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (layers,) = [c["layers"] for c in contracts if c["type"] == "layers"]
    page = (ROOT / "docs" / "architecture.md").read_text()
    rows = [line for line in page.splitlines() if line.startswith("| ") and "`" in line.split("|")[2]]
    cells = [row.split(" | ")[1].strip("` ").replace("\\|", "|").replace("` \\", "").replace("`", "") for row in rows]
    assert [c.replace(" \\| ", " | ") for c in cells] == layers
    # Every module of m5_assets sits in one layer (a new top-level module must be placed).
    named = {name.strip() for layer in layers for name in layer.replace(":", "|").split("|")}
    top = {p.stem for p in (ROOT / "m5_assets").glob("*.py") if p.stem != "__init__"}
    top |= {p.parent.name for p in (ROOT / "m5_assets").glob("*/__init__.py")}
    assert top == named
