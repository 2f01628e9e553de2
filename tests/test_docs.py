"""The README and the docs: every generated block equals what the committed records render, a
number edited by hand is caught, the README stays short, and no file speaks of how the project
was developed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from analysis import docs

ROOT = Path(__file__).resolve().parent.parent


def test_every_generated_block_is_what_the_records_render(capsys):
    assert docs.main(["--check"]) == 0, capsys.readouterr().err


def test_every_renderer_is_used_and_every_block_has_one():
    used = {m.group(2) for path in docs.documents() for m in docs.BLOCK.finditer(path.read_text())}
    assert used <= set(docs.RENDERERS)
    assert {"validation-returns", "quickstart", "config-parameters"} <= used


def test_a_number_edited_by_hand_in_a_generated_block_fails_the_check(tmp_path, monkeypatch, capsys):
    readme = (ROOT / "README.md").read_text()
    block = docs.BLOCK.search(readme)
    assert block is not None and re.search(r"\d", block.group(3)), "the README has no generated number"
    edited = readme[: block.start(3)] + re.sub(r"\d", lambda d: str((int(d.group()) + 1) % 10), block.group(3), 1)
    edited += readme[block.end(3) :]
    copy = tmp_path / "README.md"
    copy.write_text(edited)
    monkeypatch.setattr(docs, "documents", lambda: [copy])
    monkeypatch.setattr(docs, "ROOT", ROOT)
    assert docs.main(["--check"]) == 1
    assert "generated blocks or figures differ from the records" in capsys.readouterr().err
    assert copy.read_text() == edited  # --check changes nothing
    assert docs.main([]) == 0 and copy.read_text() == readme  # rendering restores it


def test_the_docs_figures_are_copies_of_the_committed_records(tmp_path, monkeypatch, capsys):
    (tmp_path / "docs").mkdir()
    figures = tmp_path / "results" / "validation" / "figures"
    figures.mkdir(parents=True)
    (figures / "paper_comparison_InvertedDoublePendulum-v5.png").write_bytes(b"drawn")
    page = tmp_path / "docs" / "page.md"
    page.write_text("![IDP](validation_inverted_double_pendulum.png)\n![Default](sample_efficiency.png)\n")
    (tmp_path / "results" / "default").mkdir(parents=True)
    (tmp_path / "results" / "default" / "sample_efficiency.png").write_bytes(b"default")
    monkeypatch.setattr(docs, "ROOT", tmp_path)
    monkeypatch.setattr(docs, "VALIDATION", tmp_path / "results" / "validation")
    monkeypatch.setattr(docs, "documents", lambda: [])
    copy = tmp_path / "docs" / "validation_inverted_double_pendulum.png"
    assert docs.main(["--check"]) == 1 and "docs/validation_inverted_double_pendulum.png" in capsys.readouterr().err
    assert not copy.exists()  # --check changes nothing
    assert docs.main([]) == 0 and copy.read_bytes() == b"drawn"
    assert (tmp_path / "docs" / "sample_efficiency.png").read_bytes() == b"default"
    copy.write_bytes(b"edited by hand")
    assert docs.main(["--check"]) == 1
    assert docs.main([]) == 0 and docs.main(["--check"]) == 0 and copy.read_bytes() == b"drawn"
    page.write_text("![W](validation_walker2d.png)\n")  # shown, never drawn
    capsys.readouterr()
    assert docs.main(["--check"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "shows validation_walker2d.png, but" in err


def test_an_unknown_block_is_one_line(tmp_path, monkeypatch, capsys):
    page = tmp_path / "page.md"
    page.write_text("<!-- generated: no-such-block -->\n<!-- end generated -->\n")
    monkeypatch.setattr(docs, "documents", lambda: [page])
    monkeypatch.setattr(docs, "_rel", lambda path: path.name)
    assert docs.main(["--check"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no renderer for block 'no-such-block'" in err


def test_the_readme_is_short_and_links_only_to_pages_that_exist():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    for target in re.findall(r"\]\(([^)#]+)", text):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), f"README links to {target}, which does not exist"


# Words that describe how the project was made rather than what it is or what was measured
PROCESS_TALK = re.compile(
    r"\b(work )?sessions?\b|\bthis VM\b|\bour VM\b|\bthe VM was\b|\blent\b|\bGPU driver\b|\bissue #?\d+\b|"
    r"\b(first|second|third|[a-z]+th) session\b",
    re.I,
)
ALLOWED = re.compile(r"webdriver|session_id|new_session|requests\.Session|scope=\"session\"", re.I)


def tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    skip = (".csv", ".png", ".pdf", ".gz", ".tsv")
    return [
        ROOT / n
        for n in names
        if not n.endswith(skip) and "/runs/" not in n and n != "tests/test_docs.py" and (ROOT / n).is_file()
    ]


@pytest.mark.parametrize("path", tracked_text_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_file_speaks_of_how_the_project_was_developed(path):
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        return
    found = [
        f"line {i}: {line.strip()[:100]}"
        for i, line in enumerate(text.splitlines(), 1)
        if PROCESS_TALK.search(line) and not ALLOWED.search(line)
    ]
    assert not found, "\n".join(found)
