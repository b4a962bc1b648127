"""The dev server's status page: ``GET /`` (HTML) and ``GET /status.json`` (its data).

The page is rendered on the server, so it reads without JavaScript (a ``<noscript>`` meta
refresh reloads it then); a few lines of inline script fetch ``/status.json`` every second
and re-render the tables with ``textContent``, so details never become markup. Server side,
every value goes through :func:`html.escape`. No external assets: the style and the script
are inline, and a Content-Security-Policy allows exactly those two (by hash) and requests to
this server, nothing else.

Both routes only read the engine; neither touches the SWF API path (``POST /``) nor its
fault injection.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import time
from collections.abc import Callable, Iterable
from typing import Any, Final

from aiohttp import web

from ._engine import Engine
from ._status import status_view

__all__ = ["status_routes"]

Json = dict[str, Any]
Cell = tuple[str, str | None, str | None, float | None]  # text, second line, class, bar

_DASH: Final = "\u2014"

_STYLE: Final = """
:root{color-scheme:light dark;--fg:#1d232b;--mute:#6a7380;--line:#e3e6ea;--bg:#fff;
--head:#f5f6f8;--ok:#1a7f37;--warn:#b35c00;--alert:#c62828}
@media (prefers-color-scheme:dark){:root{--fg:#e6e8eb;--mute:#9aa3ad;--line:#2c323a;
--bg:#15181c;--head:#1d2127;--ok:#4ac26b;--warn:#f0a040;--alert:#ff6b6b}}
*{box-sizing:border-box}
body{margin:0;padding:16px 24px;font:13px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;
color:var(--fg);background:var(--bg)}
header{display:flex;align-items:baseline;gap:16px;flex-wrap:wrap;margin-bottom:8px}
h1{font-size:17px;margin:0}
h2{font-size:14px;margin:20px 0 6px}
h2 small,#summary{color:var(--mute);font-weight:normal}
#live::before{content:"\\25CF ";color:var(--ok)}
body[data-state=offline] #live::before{color:var(--alert)}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;vertical-align:top;padding:5px 10px 5px 4px;
border-bottom:1px solid var(--line)}
th{font-size:11px;text-transform:uppercase;letter-spacing:.04em;color:var(--mute);
background:var(--head)}
.sub{color:var(--mute);font-size:11px}
.strong .v{font-weight:600}
.num{font-variant-numeric:tabular-nums}
.left .v{font-variant-numeric:tabular-nums;white-space:nowrap}
.warn .v{color:var(--warn);font-weight:600}
.details .v{font:12px/1.35 ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;
word-break:break-all;max-width:42em;max-height:6.8em;overflow:auto}
.badge .v,.ok .v,.alert .v{display:inline-block;padding:0 6px;border-radius:8px;
border:1px solid currentColor;font-size:11px}
.ok .v{color:var(--ok)}
.alert .v{color:var(--alert)}
.mute .v,.empty{color:var(--mute)}
progress{display:block;width:12em;height:.7em;margin-top:2px}
"""

_SCRIPT: Final = """
"use strict";
const DASH = "\\u2014";
function secs(s) {
  if (s === null || s === undefined) return DASH;
  if (s < 60) return s.toFixed(1) + " s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + " min " + String(Math.floor(s % 60)).padStart(2, "0") + " s";
  return Math.floor(m / 60) + " h " + String(m % 60).padStart(2, "0") + " min";
}
function clock(at) {
  const d = new Date(at * 1000), p = (n) => String(n).padStart(2, "0");
  return p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
}
function age(at, now) { return at === null ? "never" : secs(Math.max(0, now - at)) + " ago"; }
function left(value, timeout, started) {
  if (value === null) {
    return [DASH, timeout === null ? "NONE" : started ? "" : "not started", "left"];
  }
  const warn = timeout !== null && value < timeout / 4;
  return [secs(value), "of " + secs(timeout), warn ? "left warn" : "left"];
}
function type(t) { return t.name + " v" + t.version; }
const ROWS = {
  domains: (d, now) => [
    [d.name, null, "strong"],
    d.deprecated ? ["deprecated", null, "alert"] : ["registered", null, "ok"],
    [String(d.open_executions), null, "num"],
    [String(d.activity_types), null, "num"],
    [String(d.workflow_types), null, "num"],
    [d.description === null ? DASH : d.description, null, "mute"],
  ],
  executions: (x, now) => [
    [x.workflow_id, x.run_id, "strong"],
    [type(x.workflow_type), x.domain + " \\u00b7 " + x.task_list, null],
    [age(x.started_at, now), clock(x.started_at), null],
    [String(x.open_activity_tasks), null, "num"],
    x.cancel_requested ? ["requested", null, "alert"] : [DASH, null, "mute"],
    [secs(x.time_left), x.time_left === null ? "NONE" : null, "left"],
  ],
  tasks: (t, now) => {
    const started = t.state === "started";
    const p = t.progress;
    return [
      [t.activity_id, type(t.activity_type), "strong"],
      [t.workflow_id, t.domain + " \\u00b7 " + t.task_list, null],
      [t.state, started ? "#" + t.token_hash : t.time_left.schedule_to_start === null ? "queued"
        : "starts within " + secs(t.time_left.schedule_to_start), started ? "ok" : "badge"],
      t.identity === null ? [DASH, null, "mute"] : [t.identity, null, null],
      t.cancel_requested ? ["requested", null, "alert"] : [DASH, null, "mute"],
      [age(t.last_heartbeat_at, now), t.heartbeats + " heartbeat" + (t.heartbeats === 1 ? "" : "s")
        + (t.last_heartbeat_at === null ? "" : " \\u00b7 " + clock(t.last_heartbeat_at)), null],
      [t.details === null ? DASH : t.details,
        p ? p.done + " / " + p.total : t.details_truncated ? "truncated" : null,
        t.details === null ? "details mute" : "details", p ? p.done / p.total : null],
      left(t.time_left.heartbeat, t.timeouts.heartbeat, started),
      left(t.time_left.start_to_close, t.timeouts.start_to_close, started),
      left(t.time_left.schedule_to_close, t.timeouts.schedule_to_close, true),
    ];
  },
  polls: (p, now) => [
    [p.task_list, p.domain + " \\u00b7 " + p.kind, "strong"],
    p.identity === null ? [DASH, null, "mute"] : [p.identity, null, null],
    [secs(p.age), "since " + clock(p.since), "num"],
  ],
  closed: (x, now) => [
    [x.workflow_id, x.run_id, "strong"],
    [type(x.workflow_type), x.domain, null],
    [x.ending, null, x.close_status === "COMPLETED" ? "ok" : "alert"],
    [age(x.closed_at, now), "ran " + secs(x.closed_at - x.started_at), null],
  ],
};
function fill(id, items, now, shown, total) {
  const body = document.querySelector("#" + id + " tbody");
  const rows = items.map((item) => {
    const tr = document.createElement("tr");
    for (const [text, sub, cls, bar] of ROWS[id](item, now)) {
      const td = tr.insertCell(), v = document.createElement("div");
      if (cls) td.className = cls;
      v.className = "v"; v.textContent = text; td.append(v);
      if (bar !== undefined && bar !== null) {
        const b = document.createElement("progress");
        b.max = 1; b.value = bar; td.append(b);
      }
      if (sub) {
        const s = document.createElement("div");
        s.className = "sub"; s.textContent = sub; td.append(s);
      }
    }
    return tr;
  });
  if (!rows.length) {
    const tr = document.createElement("tr"), td = tr.insertCell();
    td.className = "empty"; td.colSpan = body.closest("table").rows[0].cells.length;
    td.textContent = body.dataset.empty; rows.push(tr);
  }
  body.replaceChildren(...rows);
  const count = document.getElementById(id + "-count");
  count.textContent = shown < total ? "(" + shown + " of " + total + ")" : "(" + total + ")";
}
async function refresh() {
  try {
    const r = await fetch("status.json", {cache: "no-store"});
    if (!r.ok) throw new Error(r.status);
    const s = await r.json();
    fill("domains", s.domains, s.taken_at, s.domains.length, s.domains.length);
    fill("executions", s.executions, s.taken_at, s.executions.length, s.open_executions);
    fill("tasks", s.activity_tasks, s.taken_at, s.activity_tasks.length, s.open_activity_tasks);
    fill("polls", s.polls, s.taken_at, s.polls.length, s.polls.length);
    fill("closed", s.closed_executions, s.taken_at, s.closed_executions.length,
      s.closed_executions.length);
    document.getElementById("live").textContent = "updated " + clock(s.taken_at);
    document.body.dataset.state = "live";
  } catch (e) {
    document.getElementById("live").textContent = "server unreachable, retrying";
    document.body.dataset.state = "offline";
  }
  setTimeout(refresh, 1000);
}
setTimeout(refresh, 1000);
"""


def _sha256(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


_HEADERS: Final = {
    "Content-Security-Policy": (
        f"default-src 'none'; script-src {_sha256(_SCRIPT)}; style-src {_sha256(_STYLE)}; "
        "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

# Python twins of the script's formatting, for the first render.


def _secs(value: float | None) -> str:
    if value is None:
        return _DASH
    if value < 60:
        return f"{value:.1f} s"
    minutes = int(value // 60)
    if minutes < 60:
        return f"{minutes} min {int(value % 60):02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))


def _age(at: float | None, now: float) -> str:
    return "never" if at is None else f"{_secs(max(0.0, now - at))} ago"


def _left(value: float | None, timeout: float | None, started: bool) -> Cell:
    if value is None:
        return _DASH, "NONE" if timeout is None else "" if started else "not started", "left", None
    warn = timeout is not None and value < timeout / 4
    return _secs(value), f"of {_secs(timeout)}", "left warn" if warn else "left", None


def _type(type_ref: Json) -> str:
    return f"{type_ref['name']} v{type_ref['version']}"


def _cancel(requested: bool) -> Cell:
    return ("requested", None, "alert", None) if requested else (_DASH, None, "mute", None)


def _maybe(text: str | None) -> Cell:
    return (_DASH, None, "mute", None) if text is None else (text, None, None, None)


def _domain_cells(d: Json, now: float) -> list[Cell]:
    return [
        (d["name"], None, "strong", None),
        ("deprecated", None, "alert", None)
        if d["deprecated"]
        else ("registered", None, "ok", None),
        (str(d["open_executions"]), None, "num", None),
        (str(d["activity_types"]), None, "num", None),
        (str(d["workflow_types"]), None, "num", None),
        (_DASH if d["description"] is None else d["description"], None, "mute", None),
    ]


def _execution_cells(x: Json, now: float) -> list[Cell]:
    return [
        (x["workflow_id"], x["run_id"], "strong", None),
        (_type(x["workflow_type"]), f"{x['domain']} \u00b7 {x['task_list']}", None, None),
        (_age(x["started_at"], now), _clock(x["started_at"]), None, None),
        (str(x["open_activity_tasks"]), None, "num", None),
        _cancel(x["cancel_requested"]),
        (_secs(x["time_left"]), "NONE" if x["time_left"] is None else None, "left", None),
    ]


def _task_cells(t: Json, now: float) -> list[Cell]:
    started = t["state"] == "started"
    left, timeouts = t["time_left"], t["timeouts"]
    if started:
        state_line = f"#{t['token_hash']}"
    elif left["schedule_to_start"] is None:
        state_line = "queued"
    else:
        state_line = f"starts within {_secs(left['schedule_to_start'])}"
    beats = t["heartbeats"]
    last = t["last_heartbeat_at"]
    beats_line = f"{beats} heartbeat{'' if beats == 1 else 's'}"
    if last is not None:
        beats_line += f" \u00b7 {_clock(last)}"
    details = t["details"]
    progress = t["progress"]
    if progress is not None:
        details_line: str | None = f"{progress['done']} / {progress['total']}"
        bar: float | None = progress["done"] / progress["total"]
    else:
        details_line = "truncated" if t["details_truncated"] else None
        bar = None
    return [
        (t["activity_id"], _type(t["activity_type"]), "strong", None),
        (t["workflow_id"], f"{t['domain']} \u00b7 {t['task_list']}", None, None),
        (t["state"], state_line, "ok" if started else "badge", None),
        _maybe(t["identity"]),
        _cancel(t["cancel_requested"]),
        (_age(last, now), beats_line, None, None),
        (
            _DASH if details is None else details,
            details_line,
            "details mute" if details is None else "details",
            bar,
        ),
        _left(left["heartbeat"], timeouts["heartbeat"], started),
        _left(left["start_to_close"], timeouts["start_to_close"], started),
        _left(left["schedule_to_close"], timeouts["schedule_to_close"], True),
    ]


def _poll_cells(p: Json, now: float) -> list[Cell]:
    return [
        (p["task_list"], f"{p['domain']} \u00b7 {p['kind']}", "strong", None),
        _maybe(p["identity"]),
        (_secs(p["age"]), f"since {_clock(p['since'])}", "num", None),
    ]


def _closed_cells(x: Json, now: float) -> list[Cell]:
    return [
        (x["workflow_id"], x["run_id"], "strong", None),
        (_type(x["workflow_type"]), x["domain"], None, None),
        (x["ending"], None, "ok" if x["close_status"] == "COMPLETED" else "alert", None),
        (_age(x["closed_at"], now), f"ran {_secs(x['closed_at'] - x['started_at'])}", None, None),
    ]


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _table(
    table_id: str,
    *,
    title: str,
    headings: Iterable[str],
    items: list[Json],
    cells: Callable[[Json, float], list[Cell]],
    now: float,
    total: int,
    empty: str,
) -> str:
    heads = list(headings)
    rows: list[str] = []
    for item in items:
        tds = []
        for text, sub, cls, bar in cells(item, now):
            attribute = f' class="{_e(cls)}"' if cls else ""
            second = f'<div class="sub">{_e(sub)}</div>' if sub else ""
            meter = "" if bar is None else f'<progress max="1" value="{bar:.4f}"></progress>'
            tds.append(f'<td{attribute}><div class="v">{_e(text)}</div>{second}{meter}</td>')
        rows.append(f"<tr>{''.join(tds)}</tr>")
    if not rows:
        rows.append(f'<tr><td class="empty" colspan="{len(heads)}">{_e(empty)}</td></tr>')
    count = f"({len(items)} of {total})" if len(items) < total else f"({total})"
    return (
        f'<section><h2>{_e(title)} <small id="{table_id}-count">{count}</small></h2>'
        f'<table id="{table_id}"><thead><tr>'
        + "".join(f"<th>{_e(head)}</th>" for head in heads)
        + f'</tr></thead><tbody data-empty="{_e(empty)}">'
        + "".join(rows)
        + "</tbody></table></section>"
    )


def render_page(view: Json) -> str:
    """The whole page for a :func:`~._status.status_view`, every value escaped."""
    now = view["taken_at"]
    tables = [
        _table(
            "domains",
            title="Domains",
            headings=[
                "Name",
                "Status",
                "Open executions",
                "Activity types",
                "Workflow types",
                "About",
            ],
            items=view["domains"],
            cells=_domain_cells,
            now=now,
            total=len(view["domains"]),
            empty="No domains registered.",
        ),
        _table(
            "executions",
            title="Open workflow executions",
            headings=["Workflow / run", "Type", "Started", "Open tasks", "Cancel", "Time left"],
            items=view["executions"],
            cells=_execution_cells,
            now=now,
            total=view["open_executions"],
            empty="No open workflow executions.",
        ),
        _table(
            "tasks",
            title="Activity tasks",
            headings=[
                "Activity",
                "Workflow",
                "State",
                "Worker",
                "Cancel",
                "Last heartbeat",
                "Details",
                "Heartbeat",
                "Start-to-close",
                "Schedule-to-close",
            ],
            items=view["activity_tasks"],
            cells=_task_cells,
            now=now,
            total=view["open_activity_tasks"],
            empty="No open activity tasks.",
        ),
        _table(
            "polls",
            title="Open polls",
            headings=["Task list", "Worker", "Waiting"],
            items=view["polls"],
            cells=_poll_cells,
            now=now,
            total=len(view["polls"]),
            empty="No poll is waiting: no worker or decider is polling.",
        ),
        _table(
            "closed",
            title="Recently closed executions",
            headings=["Workflow / run", "Type", "Ended", "Closed"],
            items=view["closed_executions"],
            cells=_closed_cells,
            now=now,
            total=len(view["closed_executions"]),
            empty="No execution has closed yet.",
        ),
    ]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        "<title>heartbeat-worker dev server</title>"
        '<link rel="icon" href="data:,">'
        '<noscript><meta http-equiv="refresh" content="5"></noscript>'
        f"<style>{_STYLE}</style></head>"
        '<body data-state="live"><header><h1>heartbeat-worker dev server</h1>'
        '<span id="summary">read-only \u00b7 as JSON: <a href="status.json">status.json</a>'
        f'</span><span id="live">updated {_e(_clock(now))}</span></header>'
        + "".join(tables)
        + f"<script>{_SCRIPT}</script></body></html>"
    )


def status_routes(engine: Engine) -> list[web.RouteDef]:
    """``GET /`` and ``GET /status.json`` for the server of ``engine``."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(
            text=render_page(status_view(engine)),
            content_type="text/html",
            headers=_HEADERS,
        )

    async def data(request: web.Request) -> web.Response:
        body = json.dumps(status_view(engine), ensure_ascii=False, separators=(",", ":"))
        return web.Response(text=body, content_type="application/json", headers=_HEADERS)

    return [web.get("/", page), web.get("/status.json", data)]
