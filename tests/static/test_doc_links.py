"""The Markdown a user reads on GitHub holds together: every relative link names a file that exists and, with a
``#fragment``, a heading of that file (GitHub's anchor of it), no table is cut in two by a blank line (the rows
after it would show as a paragraph of pipes), and every `make <target>` it gives as a command is a Makefile target."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# What a user reads: the README, the guides and references in docs/, each component's generated README.
DOCUMENTS = sorted([REPO_ROOT / "README.md", *REPO_ROOT.glob("docs/*.md"), *REPO_ROOT.glob("components/*/README.md")])

FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
# `make <target>` in inline code or a code block (prose such as "make the" is no command).
INLINE_CODE = re.compile(r"`[^`\n]+`")
MAKE_COMMAND = re.compile(r"(?:^|[\s(`$])(?:sudo )?make ([a-z][a-z.-]*)", re.M)
MAKE_TARGET = re.compile(r"^([a-z][a-z.-]*):", re.M)
TABLE_ROW = re.compile(r"^\s*\|")
TABLE_RULE = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")


def prose(path: Path) -> str:
    """The file without its fenced code blocks (links and headings there are examples, not the page's)."""
    return FENCE.sub("", path.read_text(encoding="utf-8"))


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: its text (inline code and link targets dropped), lowercased, punctuation other
    than ``-`` and ``_`` removed, each space a ``-``."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor of the file; a repeated heading gets GitHub's ``-1``, ``-2``, ... suffix."""
    seen: dict[str, int] = {}
    found = set()
    for match in HEADING.finditer(prose(path)):
        slug = anchor(match.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken_links(path: Path) -> list[str]:
    problems = []
    for match in LINK.finditer(prose(path)):
        target = match.group(1)
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto: ...: not checked here
            continue
        file_part, _, fragment = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            problems.append(f"{target}: no file {linked.relative_to(REPO_ROOT)}")
        elif fragment and linked.suffix == ".md" and fragment not in anchors(linked):
            problems.append(f"{target}: {linked.relative_to(REPO_ROOT)} has no heading with anchor #{fragment}")
    return problems


def split_tables(path: Path) -> list[str]:
    """Table rows after a blank line that start no new table (a new table's second line is its |---| rule)."""
    lines = prose(path).splitlines()
    problems = []
    for number, line in enumerate(lines):
        if not TABLE_ROW.match(line) or number == 0 or lines[number - 1].strip():
            continue
        following = lines[number + 1] if number + 1 < len(lines) else ""
        if TABLE_RULE.match(following) is None:
            problems.append(f"a table row without a header after a blank line: {line[:80]}")
    return problems


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_every_relative_link_and_anchor_resolves(path):
    assert broken_links(path) == [], f"{path.relative_to(REPO_ROOT)}: broken links"


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_no_table_is_cut_by_a_blank_line(path):
    assert split_tables(path) == [], f"{path.relative_to(REPO_ROOT)}: a table cut in two"


def unknown_make_targets(path: Path) -> list[str]:
    targets = set(MAKE_TARGET.findall((REPO_ROOT / "Makefile").read_text(encoding="utf-8")))
    text = path.read_text(encoding="utf-8")
    code = [*(match.group(0) for match in FENCE.finditer(text)), *INLINE_CODE.findall(prose(path))]
    return sorted(
        {f"make {name}" for snippet in code for name in MAKE_COMMAND.findall(snippet)}
        - {f"make {target}" for target in targets}
    )


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_every_make_command_names_a_target(path):
    assert unknown_make_targets(path) == [], f"{path.relative_to(REPO_ROOT)}: no such target in the Makefile"


@pytest.mark.parametrize(
    ("heading", "github_anchor"),
    [
        ("On a cluster (kind + KFP + Seldon Core or KServe)", "on-a-cluster-kind--kfp--seldon-core-or-kserve"),
        ("MLflow: lineage and the registry", "mlflow-lineage-and-the-registry"),
        ("Scoring and fitting on the pod's cores", "scoring-and-fitting-on-the-pods-cores"),
        ("Learning curve: `max_training_rows`", "learning-curve-max_training_rows"),
    ],
)
def test_anchors_are_the_ones_github_renders(heading, github_anchor):
    """Headings whose anchors these pages link to, with the anchor GitHub gives each."""
    assert anchor(heading) == github_anchor
