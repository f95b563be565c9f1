#!/usr/bin/env python3
"""Rewrite the '§' citations in rig's comments and docstrings to ``docs/<file>.md §N.N``.

The code used to cite reference notes that live outside the repository ("reference §2.5",
"snmp-poe.md §4.4 pitfall 1", a bare "§1.3", "RFC 3414 §3.2"). The facts are now in docs/,
under the same section numbers, so every citation can point there:

    reference §2.5                  -> docs/hikvision-protocols.md §2.5   (file from the module)
    reference snmp-poe.md §4.4      -> docs/snmp-poe.md §4.4
    gpio-serial.md §3.2-3.4, §5     -> docs/gpio-serial.md §3.2-3.4, docs/gpio-serial.md §5
    §1.6                            -> docs/gpio-serial.md §1.6           (file from the module)
    RFC 3414 §3.2                   -> RFC 3414 section 3.2; docs/snmp-poe.md §6.1

A bare citation (no file named) takes the file of the citation it follows in a list ("§1, §2.1")
or else the module's file: SNMP/PoE modules cite snmp-poe, GPIO/serial/relay/actuator modules
gpio-serial, everything else (camera, SADP, ISAPI, the simulated camera) hikvision-protocols.
A module outside those groups gets hikvision-protocols too, and the script says so ("guessed").

Only comment and docstring text is changed; a '§' anywhere else, or one the script cannot place
(an unknown file or RFC), is reported and left alone, and a file that says "cite-docs: skip-file"
is not touched at all. A line that grows past 100 characters is rewrapped by carrying its last
words onto the next line of the same paragraph (or onto a new line); a citation is never split.
Lines that cannot be fitted are reported. Running the script twice changes nothing the second
time.

Usage (from the repository root):
    python3 tools/cite_docs.py                 # rewrite rig/ in place, print a summary
    python3 tools/cite_docs.py --check         # change nothing; exit 1 if anything would change
    python3 tools/cite_docs.py --diff DIR ...  # print a unified diff instead of writing
"""

from __future__ import annotations

import argparse
import ast
import difflib
import io
import re
import sys
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

MAX_LINE = 100
#: A file holding this text is left alone (the citation test: its wrong examples are on purpose).
SKIP_MARK = "cite-docs: skip-file"

#: Names the reference notes were cited by, mapped to the file under docs/ (without ".md").
DOC_NAMES = {
    "hikvision-protocols": "hikvision-protocols",
    "hikvision": "hikvision-protocols",
    "snmp-poe": "snmp-poe",
    "snmp": "snmp-poe",
    "gpio-serial": "gpio-serial",
}

#: Standards cited with '§': the docs section that states the fact, with the RFC as its source.
RFC_DOCS = {
    ("3414", "3.2"): ("snmp-poe", "6.1"),
    ("3416", "4.2.5"): ("snmp-poe", "5.3"),
    ("3621", "pethPsePortTable"): ("snmp-poe", "1.2"),
    ("7616", "3.3"): ("hikvision-protocols", "2.1"),
}

#: Path words that decide a module's file, checked in this order; the rest is hikvision.
MODULE_FILES = (
    (("poe", "snmp", "switch"), "snmp-poe"),
    (("gpio", "serial", "relay", "solenoid", "actuator"), "gpio-serial"),
)
#: Path words of the modules that are hikvision-protocols by design (no "guessed" note).
HIKVISION_WORDS = ("camera", "sadp", "isapi", "fleet", "activation", "discovery", "digest",
                   "factory_state", "profiles")

SEC = r"\d+(?:\.\d+)*(?:\s?[-\u2013]\s?\d+(?:\.\d+)*)?"
CITATION = re.compile(
    rf"(?P<canon>docs/[A-Za-z0-9_-]+\.md §{SEC})"
    r"|(?P<rfc>RFC\s?(?P<rfc_num>\d+),?\s?§\s?(?P<rfc_sec>\d+(?:\.\d+)*|[A-Za-z]\w*))"
    r"|(?P<named>(?P<ref>\b(?i:the\s+)?(?i:reference|ref)\b\.?\s+)?(?P<tick>`{0,2})"
    rf"(?P<path>[\w./-]*/)?(?P<file>[A-Za-z0-9_-]+)\.md(?P=tick),?\s*§\s?(?P<sec>{SEC}))"
    rf"|(?P<bare>(?P<ref2>\b(?i:the\s+)?(?i:reference|ref)\b\.?\s+)?§\s?(?P<sec2>{SEC}))"
)
LIST_SEPARATOR = re.compile(r"\s*(?:,|;|,?\s+and|,?\s+or|/)\s*")
#: Spans a line is never split inside: a canonical citation, ``literal`` and `literal`.
PROTECTED = re.compile(rf"docs/[A-Za-z0-9_-]+\.md §{SEC}|``[^`]*``|`[^`]*`")
BULLET = re.compile(r"(?:[-*+]|\d+[.)])\s")


