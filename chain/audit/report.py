"""An audit report of one dataset as one self-contained HTML file, for a regulator.

    from fullchain.audit.report import build_report_data, render_report
    data = build_report_data(view.index, 3, view.local_names(), verification=[("bundle", "passed: ...")])
    html = render_report(data)

Sections: a summary (dataset, owner, versions, licenses, accesses, the check's result), the
lineage as an inline SVG (ancestors -> dataset -> descendants, in layers computed here), the
license timeline (SVG: requested, granted, expiry, revoked/rejected/superseded, on one time
axis) with a table of the same licenses, the access table (time, licensee, license, version,
kind, covered or NOT COVERED with the rules broken), and the verification lines: always the
license-at-time-of-use check first, then the lines the caller passes (e.g. a bundle's checks).

No network: no scripts, no external fonts, images or style sheets (a Content-Security-Policy
forbids them too); every value from the chain or from local profile names is HTML-escaped.

Bounded for large trails: the access table shows every access that is NOT covered (up to
MAX_ACCESS_ROWS) and fills up to MAX_ACCESS_ROWS with the latest covered ones, with a note of
how many were left out; the timeline and its table show the MAX_LICENSES most recent licenses;
the lineage graph the MAX_LINEAGE datasets nearest the dataset. Each omission is stated.
"""
from __future__ import annotations

import html
import re
from collections import Counter
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from .check import CheckReport, check_dataset
from .prov import ACCESS_KINDS, Lineage, deployment_of, lineage_of
from .trail import dataset_trail, trail_events

if TYPE_CHECKING:
    from ..index import EventIndex

MAX_ACCESS_ROWS = 1000
MAX_LICENSES = 40
MAX_LINEAGE = 120
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}(?![0-9a-fA-F])")
_LICENSE_EVENTS = ("LicenseRequested", "LicenseGranted", "LicenseRenewed", "LicenseRejected", "LicenseRevoked",
                   "LicenseSuperseded")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VersionRow(_Model):
    version: int
    registered_at: datetime
    size: int
    commitment: str
    payload_cid: str
    standard: str
    tier: str
    erased: bool


class LineageBox(_Model):
    dataset_id: int
    owner: str
    owner_name: str | None
    relation: str  # ancestor, self, descendant
    layer: int
    row: int


class LicenseBar(_Model):
    license_id: int
    licensee: str
    licensee_name: str | None
    purpose: str
    status: str  # as of the report: requested, granted, expired, rejected, revoked, superseded
    requested_at: datetime
    granted_at: datetime | None = None
    expires_at: datetime | None = None
    ended_at: datetime | None = None  # rejected, revoked or superseded then


class AccessRow(_Model):
    time: datetime
    block: int
    tx_hash: str
    licensee: str
    licensee_name: str | None
    license_id: int
    version: int
    kind: str
    covered: bool
    violations: list[tuple[str, str]]  # (rule, detail with local names)


class ReportData(_Model):
    """What the report shows, and nothing else."""

    dataset_id: int
    title: str | None
    owner: str
    owner_name: str | None
    created_at: datetime
    chain: str  # the deployment's namespace (chain id, genesis, registry address)
    as_of_block: int
    as_of: datetime
    events_total: int
    versions: list[VersionRow]
    lineage: list[LineageBox]
    lineage_edges: list[tuple[int, int]]
    lineage_omitted: int
    licenses: list[LicenseBar]
    licenses_total: int
    license_statuses: dict[str, int]
    accesses: list[AccessRow]
    accesses_total: int
    accesses_uncovered: int
    accesses_omitted: int
    verification: list[tuple[str, str]]


def check_lines(report: CheckReport, as_of_block: int, source: str | None = None) -> list[tuple[str, str]]:
    """The verification lines of the license-at-time-of-use check and of where its events came from."""
    if report.ok:
        verdict = (f"passed: all {report.accesses} recorded accesses were covered by a license valid at their block"
                   if report.accesses else "passed: no access was recorded")
    else:
        verdict = (f"FAILED: {len(report.uncovered)} of {report.accesses} recorded accesses were NOT covered "
                   "(see the access table)")
    return [("license at time of use", verdict),
            ("source of the events", source or f"the local event index up to block {as_of_block}; headers and "
                                               "receipts not verified here (an offline bundle's verification does "
                                               "that)")]


