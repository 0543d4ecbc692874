"""The self-contained HTML report: verdict, figures, and an SVG timeline of every step and outage.

One file with no external assets, so it can be attached to a ticket or archived for an auditor.
Jinja2 autoescaping keeps step names and errors from ever becoming markup.
"""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import Environment

from drorch.drill.report import route_of
from drorch.state.journal import Journal, RunRecord

WIDTH, ROW, LEFT = 900, 22, 330

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>drorch {{ run.operation }} {{ run.run_id }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 10px;text-align:left}.ok{color:#1a7f37}.bad{color:#c62828;font-weight:bold}
svg text{font-size:12px;font-family:system-ui,sans-serif}
</style></head><body>
<h1>{{ run.operation }} {{ run.run_id }}: <span class="{{ 'ok' if run.status == 'succeeded' else 'bad' }}">{{
run.status }}</span></h1>
<p>{{ route }}</p>
{% if objectives %}<table><tr><th>objective</th><th>target</th><th>measured</th><th>met</th></tr>
{% for name, v in objectives.items() %}<tr><td>{{ name | upper }}</td><td>{{ v.objective_seconds }} s</td>
<td>{{ v.measured_seconds }} s</td><td class="{{ 'ok' if v.met else 'bad' }}">{{ 'yes' if v.met else 'NO' }}</td></tr>
{% endfor %}</table>{% endif %}
{% if measured %}<table>{% for k, v in measured.items() %}<tr><td>{{ k }}</td><td>{{ v }}</td></tr>{% endfor %}
</table>{% endif %}
<h2>Timeline ({{ "%.2f" | format(span) }} s)</h2>
<svg xmlns="http://www.w3.org/2000/svg" width="{{ width }}" height="{{ height }}" role="img">
{% for o in outages %}<rect x="{{ o.x }}" y="0" width="{{ o.w }}" height="{{ height }}" fill="#fdecea"/>{% endfor %}
{% for bar in bars %}<text x="4" y="{{ bar.y + 14 }}">{{ bar.label }}</text>
<rect x="{{ bar.x }}" y="{{ bar.y + 3 }}" width="{{ bar.w }}" height="{{ row - 6 }}" fill="{{ bar.colour }}">
<title>{{ bar.label }}: {{ bar.status }}, {{ "%.3f" | format(bar.seconds) }} s</title></rect>{% endfor %}
</svg>
<p>Shaded red: windows in which the client's writes failed (ground truth). Bars: each step, by when it ran.</p>
{% if error %}<p class="bad">Error: {{ error }}</p>{% endif %}
</body></html>
"""


@dataclass(frozen=True)
class _Bar:
    label: str
    status: str
    seconds: float
    x: float
    y: float
    w: float
    colour: str


def render(record: RunRecord, journal: Journal) -> str:
    """The report of ``record``; a drill's failover and failback runs are drawn step by step inside it."""
    summary = record.summary
    runs = [record] + [sub for key in ("failover_run", "failback_run")
                       if summary.get(key) and (sub := journal.run(str(summary[key]))) is not None]
    steps = [(run, step) for run in runs for step in run.steps]
    start = min([record.started_at] + [s.started_at for _, s in steps])
    end = max([record.finished_at or record.started_at]
              + [s.started_at + (s.duration_seconds or 0) for _, s in steps])
    span = max(end - start, 1e-3)

    def x(at: float) -> float:
        return LEFT + (WIDTH - LEFT - 10) * (at - start) / span

    colours = {"succeeded": "#2e7d32", "skipped": "#bdbdbd", "failed": "#c62828", "running": "#f9a825"}
    bars = [_Bar(("  " if run is not record else "") + step.name, step.status, step.duration_seconds or 0.0,
                 x(step.started_at), index * ROW, max(2.0, x(step.started_at + (step.duration_seconds or 0))
                                                     - x(step.started_at)), colours.get(step.status, "#607d8b"))
            for index, (run, step) in enumerate(sorted(steps, key=lambda item: item[1].started_at))]
    outages = [{"x": x(o["start"]), "w": max(2.0, x(o["end"] or end) - x(o["start"]))}
               for o in summary.get("outages", [])]
    route = route_of(summary, "→")
    environment = Environment(autoescape=True)
    return environment.from_string(_TEMPLATE).render(
        run=record, route=route, objectives=summary.get("objectives", {}), measured=summary.get("measured", {}),
        bars=bars, outages=outages, span=span, width=WIDTH, height=max(ROW, len(bars) * ROW), row=ROW,
        error=summary.get("error"))