def module_file(relpath: str) -> tuple[str, bool]:
    """The docs file a bare citation in this module means, and whether that is a guess."""
    lowered = relpath.lower()
    for words, doc in MODULE_FILES:
        if any(word in lowered for word in words):
            return doc, False
    return "hikvision-protocols", not any(word in lowered for word in HIKVISION_WORDS)


def _section(text: str) -> str:
    return re.sub(r"\s", "", text).replace("\u2013", "-")


@dataclass
class FileReport:
    path: str
    rewritten: int = 0                                       # citations rewritten
    rewrapped: int = 0                                       # lines broken in two
    added_lines: int = 0
    guessed: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    too_long: list[str] = field(default_factory=list)


def rewrite_text(text: str, default_doc: str, report: FileReport, where: str,
                 guessed: bool) -> str:
    """Rewrite every citation in one comment or docstring fragment."""
    out: list[str] = []
    pos = 0
    previous_doc: str | None = None
    previous_rfc = False
    previous_end = -1
    for m in CITATION.finditer(text):
        out.append(text[pos:m.start()])
        pos = m.end()
        original = m.group(0)
        follows_list = (previous_end >= 0
                        and LIST_SEPARATOR.fullmatch(text[previous_end:m.start()]) is not None)
        if m.group("bare") and m.group("ref2") is None and follows_list and previous_rfc:
            report.unresolved.append(f"{where}: {original!r} (continues an RFC citation)")
            out.append(original)
            previous_end = m.end()
            continue
        previous_rfc = bool(m.group("rfc"))
        if m.group("canon"):
            previous_doc = m.group("canon").split("/", 1)[1].split(".md", 1)[0]
            out.append(original)
        elif m.group("rfc"):
            key = (m.group("rfc_num"), m.group("rfc_sec"))
            if key not in RFC_DOCS:
                report.unresolved.append(f"{where}: {original!r} (RFC not stated in docs/)")
                out.append(original)
                previous_doc = None
            else:
                doc, section = RFC_DOCS[key]
                number, sec = key
                label = f"section {sec}" if sec[0].isdigit() else sec
                out.append(f"RFC {number} {label}; docs/{doc}.md §{section}")
                previous_doc = doc
                report.rewritten += 1
        elif m.group("named"):
            name = m.group("file")
            doc = DOC_NAMES.get(name)
            if doc is None:
                report.unresolved.append(f"{where}: {original!r} (no docs/ file for {name}.md)")
                out.append(original)
                previous_doc = None
            else:
                out.append(f"docs/{doc}.md §{_section(m.group('sec'))}")
                previous_doc = doc
                report.rewritten += 1
        else:
            if m.group("ref2") is None and follows_list and previous_doc is not None:
                doc = previous_doc
            else:
                doc = default_doc
                if guessed:
                    report.guessed.append(f"{where}: {original!r} -> docs/{doc}.md")
            out.append(f"docs/{doc}.md §{_section(m.group('sec2'))}")
            previous_doc = doc
            report.rewritten += 1
        previous_end = m.end()
    out.append(text[pos:])
    return "".join(out)


@dataclass
class Region:
    kind: str          # "comment", "inline-comment" or "docstring"
    first: int         # 0-based line index
    last: int
    start_col: int     # column where the text starts on the first line
    end_col: int       # column where it ends on the last line (exclusive); -1 = end of line


def find_regions(source: str) -> list[Region]:
    """Comments and docstrings (string statements) of a module, in source order."""
    tree = ast.parse(source)
    doc_starts = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)):
            doc_starts.add((node.value.lineno, node.value.col_offset))
    lines = source.splitlines(keepends=True)
    regions: list[Region] = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        (srow, scol), (erow, ecol) = tok.start, tok.end
        if tok.type == tokenize.COMMENT:
            full = lines[srow - 1][:scol].strip() == ""
            regions.append(Region("comment" if full else "inline-comment",
                                  srow - 1, srow - 1, scol, -1))
        elif tok.type == tokenize.STRING and (srow, _char_col(lines[srow - 1], scol)) in doc_starts:
            regions.append(Region("docstring", srow - 1, erow - 1, scol, ecol))
    return regions