def build_report_data(index: EventIndex, dataset_id: int, names: dict[str, str] | None = None,
                      verification: list[tuple[str, str]] | None = None, *, now: int | None = None,
                      source: str | None = None) -> ReportData:
    """Gather what the report shows from the index (UnknownDataset if there is no such dataset).
    `verification`: lines shown after the license-at-time-of-use check's own; `now`: when
    license statuses are judged (default: the index's now); `source`: where the index's events
    came from, when not from the node (a verified bundle)."""
    names = names or {}
    lineage = lineage_of(index, dataset_id)
    conn = index._conn  # noqa: SLF001 (read only, as fullchain.audit.trail does)
    as_of_block, last_time = conn.execute("SELECT coalesce(max(number), 0), coalesce(max(timestamp), 0) "
                                          "FROM blocks").fetchone()
    when = index.now() if now is None else now
    me = lineage.nodes[dataset_id]
    entry = index.dataset(dataset_id)
    versions = [VersionRow(version=v.version, registered_at=v.registered_at, size=v.size, commitment=v.commitment,
                           payload_cid=v.payload_cid, standard=v.standard, tier=v.tier, erased=v.erased)
                for v in index.versions(dataset_id)]
    events_total = dataset_trail(index, dataset_id, limit=0).total

    boxes, edges, omitted = _layout(lineage, names)
    licenses, licenses_total, statuses = _licenses(index, dataset_id, names, when)
    report = check_dataset(index, dataset_id, names)
    accesses, omitted_accesses = _accesses(report, names)
    return ReportData(
        dataset_id=dataset_id, title=entry.info.title if entry else None, owner=me.owner, owner_name=names.get(me.owner),
        created_at=me.created_at, chain=deployment_of(index).namespace, as_of_block=as_of_block,
        as_of=datetime.fromtimestamp(max(when, last_time), tz=timezone.utc), events_total=events_total,
        versions=versions, lineage=boxes, lineage_edges=edges, lineage_omitted=omitted, licenses=licenses,
        licenses_total=licenses_total, license_statuses=statuses, accesses=accesses,
        accesses_total=report.accesses, accesses_uncovered=len(report.uncovered), accesses_omitted=omitted_accesses,
        verification=[*check_lines(report, as_of_block, source), *(verification or [])])


def _layout(lineage: Lineage, names: dict[str, str]) -> tuple[list[LineageBox], list[tuple[int, int]], int]:
    """Layers by longest path from the sources (parents are registered before their children,
    so id order is a topological order); rows by the mean row of the parents (one sweep)."""
    me = lineage.dataset_id
    # The nearest MAX_LINEAGE datasets (breadth first, both directions) if there are more.
    neighbours: dict[int, set[int]] = {n: set() for n in lineage.nodes}
    for parent, child in lineage.edges:
        neighbours[parent].add(child)
        neighbours[child].add(parent)
    kept, frontier = {me}, [me]
    while frontier and len(kept) < MAX_LINEAGE:
        step = []
        for n in frontier:
            for m in sorted(neighbours[n]):
                if m not in kept and len(kept) < MAX_LINEAGE:
                    kept.add(m)
                    step.append(m)
        frontier = step
    edges = [(p, c) for p, c in lineage.edges if p in kept and c in kept]
    parents: dict[int, list[int]] = {n: [] for n in kept}
    for p, c in edges:
        parents[c].append(p)
    layer: dict[int, int] = {}
    for n in sorted(kept):
        layer[n] = 1 + max((layer[p] for p in parents[n]), default=-1)
    rows: dict[int, float] = {}
    by_layer: dict[int, list[int]] = {}
    for n in sorted(kept, key=lambda x: (layer[x], x)):
        by_layer.setdefault(layer[n], []).append(n)
    for depth in sorted(by_layer):
        def key(n: int) -> tuple[float, int]:
            ps = [rows[p] for p in parents[n] if p in rows]
            return (sum(ps) / len(ps) if ps else 0.0, n)
        for i, n in enumerate(sorted(by_layer[depth], key=key)):
            rows[n] = i
    boxes = [LineageBox(dataset_id=n, owner=lineage.nodes[n].owner, owner_name=names.get(lineage.nodes[n].owner),
                        relation=lineage.nodes[n].relation, layer=layer[n], row=int(rows[n])) for n in sorted(kept)]
    return boxes, edges, len(lineage.nodes) - len(kept)


