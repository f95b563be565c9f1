"""Every '§' citation in rig/ resolves inside the repository.

A citation has one form, ``docs/<file>.md §N.N`` (or a range ``§N.N-N.N``): the file must exist
under docs/ and carry a heading with that number (``### 2.5 ...`` or ``## 2. ...``). A '§' in any
other form ("reference §2.5", "snmp-poe.md §4.4", a bare "§1.3", "RFC 3414 §3.2") fails, and
so does a mention of a Markdown file that is not in the repository (the reference notes outside
it, for one). ``tools/cite_docs.py`` rewrites the old forms.

The scan covers the whole text of every ``.py`` file, not only comments and docstrings. Point it
at another tree with ``RIG_CITATIONS_SRC=/path/to/rig`` (docs/ and the other files are still
looked up in this repository), or call ``citation_problems(src, root)``.
"""

# cite-docs: skip-file (the examples below are wrong on purpose; tools/cite_docs.py leaves them)

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = Path(os.environ.get("RIG_CITATIONS_SRC", ROOT / "rig"))

SECTION = r"\d+(?:\.\d+)*"
CITATION = re.compile(rf"docs/(?P<file>[A-Za-z0-9_-]+\.md) §(?P<first>{SECTION})"
                      rf"(?:-(?P<last>{SECTION}))?")
HEADING = re.compile(rf"^#{{1,6}}[ \t]+(?P<number>{SECTION})\.?(?:[ \t]|$)", re.MULTILINE)
MARKDOWN_PATH = re.compile(r"(?<![\w.~-])(?P<path>/?(?:[\w.~-]+/)*[\w.-]+\.md)\b")


FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)


def section_numbers(doc: Path) -> list[str]:
    """The section numbers of a docs file's headings, in order (code blocks skipped)."""
    text = FENCE.sub("", doc.read_text(encoding="utf-8"))
    return [m.group("number") for m in HEADING.finditer(text)]


def headings(doc: Path) -> set[str]:
    return set(section_numbers(doc))


def _is_url(line: str, start: int, end: int) -> bool:
    token = line[line.rfind(" ", 0, start) + 1:end]
    return "://" in token or token.startswith("www.")


def problems_in_text(text: str, where: str, root: Path,
                     numbers: dict[str, set[str]] | None = None) -> list[str]:
    """What is wrong with the citations in one file's text; ``where`` names the file."""
    numbers = {} if numbers is None else numbers
    found: list[str] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        here = f"{where}:{line_no}"
        canonical = set()
        for m in CITATION.finditer(line):
            canonical.add(m.start() + m.group(0).index("§"))
            doc = root / "docs" / m.group("file")
            if not doc.is_file():
                found.append(f"{here}: {m.group(0)!r} cites docs/{m.group('file')}, "
                             f"which does not exist")
                continue
            if doc.name not in numbers:
                numbers[doc.name] = headings(doc)
            for number in filter(None, (m.group("first"), m.group("last"))):
                if number not in numbers[doc.name]:
                    found.append(f"{here}: {m.group(0)!r}: docs/{doc.name} has no heading "
                                 f"numbered {number}")
        for m in re.finditer("§", line):
            if m.start() not in canonical:
                found.append(f"{here}: '§' not in the form 'docs/<file>.md §N.N': "
                             f"{line.strip()[:90]!r}")
        for m in MARKDOWN_PATH.finditer(line):
            path = m.group("path")
            if _is_url(line, m.start(), m.end()):
                continue
            target = Path(path) if path.startswith("/") else root / path
            inside = target.resolve().is_relative_to(root.resolve())
            if not (inside and target.is_file()):
                found.append(f"{here}: {path!r} is not a file in the repository "
                             f"(cite docs/ or a repository path)")
    return found


def citation_problems(src: Path = SRC, root: Path = ROOT) -> list[str]:
    """Every problem in every ``.py`` file under ``src``."""
    numbers: dict[str, set[str]] = {}
    found: list[str] = []
    for path in sorted(src.rglob("*.py")):
        where = f"{src.name}/{path.relative_to(src).as_posix()}"
        found += problems_in_text(path.read_text(encoding="utf-8"), where, root, numbers)
    return found


def _report(found: list[str]) -> str:
    return f"{len(found)} problem(s):\n" + "\n".join(found)


def test_the_scan_has_something_to_scan():
    assert SRC.is_dir() and any(SRC.rglob("*.py")), f"no Python files under {SRC}"


def test_every_citation_is_canonical_and_resolves():
    found = [p for p in citation_problems() if "not a file in the repository" not in p]
    assert not found, _report(found)


def test_no_markdown_file_outside_the_repository_is_cited():
    found = [p for p in citation_problems() if "not a file in the repository" in p]
    assert not found, _report(found)


