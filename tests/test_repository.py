"""The repository explains itself and carries nothing of the machine it was made on."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MACHINE_PATH = re.compile(r"(?<![\w.~-])/(?:work|root|home|tmp)/[\w.-]")
"""An absolute path of a development machine (a user's home, a scratch or work folder)."""


def committed_files() -> list[Path]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    return [REPO / name.decode() for name in listed if name and (REPO / name.decode()).is_file()]


def text(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:  # weights, images, videos
        return None


def test_no_committed_file_carries_a_machine_path() -> None:
    found = []
    for path in committed_files():
        if path == Path(__file__).resolve():  # its own examples below
            continue
        content = text(path)
        for number, line in enumerate((content or "").splitlines(), start=1):
            if MACHINE_PATH.search(line):
                found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:120]}")
    assert not found, "\n".join(found)
    assert MACHINE_PATH.search('"command": "facemask train --data /home/me/faces"')
    assert not MACHINE_PATH.search("--data tests/data/mini-dataset or ~/tmp/x or a/work/b")


def test_code_and_readme_send_readers_to_the_repository_own_notes() -> None:
    places = [REPO / "README.md", REPO / "app.py", REPO / "ui.py"]
    places += sorted((REPO / "facemask").rglob("*.py")) + sorted((REPO / "app_pages").glob("*.py"))
    pointing = [str(p.relative_to(REPO)) for p in places if "DESIGN.md" in p.read_text()]
    assert not pointing
    assert "docs/architecture.md" in (REPO / "README.md").read_text()


def test_the_layout_and_the_architecture_name_every_module() -> None:
    """The README's Layout names the folders, pages and tools; architecture.md every module."""
    readme = (REPO / "README.md").read_text()
    layout = readme[readme.index("## Layout") :].split("\n## ", 1)[0]
    architecture = (REPO / "docs" / "architecture.md").read_text()
    modules = [p.stem for p in (REPO / "facemask").glob("*.py") if p.stem != "__init__"]
    pages = [p.name for p in (REPO / "app_pages").glob("*.py")]
    for name in modules:
        assert f"`facemask/{name}.py`" in architecture, f"architecture.md misses {name}.py"
    for page in pages:
        assert page in layout and page in architecture, page
    tracked = {p.relative_to(REPO).parts[0] for p in committed_files()}
    folders = {name for name in tracked if (REPO / name).is_dir() and not name.startswith(".")}
    for folder in folders:
        assert f"{folder}/" in layout, f"README Layout misses {folder}/"
    for tool in (REPO / "tools").iterdir():
        assert tool.name in layout, tool.name


DOCS = ["README.md", *(f"docs/{p.name}" for p in sorted((REPO / "docs").glob("*.md")))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
"""A Markdown link or image: [text](target)."""


def heading_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a file's headings: lower case, punctuation dropped, spaces as -."""
    anchors = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("name", DOCS)
def test_the_docs_links_lead_somewhere(name: str) -> None:
    path = REPO / name
    broken = []
    for target in LINK.findall(path.read_text()):
        if re.match(r"[a-z]+:", target):  # http(s), mailto: not followed (no network)
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists():
            broken.append(target)
        elif anchor and anchor not in heading_anchors(linked.read_text()):
            broken.append(target)
    assert not broken, f"{name}: {broken}"
    assert heading_anchors("## Crops: how much context the classifier sees\n") == {
        "crops-how-much-context-the-classifier-sees"
    }


def test_the_readme_is_short_and_the_docs_stand_alone() -> None:
    """A README for users (15 KB at most; the measurements live in docs/measurements.md), and
    no doc sends its reader to folders outside the repository."""
    assert len((REPO / "README.md").read_bytes()) <= 15 * 1024
    for name in DOCS:
        assert "../shared" not in (REPO / name).read_text(), name