def _licenses(index: EventIndex, dataset_id: int, names: dict[str, str], now: int
              ) -> tuple[list[LicenseBar], int, dict[str, int]]:
    total = index.count_licenses(dataset_id=dataset_id, now=now)
    statuses = Counter(lic.status for lic in index.licenses(dataset_id=dataset_id, now=now))
    shown = sorted(index.licenses(dataset_id=dataset_id, now=now, limit=MAX_LICENSES,
                                  offset=max(0, total - MAX_LICENSES)), key=lambda x: x.id)
    if not shown:
        return [], total, dict(sorted(statuses.items()))
    times: dict[int, dict[str, datetime]] = {lic.id: {} for lic in shown}
    marks = ",".join(str(int(lic.id)) for lic in shown)
    names_sql = ",".join(f"'{n}'" for n in _LICENSE_EVENTS)
    for e in trail_events(index, f"license_id IN ({marks}) AND name IN ({names_sql})", {}):
        t = times[e.license_id]  # type: ignore[index]
        match e.name:
            case "LicenseGranted":
                t["granted"] = e.timestamp
            case "LicenseRejected" | "LicenseRevoked" | "LicenseSuperseded":
                t["ended"] = e.timestamp
    bars = [LicenseBar(license_id=lic.id, licensee=lic.requester, licensee_name=names.get(lic.requester),
                       purpose=lic.purpose_label, status=lic.status, requested_at=lic.requested_at,
                       granted_at=times[lic.id].get("granted"), expires_at=lic.expires_at,
                       ended_at=times[lic.id].get("ended")) for lic in shown]
    return bars, total, dict(sorted(statuses.items()))


def _accesses(report: CheckReport, names: dict[str, str]) -> tuple[list[AccessRow], int]:
    uncovered = [v for v in report.verdicts if not v.covered][:MAX_ACCESS_ROWS]
    room = MAX_ACCESS_ROWS - len(uncovered)
    covered = [v for v in report.verdicts if v.covered]
    chosen = sorted([*uncovered, *(covered[-room:] if room > 0 else [])], key=lambda v: v.access.position)
    rows = [AccessRow(time=v.access.timestamp, block=v.access.block, tx_hash=v.access.tx_hash, licensee=v.licensee,
                      licensee_name=names.get(v.licensee), license_id=v.license_id, version=v.version,
                      kind=ACCESS_KINDS.get(v.access.args.get("kind", -1), f"kind {v.access.args.get('kind')}"),
                      covered=v.covered, violations=[(x.rule, _named(x.detail, names)) for x in v.violations])
            for v in chosen]
    return rows, report.accesses - len(rows)


def _named(text: str, names: dict[str, str]) -> str:
    return _ADDRESS.sub(lambda m: names.get(m.group(0), m.group(0)), text)


# ---- rendering ----

