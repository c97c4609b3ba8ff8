"""The conda environment of the rules lists the same packages as pyproject.toml."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def name(requirement: str) -> str:
    bare = re.split(r"[\[<>=!~ ]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", bare).lower()


def test_conda_env_lists_the_project_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {name(r) for r in project["dependencies"]}
    env = yaml.safe_load((ROOT / "envs" / "hepclust.yaml").read_text())
    listed = set()
    for entry in env["dependencies"]:
        entries = entry["pip"] if isinstance(entry, dict) else [entry]
        listed |= {name(e) for e in entries if not e.startswith("-")}
    assert listed - {"python", "pip"} == wanted


def test_every_rule_declares_the_conda_env():
    for rules in (ROOT / "workflow" / "rules").glob("*.smk"):
        text = rules.read_text()
        for rule in re.split(r"^rule ", text, flags=re.M)[1:]:
            if "script:" in rule:
                assert 'conda:\n        "../../envs/hepclust.yaml"' in rule, rules.name