def _char_col(line: str, col: int) -> int:
    # tokenize columns count characters; ast col_offset counts UTF-8 bytes.
    return len(line[:col].encode("utf-8"))


def all_section_signs(source: str) -> list[tuple[int, int]]:
    return [(i, m.start()) for i, line in enumerate(source.splitlines())
            for m in re.finditer("§", line)]


def _comment_parts(line: str) -> tuple[str, str] | None:
    m = re.match(r"(\s*#:?\s?\s*)(.*)", line)
    if m is None or not line.lstrip().startswith("#"):
        return None
    return m.group(1), m.group(2)


def _prefix(line: str, block: Region, first_line: bool) -> str:
    """What a continuation of this line starts with (indent, comment marker, bullet hang)."""
    if block.kind == "comment":
        parts = _comment_parts(line)
        assert parts is not None
        lead, body = parts
        bullet = BULLET.match(body)
        return lead + " " * (bullet.end() if bullet else 0)
    if first_line:
        return " " * block.start_col
    indent = len(line) - len(line.lstrip())
    bullet = BULLET.match(line[indent:])
    return " " * (indent + (bullet.end() if bullet else 0))


def _continues(line: str, block: Region, prefix: str) -> bool:
    """Whether ``line`` carries on the paragraph whose continuation lines start with prefix."""
    if block.kind == "comment":
        parts = _comment_parts(line)
        if parts is None:
            return False
        lead, body = parts
    else:
        indent = len(line) - len(line.lstrip())
        lead, body = " " * indent, line[indent:]
    if lead != prefix or not body.strip() or BULLET.match(body):
        return False
    return not body.startswith(('"""', "'''", "..", ">>>"))


def _split_point(line: str, min_col: int) -> int | None:
    """The last space at which ``line`` may be broken so that its head fits MAX_LINE."""
    protected = [m.span() for m in PROTECTED.finditer(line)]
    for i in range(min(len(line) - 1, MAX_LINE), min_col, -1):
        if line[i] != " " or not line[min_col:i].strip():
            continue
        if any(a < i < b for a, b in protected):
            continue
        return i
    return None


def rewrap(lines: list[str], block: Region, dirty: set[int], report: FileReport) -> int:
    """Carry overflow words down the paragraph; returns how many lines were inserted."""
    added = 0
    last = block.last
    i = block.first
    while i <= last:
        line = lines[i].rstrip("\n")
        if i not in dirty or len(line) <= MAX_LINE:
            i += 1
            continue
        snippet = f"{report.path}:{block.first + 1}+{i - block.first}: {line.strip()[:50]!r}..."
        if block.kind == "inline-comment":
            report.too_long.append(f"{snippet} (comment after code, {len(line)} chars)")
            i += 1
            continue
        first = block.kind == "docstring" and i == block.first
        prefix = _prefix(line, block, first)
        if block.kind == "comment":
            min_col = len(_comment_parts(line)[0])
        else:
            min_col = len(line) - len(line.lstrip()) + (3 if first else 0)
        cut = _split_point(line, min_col)
        if cut is None:
            report.too_long.append(f"{snippet} ({len(line)} chars, nowhere to break)")
            i += 1
            continue
        head, tail = line[:cut].rstrip(), line[cut:].strip()
        lines[i] = head + "\n"
        report.rewrapped += 1
        nxt = i + 1
        if nxt <= last and _continues(lines[nxt].rstrip("\n"), block, prefix):
            body = lines[nxt].rstrip("\n")[len(prefix):]
            lines[nxt] = prefix + tail + " " + body + "\n"
        else:
            lines.insert(nxt, prefix + tail + "\n")
            shifted = {d + 1 if d >= nxt else d for d in dirty}
            dirty.clear()
            dirty.update(shifted)
            added += 1
            last += 1
        dirty.add(nxt)
        i += 1
    return added


def comment_blocks(regions: list[Region], lines: list[str]) -> list[Region]:
    """Docstrings as they are; runs of whole-line comments at one indentation merged."""
    blocks: list[Region] = []
    for region in regions:
        prev = blocks[-1] if blocks else None
        if (region.kind == "comment" and prev is not None and prev.kind == "comment"
                and region.first == prev.last + 1 and region.start_col == prev.start_col):
            prev.last = region.first
        else:
            blocks.append(Region(region.kind, region.first, region.last, region.start_col,
                                 region.end_col))
    return blocks


