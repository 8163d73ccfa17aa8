"""Every example under examples/ (which the generated docs show) passes `terraform validate`
against the provider as built: the HCL parses, every attribute exists, and every value passes the
provider's validation."""
from pathlib import Path

import pytest

from conftest import ROOT

PROVIDER = """
terraform {
  required_providers {
    orgsec = { source = "orgsec/orgsec" }
  }
}

provider "orgsec" {
  region = "us-east-1"
}
"""

EXAMPLES = sorted(
    p
    for pattern in ("examples/resources/*/resource.tf", "examples/data-sources/*/data-source.tf", "examples/provider/*.tf")
    for p in ROOT.glob(pattern)
)


def test_there_are_examples():
    assert len(EXAMPLES) >= 10, EXAMPLES


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_example_validates(workspace, example: Path):
    text = example.read_text()
    # The provider example brings its own terraform and provider blocks.
    workspace.write(text if "required_providers" in text else PROVIDER + text)
    result = workspace.run("validate")
    assert result.returncode == 0, result.stdout + result.stderr
