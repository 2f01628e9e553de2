"""The README's two commands are what CI and a new user run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [line.strip() for line in quick.splitlines() if line.startswith("    python3 -m venv")]


def test_readme_has_exactly_two_setup_commands():
    commands = readme_commands()
    assert len(commands) == 2
    assert "snakemake --cores all" in commands[0] and commands[0].endswith("--report results/report.html")
    assert commands[1].endswith("python -m pytest -n auto --dist loadfile")
    assert all("-c constraints.txt" in c for c in commands)


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text()
    assert readme_commands()[1] in ci.splitlines()


def test_constraints_pin_torch_without_a_local_tag():
    pins = dict(
        line.split("==", 1)
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if re.match(r"^[\w.-]+==", line)
    )
    assert pins["torch"] == "2.13.0"


def test_example_ci_workflow_runs_the_readme_commands():
    import yaml

    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    assert set(workflow["jobs"]) == {"lint", "tests", "regression"}
    runs = {job: [step.get("run", "") for step in spec["steps"]] for job, spec in workflow["jobs"].items()}
    assert readme_commands()[1] in runs["tests"]
    page = (ROOT / "docs" / "regression.md").read_text()  # the regression check's documentation
    regression = [r for r in runs["regression"] if "snakemake" in r or "analysis.regress" in r]
    assert len(regression) == 2 and all(f"    {command}" in page for command in regression)
    assert any("ruff check" in r for r in runs["lint"]) and any("snakemake --lint" in r for r in runs["lint"])


def _layout() -> str:
    text = (ROOT / "docs" / "development.md").read_text()
    start = text.index("## Module map")
    return text[start : text.index("\n## ", start + 1)]


def test_layout_names_every_module_and_only_modules_that_exist():
    layout = _layout()
    for folder in ("mbpo", "plan", "analysis", "tests"):
        for path in sorted((ROOT / folder).glob("*.py")):
            if path.name != "__init__.py" and not path.name.startswith("test_") and path.name != "__main__.py":
                assert f"`{path.name}`" in layout, (
                    f"the module map (docs/development.md) does not name {folder}/{path.name}"
                )
    for name in re.findall(r"`([a-z_]+\.(?:py|smk))`", layout):
        folders = ("mbpo", "plan", "analysis", "tests", "benchmarks", "workflow/rules")
        assert any((ROOT / folder / name).is_file() for folder in folders), (
            f"the module map (docs/development.md) names {name}, which does not exist"
        )