def test_docs_files_number_their_sections_once():
    for doc in sorted((ROOT / "docs").glob("*.md")):
        numbers = section_numbers(doc)
        duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
        assert not duplicates, f"docs/{doc.name}: section numbers used twice: {duplicates}"


def test_docs_index_lists_every_docs_file():
    index = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    for doc in sorted((ROOT / "docs").glob("*.md")):
        if doc.name != "README.md":
            assert f"({doc.name})" in index, f"docs/README.md does not link {doc.name}"


@pytest.mark.parametrize("text, ok", [
    ("# see docs/hikvision-protocols.md §2.5 and docs/gpio-serial.md §3.2-3.4 pitfall 1", True),
    ("# docs/snmp-poe.md §6.1 (RFC 3414 section 3.2)", True),
    ("# reference §2.5", False),
    ("# (snmp-poe.md §4.4 pitfall 1)", False),
    ("# docs/snmp-poe.md §1, §2.1", False),
    ("# RFC 3414 §3.2", False),
    ("# docs/hikvision-protocols.md §9.9", False),
    ("# docs/nowhere.md §1", False),
    ("# see /work/shared/reference/after-reset.md", False),
    ("# see hardware/pinmap.md and https://example.com/guide/README.md", True),
])
def test_the_checker_itself(text, ok):
    found = problems_in_text(text, "example.py", ROOT)
    assert (not found) == ok, found


def _load_cite_docs():
    """tools/cite_docs.py as a module (tools/ is not a package)."""
    import importlib.util
    import sys
    if "cite_docs" not in sys.modules:
        spec = importlib.util.spec_from_file_location("cite_docs",
                                                      ROOT / "tools" / "cite_docs.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["cite_docs"] = module            # dataclasses look their module up here
        spec.loader.exec_module(module)
    return sys.modules["cite_docs"]


SAMPLE = '''"""Module summary line that is already fairly long, citing (reference §2.4) right here.

A camera locks the client's address after a few failed logins (5-7, for 30 minutes; §2.5). On an
unattended bench (snmp-poe.md §4.4 pitfall 1), see also gpio-serial.md §3.2-3.4, §5 and
RFC 7616 §3.3.
"""

x = 1  # bare §1.3 in an inline comment


def f():
    """One line (§2.7)."""
    # Only deliveringPower(3) means a device draws power; enabled with nothing plugged in is
    # searching(2) (reference §1.3), and Reference §2.2 too.
    return "§ in a string is not touched"
'''


def test_cite_docs_rewrites_to_the_checked_form_once(tmp_path):
    cite_docs = _load_cite_docs()
    module = tmp_path / "rig" / "camera" / "example.py"
    module.parent.mkdir(parents=True)
    module.write_text(SAMPLE, encoding="utf-8")
    old, new, report = cite_docs.process(module, "rig/camera/example.py")
    assert new != old
    flat = " ".join(line.strip(" #") for line in new.splitlines())   # rewrapping moved words
    assert "(docs/hikvision-protocols.md §2.4)" in flat
    assert "30 minutes; docs/hikvision-protocols.md §2.5)" in flat
    assert "(docs/snmp-poe.md §4.4 pitfall 1)" in flat
    assert "docs/gpio-serial.md §3.2-3.4, docs/gpio-serial.md §5 and" in flat
    assert "RFC 7616 section 3.3; docs/hikvision-protocols.md §2.1." in flat
    assert "bare docs/hikvision-protocols.md §1.3 in an inline comment" in flat
    assert "One line (docs/hikvision-protocols.md §2.7)" in flat
    assert "(docs/hikvision-protocols.md §1.3), and docs/hikvision-protocols.md §2.2" in flat
    assert '"§ in a string is not touched"' in new
    assert all(len(line) <= 100 for line in new.splitlines())
    compile(new, "example.py", "exec")
    assert report.unresolved and "outside comments and docstrings" in report.unresolved[0]
    # Only the string literal is left for the checker to complain about.
    module.write_text(new, encoding="utf-8")
    found = problems_in_text(new, "example.py", ROOT)
    assert len(found) == 1 and "is not touched" in found[0], found
    again = cite_docs.process(module, "rig/camera/example.py")
    assert again[1] == new, "a second run changed the file"


def test_cite_docs_picks_the_file_from_the_module():
    cite_docs = _load_cite_docs()
    assert cite_docs.module_file("rig/actuators/poe_mibs/rfc3621.py") == ("snmp-poe", False)
    assert cite_docs.module_file("rig/sim/switch.py") == ("snmp-poe", False)
    assert cite_docs.module_file("rig/actuators/base.py") == ("gpio-serial", False)
    assert cite_docs.module_file("rig/sim/serial_board.py") == ("gpio-serial", False)
    assert cite_docs.module_file("rig/sim/sadp_responder.py") == ("hikvision-protocols", False)
    assert cite_docs.module_file("rig/runner.py") == ("hikvision-protocols", True)