def process(path: Path, relpath: str) -> tuple[str, str, FileReport]:
    source = path.read_text(encoding="utf-8")
    report = FileReport(relpath)
    if "§" not in source or SKIP_MARK in source:
        return source, source, report
    default_doc, guessed = module_file(relpath)
    regions = find_regions(source)
    lines = source.splitlines(keepends=True)
    spans: list[tuple[int, int, int]] = []            # (line, start, end) of text to rewrite
    for region in regions:
        for i in range(region.first, region.last + 1):
            text = lines[i].rstrip("\r\n")
            start = region.start_col if i == region.first else 0
            end = region.end_col if (i == region.last and region.end_col >= 0) else len(text)
            spans.append((i, start, end))
    covered = {(i, start + m.start()) for i, start, end in spans
               for m in re.finditer("§", lines[i][start:end])}
    for line_no, col in all_section_signs(source):
        if (line_no, col) not in covered:
            text = source.splitlines()[line_no].strip()
            report.unresolved.append(f"{relpath}:{line_no + 1}: '§' outside comments and "
                                     f"docstrings, left alone: {text[:60]!r}")
    dirty: set[int] = set()
    # Right to left, so a rewrite never moves a span still to be done on the same line.
    for i, start, end in sorted(spans, key=lambda s: (s[0], -s[1])):
        raw = lines[i]
        fragment = raw[start:end]
        if "§" not in fragment:
            continue
        new = rewrite_text(fragment, default_doc, report, f"{relpath}:{i + 1}", guessed)
        if new != fragment:
            lines[i] = raw[:start] + new + raw[end:]
            dirty.add(i)
    # Rewrap from the bottom up, so inserted lines never move a block not yet handled.
    for block in reversed(comment_blocks(regions, lines)):
        mine = {i for i in dirty if block.first <= i <= block.last}
        if mine:
            report.added_lines += rewrap(lines, block, mine, report)
    new_source = "".join(lines)
    if new_source != source:
        compile(new_source, str(path), "exec")     # never write a file Python cannot read
    return source, new_source, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path,
                        help="directories or files to rewrite (default: rig/ next to tools/)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="write nothing; exit 1 if a file would change or a citation is left")
    mode.add_argument("--diff", action="store_true", help="print a unified diff; write nothing")
    args = parser.parse_args(argv)
    paths = args.paths or [Path(__file__).resolve().parents[1] / "rig"]

    reports: list[FileReport] = []
    changed = 0
    for base in paths:
        files = sorted(base.rglob("*.py")) if base.is_dir() else [base]
        for path in files:
            rel = path.relative_to(base).as_posix() if base.is_dir() else path.name
            relpath = f"{base.name}/{rel}" if base.is_dir() else rel
            old, new, report = process(path, relpath)
            reports.append(report)
            if new == old:
                continue
            changed += 1
            if args.diff:
                sys.stdout.writelines(difflib.unified_diff(
                    old.splitlines(keepends=True), new.splitlines(keepends=True),
                    f"a/{relpath}", f"b/{relpath}"))
            elif not args.check:
                path.write_text(new, encoding="utf-8")

    out = sys.stderr if args.diff else sys.stdout
    cited = [r for r in reports if r.rewritten]
    print(f"{'would change' if args.check or args.diff else 'changed'} {changed} file(s): "
          f"{sum(r.rewritten for r in reports)} citation(s) rewritten in {len(cited)} file(s), "
          f"{sum(r.rewrapped for r in reports)} line(s) rewrapped, "
          f"{sum(r.added_lines for r in reports)} line(s) added", file=out)
    for r in cited:
        print(f"  {r.path}: {r.rewritten} citation(s)"
              + (f", {r.rewrapped} line(s) rewrapped" if r.rewrapped else "")
              + (f", {r.added_lines} added" if r.added_lines else ""), file=out)
    problems = 0
    for title, attr in (("guessed the file (check these)", "guessed"),
                        ("NOT rewritten (fix by hand)", "unresolved"),
                        ("could NOT be fitted in 100 characters", "too_long")):
        items = [item if attr != "too_long" else f"{r.path} {item}"
                 for r in reports for item in getattr(r, attr)]
        if items:
            print(f"{title}:", file=out)
            for item in items:
                print(f"  {item}", file=out)
            problems += len(items) if attr != "guessed" else 0
    if args.check and (changed or problems):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
