"""The HTML audit report, read with the standard library's html.parser on the demo's world:
its sections, one SVG box per dataset of the lineage, one table row per access, the verification
lines, nothing fetched from anywhere, and every value from the chain or a profile name escaped.
(scripts/check_report.py renders it in a real browser; CI has none.)"""
from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

import fullchain
from fullchain.audit.check import CheckReport, Violation, check_dataset
from fullchain.audit.report import MAX_ACCESS_ROWS, _accesses, build_report_data, render_report
from fullchain.view import open_view

from .conftest import DEMO_PASSWORD, run_cli

PW = DEMO_PASSWORD
SECTIONS = {"summary", "lineage", "licenses", "accesses", "verification"}


class Page(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.rows: list[list[str]] = []  # the access table's rows, cell texts
        self._table: str | None = None
        self._row: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "table":
            self._table = a.get("class")
        elif tag == "tr" and self._table == "accesses" and a.get("class") in ("covered", "uncovered"):
            self._row = []
        elif tag == "td" and self._row is not None:
            self._row.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._row:
            self._row[-1] += data

    def having(self, tag: str, **wanted: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in wanted.items())]


@pytest.fixture(scope="module")
def demo(demo_template: Callable[[str], tuple[Path, str]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    template, _ = demo_template(PW)
    home = tmp_path_factory.mktemp("report") / "home"
    shutil.copytree(template, home, symlinks=True)
    view = open_view("hospital", home=home, password=PW) or fullchain.connect("hospital", home=home, password=PW).view()
    yield {"view": view, "env": {"FULLCHAIN_HOME": str(home), "FULLCHAIN_PASSWORD": PW}}
    view.index.close()


def report(demo: dict, dataset: int, tmp_path: Path) -> tuple[str, Page]:
    out = tmp_path / f"report-{dataset}.html"
    done = run_cli("-p", "hospital", "audit", "report", str(dataset), "-o", str(out), env=demo["env"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Wrote {out}: audit report of dataset {dataset}")
    text = out.read_text(encoding="utf-8")
    return text, Page(text)


def assert_offline(text: str, page: Page) -> None:
    assert not page.having("script") and not page.having("link") and not page.having("img")
    assert not page.having("iframe") and not page.having("object")
    for tag, attrs in page.tags:
        for key in ("src", "href", "xlink:href", "srcset", "action", "poster"):
            value = attrs.get(key)
            assert value is None or value.startswith("#"), (tag, key, value)
        assert "url(" not in (attrs.get("style") or "") or "url(#" in (attrs.get("style") or "")
    assert not re.search(r"https?://", text), "no resource from the network, nor any link out"
    assert not re.search(r"@import|@font-face", text)
    csp = page.having("meta", http_equiv="Content-Security-Policy")
    assert csp and "default-src 'none'" in (csp[0]["content"] or "")


def test_report_of_a_licensed_dataset(demo: dict, tmp_path: Path) -> None:
    text, page = report(demo, 1, tmp_path)
    assert {a["id"] for a in page.having("section")} == SECTIONS
    assert_offline(text, page)
    # Lineage: dataset 1 and its descendant 3 (dataset 2 is 3's other parent, not 1's lineage).
    nodes = {a["data-dataset"]: a["data-relation"] for _, a in page.tags if a.get("class") == "node"}
    assert nodes == {"1": "self", "3": "descendant"}
    assert [(a["data-from"], a["data-to"]) for a in page.having("path", **{"class": "edge"})] == [("1", "3")]
    # One row per recorded access, in chain order, each judged as `audit check` judges it.
    check = check_dataset(demo["view"].index, 1, demo["view"].local_names())
    assert len(page.rows) == check.accesses == 3
    names = demo["view"].local_names()
    for row, verdict in zip(page.rows, check.verdicts):
        assert row[1] == str(verdict.access.block) and row[2].startswith(names[verdict.licensee])
        assert row[3] == str(verdict.license_id) and row[4] == str(verdict.version) and row[5] == "fetch"
        assert row[6] == "covered" and row[7] == verdict.access.tx_hash
    # The license timeline: one group per license, with its status; license 1 was revoked.
    licenses = {a["data-license"]: a["data-status"] for _, a in page.tags if a.get("class") == "license"}
    assert licenses == {"1": "revoked", "3": "granted"}
    words = " ".join(page.text)
    assert "passed: all 3 recorded accesses were covered by a license valid at their block" in words
    assert "Recorded accesses" in words and "hospital" in words


def test_report_of_a_derived_dataset_draws_both_parents(demo: dict, tmp_path: Path) -> None:
    text, page = report(demo, 3, tmp_path)
    nodes = {a["data-dataset"]: a["data-relation"] for _, a in page.tags if a.get("class") == "node"}
    assert nodes == {"1": "ancestor", "2": "ancestor", "3": "self"}
    assert sorted((a["data-from"], a["data-to"]) for a in page.having("path", **{"class": "edge"})) == \
           [("1", "3"), ("2", "3")]
    assert page.rows == [] and "No access was recorded." in " ".join(page.text)
    assert_offline(text, page)


def test_hostile_names_and_lines_are_escaped(demo: dict) -> None:
    view = demo["view"]
    names = dict(view.local_names())
    by_name = {n: a for a, n in names.items()}
    names[by_name["hospital"]] = "<script>alert('owner')</script>"
    names[by_name["pharma"]] = '"><img src=x onerror=alert(1)>'
    names[by_name["cro"]] = "</svg><iframe src=https://evil.example>"
    lines = [("<b>bundle</b>", "passed: <i>headers</i> & \"seals\""), ("x", "<style>body{display:none}</style>")]
    for dataset in (1, 3):
        text = render_report(build_report_data(view.index, dataset, names, verification=lines))
        page = Page(text)
        assert not page.having("script") and not page.having("img") and not page.having("iframe")
        tags = [t for t, _ in page.tags]
        assert "i" not in tags and tags.count("style") == 1
        assert tags.count("b") == len(page.having("div", **{"class": "count"}))  # the summary's figures only
        words = "".join(page.text)
        assert "passed: <i>headers</i> & \"seals\"" in words and "<b>bundle</b>" in words
        if dataset == 1:  # the names show as text, where they appear: owner, SVG, timeline, accesses
            assert words.count("<script>alert('owner')</script>") >= 2
            assert '"><img src=x onerror=alert(1)>' in words and "</svg><iframe src=https://evil.example>" in words
            assert {a["id"] for a in page.having("section")} == SECTIONS and len(page.rows) == 3
    # The caller's lines follow the license-at-time-of-use check's own.
    data = build_report_data(view.index, 1, names, verification=lines)
    assert data.verification[0][0] == "license at time of use" and data.verification[-2:] == lines


def test_access_table_is_bounded_and_keeps_every_uncovered_access(demo: dict) -> None:
    check = check_dataset(demo["view"].index, 1)
    model = check.verdicts[0]
    total = MAX_ACCESS_ROWS + 500
    verdicts = []
    for i in range(total):
        bad = [Violation(rule="revoked", detail=f"license 1 was revoked, not granted ({i})")] if i % 300 == 0 else []
        verdicts.append(model.model_copy(update={"access": model.access.model_copy(update={"block": i}),
                                                 "violations": bad}))
    big = CheckReport(dataset_id=1, accesses=total, verdicts=verdicts)
    rows, omitted = _accesses(big, {})
    assert len(rows) == MAX_ACCESS_ROWS and omitted == 500
    assert [r.block for r in rows if not r.covered] == list(range(0, total, 300))  # the early ones too
    assert [r.block for r in rows] == sorted(r.block for r in rows)
    assert rows[-1].block == total - 1  # the latest covered ones fill the rest
    data = build_report_data(demo["view"].index, 1)
    page = Page(render_report(data.model_copy(update={"accesses": rows, "accesses_total": total,
                                                      "accesses_uncovered": 5, "accesses_omitted": omitted})))
    assert len(page.rows) == MAX_ACCESS_ROWS
    uncovered = [r for r in page.rows if r[6].startswith("NOT COVERED")]
    assert len(uncovered) == 5 and "revoked (license 1 was revoked, not granted (0))" in uncovered[0][6]
    assert "500 earlier covered accesses are not listed" in " ".join(page.text)


def test_same_index_same_report(demo: dict) -> None:
    view = demo["view"]
    first = render_report(build_report_data(view.index, 1, view.local_names(), now=2_000_000_000))
    assert first == render_report(build_report_data(view.index, 1, view.local_names(), now=2_000_000_000))