def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _t(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _who(address: str, name: str | None) -> str:
    """A member as people read it: the local name, the address in full beside it."""
    if name:
        return f'<span class="name">{_e(name)}</span> <span class="addr">{_e(address)}</span>'
    return f'<span class="addr">{_e(address)}</span>'


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;color:#1d2733;background:#fff}
main{max-width:1200px;margin:0 auto;padding:24px 32px 48px}
h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.2em;margin:32px 0 8px;padding-bottom:4px;border-bottom:2px solid #d6dde6}
.sub{color:#5a6878;margin:0 0 16px}.note{color:#5a6878;font-size:.9em;margin:6px 0}
table{border-collapse:collapse;width:100%;font-size:.88em}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e3e8ee;vertical-align:top}
th{background:#f3f6f9;font-weight:600}dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}
dl.facts dt{color:#5a6878}dl.facts dd{margin:0}.addr,.mono{font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:.86em;word-break:break-all}
.name{font-weight:600}.ok{color:#146c2e;font-weight:600}.bad{color:#b3261e;font-weight:700}
tr.uncovered td{background:#fdecea}.counts{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.count{border:1px solid #d6dde6;border-radius:6px;padding:8px 14px;min-width:110px}.count b{display:block;font-size:1.4em}
svg{display:block;max-width:100%;height:auto}svg text{font-family:inherit}.scroll{overflow-x:auto}
@media print{main{padding:0}h2{break-after:avoid}tr{break-inside:avoid}}
"""


def render_report(data: ReportData) -> str:
    """The report as one HTML document (text)."""
    title = f"Audit report: dataset {data.dataset_id}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="sub">As of block {data.as_of_block} ({_e(_t(data.as_of))} UTC) · deployment '
        f'<span class="mono">{_e(data.chain)}</span></p>',
        _summary(data), _lineage(data), _timeline(data), _access_table(data), _verification(data),
        "</main></body></html>",
    ]
    return "\n".join(parts) + "\n"


def _summary(d: ReportData) -> str:
    uncovered = (f'<span class="bad">{d.accesses_uncovered} NOT covered</span>' if d.accesses_uncovered
                 else '<span class="ok">all covered</span>')
    statuses = ", ".join(f"{n} {_e(s)}" for s, n in d.license_statuses.items()) or "none"
    check = d.verification[0][1] if d.verification else ""
    facts = [("Dataset", f"{d.dataset_id}" + (f" · {_e(d.title)}" if d.title else "")),
             ("Owner", _who(d.owner, d.owner_name)),
             ("Registered", f"{_e(_t(d.created_at))} UTC"),
             ("Versions", f"{len(d.versions)} ({sum(v.erased for v in d.versions)} erased)"),
             ("Licenses", f"{d.licenses_total} ({statuses})"),
             ("Recorded accesses", f"{d.accesses_total} ({uncovered})" if d.accesses_total else "0"),
             ("Events in the trail", str(d.events_total)),
             ("License at time of use", f'<span class="{_verdict_class(check)}">{_e(check)}</span>')]
    counts = [("versions", len(d.versions)), ("licenses", d.licenses_total), ("accesses", d.accesses_total),
              ("not covered", d.accesses_uncovered), ("lineage datasets", len(d.lineage) + d.lineage_omitted - 1)]
    rows = "".join(f"<tr><td>{v.version}</td><td>{_e(_t(v.registered_at))}</td><td>{v.size}</td>"
                   f'<td>{_e(v.tier)}</td><td>{_e(v.standard)}</td><td class="mono">{_e(v.commitment)}</td>'
                   f'<td class="mono">{_e(v.payload_cid)}</td><td>{"erased" if v.erased else ""}</td></tr>'
                   for v in d.versions)
    return ('<section id="summary"><h2>Summary</h2><div class="counts">'
            + "".join(f'<div class="count"><b>{n}</b>{_e(label)}</div>' for label, n in counts) + "</div>"
            + '<dl class="facts">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>"
            + '<h3>Versions</h3><table class="versions"><thead><tr><th>version</th><th>registered (UTC)</th>'
              "<th>bytes</th><th>tier</th><th>standard</th><th>commitment</th><th>payload CID</th><th></th></tr>"
              f"</thead><tbody>{rows}</tbody></table></section>")


_BOX_W, _BOX_H, _GAP_X, _GAP_Y, _PAD = 190, 56, 90, 20, 12
_FILL = {"self": "#1f5fae", "ancestor": "#e8f0fa", "descendant": "#eef7ee"}


def _lineage(d: ReportData) -> str:
    layers = max((b.layer for b in d.lineage), default=0) + 1
    rows = max((b.row for b in d.lineage), default=0) + 1
    width = _PAD * 2 + layers * _BOX_W + (layers - 1) * _GAP_X
    height = _PAD * 2 + rows * _BOX_H + (rows - 1) * _GAP_Y
    at = {b.dataset_id: (_PAD + b.layer * (_BOX_W + _GAP_X), _PAD + b.row * (_BOX_H + _GAP_Y)) for b in d.lineage}
    out = [f'<svg class="lineage" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="lineage of dataset {d.dataset_id}">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#5a6878"/></marker></defs>']
    # Each box's incoming arrows spread over its left side, in the order of their parents' rows.
    incoming: dict[int, list[int]] = {}
    for parent, child in sorted(d.lineage_edges, key=lambda e: (at[e[0]][1], e[0])):
        incoming.setdefault(child, []).append(parent)
    for parent, child in d.lineage_edges:
        (px, py), (cx, cy) = at[parent], at[child]
        slot, slots = incoming[child].index(parent) + 1, len(incoming[child]) + 1
        x1, y1, x2, y2 = px + _BOX_W, py + _BOX_H / 2, cx, round(cy + _BOX_H * slot / slots, 1)
        mid = (x1 + x2) / 2
        out.append(f'<path class="edge" data-from="{parent}" data-to="{child}" d="M{x1},{y1} C{mid},{y1} {mid},{y2} '
                   f'{x2 - 2},{y2}" fill="none" stroke="#5a6878" stroke-width="1.5" marker-end="url(#arrow)"/>')
    for b in d.lineage:
        x, y = at[b.dataset_id]
        own = b.relation == "self"
        ink = "#fff" if own else "#1d2733"
        who = b.owner_name or (b.owner[:10] + "…" + b.owner[-4:])
        out.append(f'<g class="node" data-dataset="{b.dataset_id}" data-relation="{_e(b.relation)}">'
                   f"<title>dataset {b.dataset_id} ({_e(b.relation)}), owner {_e(b.owner)}</title>"
                   f'<rect x="{x}" y="{y}" width="{_BOX_W}" height="{_BOX_H}" rx="6" fill="{_FILL[b.relation]}" '
                   f'stroke="#1f5fae" stroke-width="{2 if own else 1}"/>'
                   f'<text x="{x + 10}" y="{y + 22}" fill="{ink}" font-size="14" font-weight="600">dataset '
                   f"{b.dataset_id}</text>"
                   f'<text x="{x + 10}" y="{y + 42}" fill="{ink}" font-size="12">{_e(b.relation)} · {_e(who)}</text>'
                   "</g>")
    out.append("</svg>")
    note = (f'<p class="note">{d.lineage_omitted} more datasets of the lineage are not drawn (the '
            f"{len(d.lineage)} nearest are).</p>" if d.lineage_omitted else "")
    alone = '<p class="note">No ancestors and no descendants.</p>' if len(d.lineage) == 1 else ""
    return (f'<section id="lineage"><h2>Lineage</h2><p class="note">Arrows go from a dataset to one derived from it '
            f"(as declared at registration).</p>{alone}<div class=\"scroll\">{''.join(out)}</div>{note}</section>")


_STATUS_FILL = {"granted": "#2e7d32", "expired": "#9aa5b1", "revoked": "#c62828", "superseded": "#ef6c00",
                "rejected": "#c62828", "requested": "#9aa5b1"}


def _ticks(t0: float, t1: float, count: int = 6) -> list[float]:
    return [t0 + (t1 - t0) * i / (count - 1) for i in range(count)]


def _timeline(d: ReportData) -> str:
    if not d.licenses:
        return ('<section id="licenses"><h2>License timeline</h2><p class="note">No license was requested for this '
                "dataset.</p></section>")
    label_w, plot_w, row_h, top = 300, 820, 26, 34
    points = [d.as_of.timestamp()]
    for lic in d.licenses:
        points += [x.timestamp() for x in (lic.requested_at, lic.granted_at, lic.expires_at, lic.ended_at) if x]
    t0, t1 = min(points), max(points)
    t1 = t1 if t1 > t0 else t0 + 1
    width, height = label_w + plot_w + 20, top + len(d.licenses) * row_h + 12

    def x(moment: datetime) -> float:
        return round(label_w + (moment.timestamp() - t0) / (t1 - t0) * plot_w, 1)

    fmt = "%Y-%m-%d" if t1 - t0 > 3 * 86400 else "%m-%d %H:%M"
    out = [f'<svg class="timeline" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="license timeline of dataset {d.dataset_id}">']
    ticks = _ticks(t0, t1)
    for i, tick in enumerate(ticks):
        tx = round(label_w + (tick - t0) / (t1 - t0) * plot_w, 1)
        when = datetime.fromtimestamp(tick, tz=timezone.utc).strftime(fmt)
        anchor = "start" if i == 0 else "end" if i == len(ticks) - 1 else "middle"  # the ends stay inside
        out.append(f'<line x1="{tx}" y1="{top - 8}" x2="{tx}" y2="{height - 6}" stroke="#e3e8ee"/>'
                   f'<text x="{tx}" y="{top - 14}" font-size="11" fill="#5a6878" text-anchor="{anchor}">{_e(when)}</text>')
    now_x = x(d.as_of)
    out.append(f'<line class="now" x1="{now_x}" y1="{top - 8}" x2="{now_x}" y2="{height - 6}" stroke="#1f5fae" '
               f'stroke-dasharray="4 3"/><text x="{now_x - 4}" y="{height - 8}" font-size="11" fill="#1f5fae" '
               'text-anchor="end">as of</text>')
    for i, lic in enumerate(d.licenses):
        y = top + i * row_h
        mid = y + row_h / 2
        who = lic.licensee_name or lic.licensee[:10] + "…"
        colour = _STATUS_FILL.get(lic.status, "#9aa5b1")
        detail = (f"license {lic.license_id} to {lic.licensee_name or lic.licensee}: {lic.purpose}; {lic.status}; "
                  f"requested {_t(lic.requested_at)}, granted {_t(lic.granted_at) or '-'}, "
                  f"expires {_t(lic.expires_at) or '-'}, ended {_t(lic.ended_at) or '-'}")
        bar = [f'<g class="license" data-license="{lic.license_id}" data-status="{_e(lic.status)}">'
               f"<title>{_e(detail)}</title>",
               f'<text x="6" y="{mid + 4}" font-size="12" fill="#1d2733">license {lic.license_id} · {_e(who)} · '
               f"{_e(lic.purpose)} · {_e(lic.status)}</text>"]
        start = lic.granted_at or lic.ended_at or d.as_of
        bar.append(f'<line x1="{x(lic.requested_at)}" y1="{mid}" x2="{x(start)}" y2="{mid}" stroke="#9aa5b1" '
                   'stroke-width="2"/>')
        bar.append(f'<circle cx="{x(lic.requested_at)}" cy="{mid}" r="3.5" fill="#fff" stroke="#5a6878"/>')
        if lic.granted_at is not None and lic.expires_at is not None:
            end = min(lic.expires_at, lic.ended_at) if lic.ended_at else lic.expires_at
            bar.append(f'<rect class="granted" x="{x(lic.granted_at)}" y="{mid - 6}" '
                       f'width="{max(2.0, round(x(end) - x(lic.granted_at), 1))}" height="12" rx="2" fill="{colour}"/>')
            if lic.ended_at and lic.ended_at < lic.expires_at:  # the term it would have had
                bar.append(f'<rect x="{x(lic.ended_at)}" y="{mid - 6}" width="{round(x(lic.expires_at) - x(lic.ended_at), 1)}" '
                           f'height="12" rx="2" fill="none" stroke="{colour}" stroke-dasharray="3 2"/>')
        if lic.ended_at is not None:
            ex = x(lic.ended_at)
            bar.append(f'<path d="M{ex - 5},{mid - 5} L{ex + 5},{mid + 5} M{ex - 5},{mid + 5} L{ex + 5},{mid - 5}" '
                       f'stroke="{colour}" stroke-width="2.5"/>')
        bar.append("</g>")
        out.append("".join(bar))
    out.append("</svg>")
    legend = ('<p class="note">○ requested · bar: granted until expiry (green: valid, grey: expired, red: revoked, '
              "orange: superseded; dashed: the term cut short) · ✕ revoked, rejected or superseded · dashed blue line: "
              "the time of this report.</p>")
    more = (f'<p class="note">The {len(d.licenses)} most recent of {d.licenses_total} licenses are shown.</p>'
            if d.licenses_total > len(d.licenses) else "")
    rows = "".join(f"<tr><td>{lic.license_id}</td><td>{_who(lic.licensee, lic.licensee_name)}</td><td>{_e(lic.purpose)}</td>"
                   f"<td>{_e(lic.status)}</td><td>{_e(_t(lic.requested_at))}</td><td>{_e(_t(lic.granted_at))}</td>"
                   f"<td>{_e(_t(lic.expires_at))}</td><td>{_e(_t(lic.ended_at))}</td></tr>" for lic in d.licenses)
    table = ('<table class="licenses"><thead><tr><th>license</th><th>licensee</th><th>purpose</th><th>status</th>'
             "<th>requested (UTC)</th><th>granted</th><th>expires</th><th>ended</th></tr></thead>"
             f"<tbody>{rows}</tbody></table>")
    return (f'<section id="licenses"><h2>License timeline</h2><div class="scroll">{"".join(out)}</div>{legend}{more}'
            f"{table}</section>")


def _access_table(d: ReportData) -> str:
    if not d.accesses:
        return '<section id="accesses"><h2>Accesses</h2><p class="note">No access was recorded.</p></section>'
    rows = []
    for a in d.accesses:
        verdict = ('<span class="ok">covered</span>' if a.covered else '<span class="bad">NOT COVERED</span>: '
                   + "; ".join(f"{_e(rule)} ({_e(detail)})" for rule, detail in a.violations))
        rows.append(f'<tr class="{"covered" if a.covered else "uncovered"}"><td>{_e(_t(a.time))}</td>'
                    f'<td>{a.block}</td><td>{_who(a.licensee, a.licensee_name)}</td><td>{a.license_id}</td>'
                    f'<td>{a.version}</td><td>{_e(a.kind)}</td><td>{verdict}</td>'
                    f'<td class="mono">{_e(a.tx_hash)}</td></tr>')
    note = (f'<p class="note">{d.accesses_omitted} earlier covered accesses are not listed (every access NOT covered '
            f"is, up to {MAX_ACCESS_ROWS}); `fullchain audit check {d.dataset_id} --all --json` lists them all.</p>"
            if d.accesses_omitted else "")
    return ('<section id="accesses"><h2>Accesses</h2><p class="note">Each recorded access, judged against its '
            "license's state at that block.</p>"
            '<table class="accesses"><thead><tr><th>time (UTC)</th><th>block</th><th>licensee</th><th>license</th>'
            "<th>version</th><th>kind</th><th>license at time of use</th><th>transaction</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>{note}</section>")


def _verdict_class(result: str) -> str:
    head = result.strip().lower()
    if head.startswith(("passed", "ok", "verified")):
        return "ok"
    if head.startswith(("failed", "not ", "refused")):
        return "bad"
    return ""


def _verification(d: ReportData) -> str:
    rows = "".join(f'<tr><td>{_e(check)}</td><td class="{_verdict_class(result)}">{_e(result)}</td></tr>'
                   for check, result in d.verification)
    return ('<section id="verification"><h2>Verification</h2><table class="verification"><thead><tr><th>check</th>'
            f"<th>result</th></tr></thead><tbody>{rows}</tbody></table></section>")
