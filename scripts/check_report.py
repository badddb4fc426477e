"""Open an audit report (`fullchain audit report`) in a real headless browser and check what it rendered.

    python scripts/check_report.py report.html --screenshot report.png [--summary report.json]

Runs Debian's chromium (`apt-get install chromium`) twice, with no network (a proxy that does
not exist, so any outside request would fail): `--dump-dom` for the DOM after parsing, then
`--screenshot` at 1280x2000. Fails (exit 1) unless the DOM has the report's sections (summary,
lineage, licenses, accesses, verification), the lineage SVG with one node per dataset box the
file holds, no script element, and the screenshot was written. Prints and writes a JSON summary.
Not part of the test suite (CI has no chromium); tests/test_audit_report.py checks the HTML
itself with html.parser.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

SECTIONS = ("summary", "lineage", "licenses", "accesses", "verification")


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.tags: dict[str, int] = {}
        self.nodes = 0
        self.edges = 0
        self.access_rows = 0
        self.resources: list[str] = []
        self._in_accesses = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if a.get("id"):
            self.ids.add(a["id"] or "")
        classes = (a.get("class") or "").split()
        if tag == "g" and "node" in classes:
            self.nodes += 1
        if tag == "path" and "edge" in classes:
            self.edges += 1
        if tag == "table":
            self._in_accesses = "accesses" in classes
        if tag == "tr" and self._in_accesses and ({"covered", "uncovered"} & set(classes)):
            self.access_rows += 1
        for key in ("src", "href", "xlink:href"):
            value = a.get(key)
            if value and not value.startswith("#"):
                self.resources.append(value)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    sys.exit("no chromium found: install it with `apt-get install -y chromium`")


def _run(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # No network: every request goes to a proxy on a closed port of the loopback.
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--user-data-dir={profile}", "--proxy-server=127.0.0.1:9", "--no-first-run",
                           "--disable-background-networking", *args],
                          capture_output=True, text=True, timeout=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--screenshot", type=Path, required=True)
    parser.add_argument("--summary", type=Path, help="Where to write the JSON summary (default: next to the screenshot).")
    args = parser.parse_args()
    browser = _chromium()
    url = args.report.resolve().as_uri()
    source = _Dom()
    source.feed(args.report.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as profile:
        dumped = _run(browser, Path(profile), "--dump-dom", url)
        shot = _run(browser, Path(profile), f"--screenshot={args.screenshot.resolve()}", "--window-size=1280,2000",
                    url)
    dom = _Dom()
    dom.feed(dumped.stdout)
    failures = []
    if dumped.returncode != 0 or not dumped.stdout.strip():
        failures.append(f"chromium --dump-dom failed (exit {dumped.returncode}): {dumped.stderr.strip()[-300:]}")
    missing = [s for s in SECTIONS if s not in dom.ids]
    if missing:
        failures.append(f"sections missing from the rendered DOM: {', '.join(missing)}")
    if dom.tags.get("svg", 0) < 1 or dom.nodes < 1:
        failures.append("the lineage SVG was not rendered (no svg or no dataset node in the DOM)")
    if dom.nodes != source.nodes or dom.edges != source.edges:
        failures.append(f"the DOM has {dom.nodes} lineage nodes and {dom.edges} edges, the file {source.nodes} "
                        f"and {source.edges}")
    if dom.access_rows != source.access_rows:
        failures.append(f"the DOM has {dom.access_rows} access rows, the file {source.access_rows}")
    if dom.tags.get("script"):
        failures.append("the DOM holds a script element")
    if dom.resources:
        failures.append(f"the DOM references resources: {dom.resources[:5]}")
    if shot.returncode != 0 or not args.screenshot.exists() or args.screenshot.stat().st_size == 0:
        failures.append(f"chromium --screenshot failed (exit {shot.returncode}): {shot.stderr.strip()[-300:]}")
    summary = {"report": str(args.report), "browser": subprocess.run([browser, "--version"], capture_output=True,
                                                                     text=True).stdout.strip(),
               "sections": sorted(s for s in SECTIONS if s in dom.ids), "svg": dom.tags.get("svg", 0),
               "lineage_nodes": dom.nodes, "lineage_edges": dom.edges, "access_rows": dom.access_rows,
               "screenshot": str(args.screenshot), "ok": not failures, "failures": failures}
    out = args.summary or args.screenshot.with_suffix(".json")
    out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=2))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
