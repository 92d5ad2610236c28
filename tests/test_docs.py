"""The README and the docs/ pages: the guide's shape, its links, and that every command shown parses."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = (README, *sorted((ROOT / "docs").glob("*.md")))
SETUP_COMMANDS = (
    "./setup.sh && .venv/bin/cifarlab live                # install, then classify your webcam live"
    " (no camera: the built-in demo)",
    "./setup.sh && .venv/bin/python -m pytest -q          # install, then run the whole test suite",
)


def shown_commands(doc: Path) -> list[str]:
    """The `cifarlab ...` lines of the doc's bash blocks, without comments and redirections."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", doc.read_text(), re.S):
        for line in block.splitlines():
            line = line.split(" #")[0].split(" > ")[0].strip()
            found = re.search(r"(?:^|\.venv/bin/)cifarlab (.*)", line)
            if found:
                commands.append(found.group(1))
    return commands


def test_readme_is_a_short_guide_with_the_ci_commands():
    text = README.read_text()
    assert text.startswith("# cifarlab\n")
    assert len(text.splitlines()) <= 220
    for command in SETUP_COMMANDS:
        assert command in text.splitlines()
    assert ".venv/bin/python -m pytest -q\n" in (ROOT / ".ci" / "run").read_text()


def anchors(doc: Path) -> set[str]:
    """The heading anchors GitHub gives a Markdown file (code blocks left out)."""
    text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)
    slugs: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        slugs.add(slug if slug not in slugs else f"{slug}-1")
    return slugs


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_relative_link_exists(doc):
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", doc.read_text())
    local = [link for link in links if "://" not in link]
    assert local, f"{doc.name} links to no record"
    missing = [link for link in local if not (doc.parent / link).exists()]
    assert missing == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_anchor_exists(doc):
    links = re.findall(r"\]\(([^)#:]*)#([^)]+)\)", doc.read_text())
    missing = [f"{path}#{anchor}" for path, anchor in links
               if path.endswith(".md") or not path
               if anchor not in anchors(doc.parent / path if path else doc)]
    assert missing == []


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_command_shown_parses(doc):
    from cifarlab.cli.main import COMMANDS, build_parser

    commands = shown_commands(doc)
    if doc == README:
        assert len(commands) >= 20
    for command in commands:
        argv = shlex.split(command)
        name = next(arg for arg in argv if arg in COMMANDS)
        try:
            build_parser(name).parse_args(argv)
        except SystemExit as exc:
            pytest.fail(f"{doc.name}: `cifarlab {command}` does not parse (exit {exc.code})")
