"""Every figure in README.md's results tables must be a value of a committed JSON that its section cites.

    python docs/check_numbers.py [--readme README.md] [--verbose]

What is checked: every markdown table under the README's "## Results" heading (its ### subsections
included, up to the next "## " heading). In each body cell, every number is a figure (percentages, uJ,
us, ms, x ratios, counts, ...), except by these rules, which are the only ones (there is no list of
allowed numbers):

- the header row and the first column are labels (a row's name), not figures;
- a column whose header names a ``command``, a ``goal`` or a ``target`` holds no measurement;
- a number right after ``>=``, ``<=``, ``\u2265`` or ``\u2264`` is a target, and ``#14`` / ``issue 14`` is an issue number;
- a number glued to a letter, an underscore or a dot on its left (``sne22nm``, ``int6``, ``v2``) or to a
  letter and a digit on its right (``2x2``, ``34x34``) is part of a name or a shape.

Where a figure may come from: the JSON files its section cites. A section runs from its heading to the
next heading; every ``docs/...json`` path written in it (``docs/bench/sim.json``, brace lists such as
``docs/bench/robustness_robust_seed{0,1,2}.json``) is a source, and a cited folder (``docs/frontend_sweep/``)
stands for every JSON under it. A cited path that does not exist is reported. A table whose section cites
no JSON has no source, so each of its figures is reported.

When a figure matches: a JSON number v (any numeric leaf, booleans excluded), times a scale allowed by the
figure's unit (UNIT_SCALES: a fraction as a percentage for % and pp, a prefix step such as s -> ms for
time, energy and counts in M), rounds to the figure at the decimals the table shows: 99.67 % matches
0.99667, 2.85 uJ matches 2.8512, 5.14x matches 5.137, 1,283 us matches 1283.2. A ratio (a number followed
by ``x``) also matches 1 / v: "0.19x (the ANN is 5.1x cheaper)" quotes one JSON ratio both ways. A number
without a unit of its own that is followed by ``\u00b1`` or a range dash takes the next number's unit
("97.33 \u00b1 0.61 %", "96.6-98.0 %"). Nothing else: no differences, no sums.

Every figure without a match is printed as ``table | row | column | figure`` and the script exits 1;
with every figure matched it prints how many it checked (and, with --verbose, every skipped column and
the JSON value each figure matched) and exits 0.
"""
from __future__ import annotations

import argparse
import bisect
import itertools
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Results"
SKIP_COLUMN_WORDS = ("command", "goal", "target")
PREFIX_STEPS = (1.0, 1e3, 1e-3, 1e6, 1e-6)
# unit (lower case, as written after the number) -> scales s: the figure matches v x s
UNIT_SCALES = {"%": (1.0, 100.0), "pp": (1.0, 100.0), "uj": PREFIX_STEPS, "us": PREFIX_STEPS, "ms": PREFIX_STEPS,
               "mb": PREFIX_STEPS, "m": PREFIX_STEPS, "x": (1.0,)}
# A number: optional sign, digits with optional thousands commas, optional decimals, optional exponent;
# not glued to a name on its left, nor to a letter-then-digit shape (2x2) on its right.
NUMBER = re.compile(r"(?<![\w.])([-+\u2212]?)(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(e[-+]?\d+)?(?![\w.]*\d)(?![\d.,]\d)")
UNIT_AFTER = re.compile(r"\s*(%|pp\b|uj\b|us\b|ms\b|mb\b|m\b|x(?![a-z]))", re.IGNORECASE)
LINKED_AFTER = re.compile(r"^\s*(\u00b1|-|\u2013)\s*\d")  # 97.33 ± 0.61 %, 96.6-98.0 %: the next number's unit
TARGET_BEFORE = re.compile(r"(>=|<=|\u2265|\u2264)\s*$")
ISSUE_BEFORE = re.compile(r"(#|\bissues?\s+)$", re.IGNORECASE)
SOURCE = re.compile(r"docs/[\w./{},-]*")
TABLE_SEPARATOR = re.compile(r"\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*")


@dataclass(frozen=True)
class Figure:
    """One number as a table shows it: ``text`` as written, its ``value``, ``decimals`` shown, and its ``unit``
    (a key of UNIT_SCALES, or "" for none)."""
    text: str
    value: float
    decimals: int
    unit: str


