"""Asset and op bodies stay thin: they gather inputs, call pure functions and translate the report
into what Dagster shows. The work itself lives in the pure layers, where tests reach it directly."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LONGEST_BODY = 25
DECORATORS = {"asset", "multi_asset", "op", "graph_asset", "graph_multi_asset", "asset_check", "multi_asset_check"}


def _decorator_name(node: ast.expr) -> str:
    target = node.func if isinstance(node, ast.Call) else node
    return target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")


def _bodies():
    for path in sorted((ROOT / "m5_assets" / "defs").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef) and any(_decorator_name(d) in DECORATORS for d in node.decorator_list):
                first = node.body[1] if ast.get_docstring(node) and len(node.body) > 1 else node.body[0]
                yield f"{path.relative_to(ROOT)}:{node.lineno} {node.name}", node.end_lineno - first.lineno + 1


def test_every_asset_and_op_body_is_at_most_25_lines():
    bodies = list(_bodies())
    assert len(bodies) > 20  # the walk finds the definitions (a renamed decorator would hide them)
    assert [f"{where}: {lines} lines" for where, lines in bodies if lines > LONGEST_BODY] == []
