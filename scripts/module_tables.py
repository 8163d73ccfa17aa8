"""The inputs and outputs tables of a Terraform module's README, from its variables.tf and
outputs.tf. `python3 scripts/module_tables.py modules/NAME` rewrites the README's tables (between
the `<!-- BEGIN TABLES -->` and `<!-- END TABLES -->` markers); acceptance/test_modules.py checks
that every README matches."""
import re
import sys
from pathlib import Path

BEGIN, END = "<!-- BEGIN TABLES -->", "<!-- END TABLES -->"


def blocks(text: str, kind: str):
    """(name, body) of each top-level `kind "name" { ... }` block, by brace counting."""
    for m in re.finditer(rf'^{kind} "([^"]+)" \{{', text, re.M):
        depth, i = 1, m.end()
        while depth and i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        yield m.group(1), text[m.end() : i - 1]


def attr(body: str, name: str):
    m = re.search(rf'^  {name}\s*=\s*"((?:[^"\\]|\\.)*)"', body, re.M)
    return m.group(1) if m else None


def type_of(body: str):
    m = re.search(r"^  type\s*=\s*(.+?)(?=^  \w+\s*=|\Z)", body, re.M | re.S)
    return " ".join(m.group(1).split()) if m else "any"


def tables(module: Path) -> str:
    rows = ["## Inputs", "", "| Name | Description | Type | Required |", "|---|---|---|---|"]
    for name, body in blocks((module / "variables.tf").read_text(), "variable"):
        required = "no" if re.search(r"^  default\s*=", body, re.M) else "yes"
        rows.append(f"| `{name}` | {attr(body, 'description') or ''} | `{type_of(body)}` | {required} |")
    rows += ["", "## Outputs", "", "| Name | Description |", "|---|---|"]
    for name, body in blocks((module / "outputs.tf").read_text(), "output"):
        rows.append(f"| `{name}` | {attr(body, 'description') or ''} |")
    return "\n".join(rows)


def rendered(module: Path) -> str:
    readme = (module / "README.md").read_text()
    start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    return readme[:start] + "\n" + tables(module) + "\n" + readme[end:]


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        module = Path(arg)
        (module / "README.md").write_text(rendered(module))