@dataclass
class Table:
    """A markdown table: ``title`` (the heading above it), ``header`` cells, body ``rows`` of cells, ``line``
    (1-based) of its header in the README, and ``sources``: the JSON paths its section cites."""
    title: str
    header: list[str]
    rows: list[list[str]]
    line: int
    sources: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Miss:
    """A figure with no JSON match (or a cited source that does not exist): where it is and what it says."""
    table: str
    row: str
    column: str
    figure: str


def results_section(text: str) -> tuple[list[str], int]:
    """The README's results section as lines (its "## Results" line to the next "## " heading) and its first line number."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == SECTION), None)
    if start is None:
        raise ValueError(f"README has no '{SECTION}' heading")
    end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("## ")), len(lines))
    return lines[start:end], start + 1


def split_row(line: str) -> list[str]:
    """Cells of one ``| a | b |`` line; a ``|`` inside a code span or escaped as ``\\|`` stays in its cell."""
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    cells, current, in_code = [], [], False
    for i, ch in enumerate(body):
        if ch == "`":
            in_code = not in_code
        if ch == "|" and not in_code and (i == 0 or body[i - 1] != "\\"):
            cells.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    cells.append("".join(current).strip())
    return cells


def cited_sources(text: str) -> list[str]:
    """The docs/ paths written in ``text`` that can hold JSON (``*.json`` files and folders), braces expanded, in order."""
    out = []
    for token in SOURCE.findall(text):
        token = token.rstrip(".,")
        parts = re.split(r"\{([^{}]*)\}", token)  # a{b,c}d -> ["a", "b,c", "d"]
        choices = [part.split(",") if k % 2 else [part] for k, part in enumerate(parts)]
        for combo in itertools.product(*choices):
            path = "".join(combo)
            if (path.endswith(".json") or path.endswith("/")) and path not in out:
                out.append(path)
    return out


def parse_tables(lines: list[str], first_line: int = 1) -> list[Table]:
    """Every markdown table (a header line, a ``|---|`` line, then ``|`` rows) in ``lines``, each with the
    JSON sources cited in its section (from its heading to the next heading)."""
    tables, title, section_tables, section_text, i = [], "", [], [], 0

    def close_section():
        sources = cited_sources("\n".join(section_text))
        for table in section_tables:
            table.sources = sources

    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            close_section()
            title, section_tables, section_text = line.lstrip("#").strip(), [], []
        section_text.append(line)
        if line.lstrip().startswith("|") and i + 1 < len(lines) and TABLE_SEPARATOR.fullmatch(lines[i + 1]):
            table = Table(title, split_row(line), [], first_line + i)
            i += 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                table.rows.append(split_row(lines[i]))
                section_text.append(lines[i])
                i += 1
            tables.append(table)
            section_tables.append(table)
            continue
        i += 1
    close_section()
    return tables


def skipped_column(header: str) -> bool:
    """A column that holds no measurement: its header names a command, a goal or a target."""
    return any(word in header.lower() for word in SKIP_COLUMN_WORDS)


def figures(cell: str) -> list[Figure]:
    """The figures of one cell, by the rules of the module docstring (targets, issue numbers and names left out)."""
    found = []
    for m in NUMBER.finditer(cell):
        before, after = cell[:m.start()], cell[m.end():]
        if TARGET_BEFORE.search(before) or ISSUE_BEFORE.search(before):
            continue
        sign, whole, frac, exp = m.groups()
        value = float(whole.replace(",", "") + (frac or "") + (exp or ""))
        value = -value if sign in ("-", "\u2212") else value
        decimals = (len(frac) - 1 if frac else 0) - (int(exp[1:]) if exp else 0)
        unit = UNIT_AFTER.match(after)
        found.append((Figure(m.group(0), value, decimals, unit.group(1).lower() if unit else ""),
                      bool(LINKED_AFTER.match(after))))
    out = []
    for k, (fig, linked) in enumerate(found):
        if not fig.unit and linked and k + 1 < len(found):
            fig = Figure(fig.text, fig.value, fig.decimals, found[k + 1][0].unit)
        out.append(fig)
    return out


class JsonNumbers:
    """Every finite numeric leaf of some JSON files, sorted, with where each comes from (file:key path)."""

    def __init__(self, paths: list[Path], root: Path):
        found: list[tuple[float, str]] = []
        for path in paths:
            try:
                data = json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise ValueError(f"{path}: not valid JSON ({err})") from err
            self._walk(data, path.relative_to(root).as_posix(), found)
        found.sort(key=lambda pair: pair[0])
        self.values, self.where = [v for v, _ in found], [w for _, w in found]

    @staticmethod
    def _walk(node, where: str, found: list) -> None:
        if isinstance(node, bool):
            return
        if isinstance(node, (int, float)):
            if math.isfinite(node):
                found.append((float(node), where))
        elif isinstance(node, dict):
            for key, child in node.items():
                JsonNumbers._walk(child, f"{where}.{key}", found)
        elif isinstance(node, list):
            for k, child in enumerate(node):
                JsonNumbers._walk(child, f"{where}[{k}]", found)

    def find(self, lo: float, hi: float) -> str | None:
        """Where a value in [lo, hi] sits, or None."""
        i = bisect.bisect_left(self.values, lo)
        if i < len(self.values) and self.values[i] <= hi:
            return f"{self.where[i]} = {self.values[i]:g}"
        return None


def match(figure: Figure, numbers: JsonNumbers) -> str | None:
    """Where a JSON value that rounds to ``figure`` (under its unit's scales, and 1 / v for a ratio) sits, or None."""
    half = 0.5 * 10.0 ** (-figure.decimals) * (1 + 1e-9)
    lo, hi = figure.value - half, figure.value + half
    for scale in UNIT_SCALES.get(figure.unit, (1.0,)):
        hit = numbers.find(lo / scale, hi / scale)
        if hit:
            return f"{hit} (x {scale:g})"
    if figure.unit == "x" and lo > 0:
        hit = numbers.find(1.0 / hi, 1.0 / lo)
        if hit:
            return f"{hit} (1 / v)"
    return None


def source_files(sources: list[str], root: Path) -> tuple[list[Path], list[str]]:
    """(the JSON files of the cited sources, the cited paths that do not exist); a folder gives its **/*.json."""
    files, missing = [], []
    for source in sources:
        path = root / source
        if path.is_dir():
            files += sorted(path.rglob("*.json"))
        elif path.is_file():
            files.append(path)
        else:
            missing.append(source)
    return files, missing


def check_table(table: Table, root: Path, log) -> tuple[int, list[Miss]]:
    """(figures checked, misses) of one table against the JSON its section cites."""
    name = f"{table.title} (line {table.line})"
    files, missing = source_files(table.sources, root)
    misses = [Miss(name, "(section)", "(sources)", f"cited {source} does not exist") for source in missing]
    if not table.sources:
        misses.append(Miss(name, "(section)", "(sources)", "the section cites no docs/...json file or folder"))
    numbers = JsonNumbers(files, root)
    log(f"table: {name}: sources {', '.join(table.sources) or 'none'}")
    for k, header in enumerate(table.header):
        if k == 0 or skipped_column(header):
            log(f"skip column: {name} | {header!r} ({'row labels' if k == 0 else 'command/goal/target'})")
    checked = 0
    for row in table.rows:
        label = row[0] if row else ""
        for k, cell in enumerate(row[1:], start=1):
            column = table.header[k] if k < len(table.header) else f"column {k + 1}"
            if skipped_column(column):
                continue
            for fig in figures(cell):
                checked += 1
                hit = match(fig, numbers)
                log(f"{'match' if hit else 'MISS '}: {name} | {label[:50]} | {column[:40]} | {fig.text} {fig.unit} -> {hit}")
                if hit is None:
                    misses.append(Miss(name, label, column, f"{fig.text} {fig.unit}".strip()))
    return checked, misses


def check(readme: Path, log=None) -> tuple[int, list[Miss]]:
    """(figures checked, figures without a JSON match) of ``readme``'s results tables; sources are resolved
    against the README's folder. ``log`` (a print-like callable) receives every skipped column and every match."""
    log = log or (lambda *_: None)
    lines, first_line = results_section(readme.read_text())
    checked, misses = 0, []
    for table in parse_tables(lines, first_line):
        n, table_misses = check_table(table, readme.parent, log)
        checked += n
        misses += table_misses
    return checked, misses


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readme", type=Path, default=ROOT / "README.md", help="the README whose results tables to check")
    ap.add_argument("--verbose", action="store_true", help="print every table's sources, skipped column and match")
    args = ap.parse_args(argv)
    if not args.readme.is_file():
        ap.error(f"--readme {args.readme} does not exist")
    checked, misses = check(args.readme, print if args.verbose else None)
    for miss in misses:
        print(f"no JSON value: {miss.table} | {miss.row} | {miss.column} | {miss.figure}")
    print(f"check_numbers: {checked} figures in {args.readme.name}'s results tables, {len(misses)} without a "
          "matching value in the JSON their section cites")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
