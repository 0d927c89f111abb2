"""The Grafana dashboard shipped in docs/grafana/ (issue 20): the committed JSON is the
generator's output (tools/grafana_dashboard.py, grafana-foundation-sdk), so it cannot
drift from it; every PromQL expression in it — panel targets and the template
variables' label_values() queries — names only metrics fsar-tui exports
(fsar_tui/domain/metric_names.py: histograms as `_bucket` / `_sum` / `_count`, counters
with their `_total`), with labels those metrics have; every exported metric is on the
dashboard; its rows carry the screens' names; the provisioning files point at it.
Pure: no services (promtool, when installed, parses the expressions; no server).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from fsar_tui.domain.metric_names import LABELS, METRICS

ROOT = Path(__file__).resolve().parent.parent
GRAFANA = ROOT / "docs" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "fsar-tui.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yaml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "fsar-tui.yaml"
GENERATOR = ROOT / "tools" / "grafana_dashboard.py"

# ---------------------------------------------------------------- the exported names


def exported() -> dict[str, frozenset[str]]:
    """Every sample name the exporter writes -> the labels it carries."""
    names: dict[str, frozenset[str]] = {}
    for m in METRICS:
        if m.kind == "histogram":
            names[f"{m.name}_bucket"] = frozenset((*m.labels, "le"))
            names[f"{m.name}_sum"] = frozenset(m.labels)
            names[f"{m.name}_count"] = frozenset(m.labels)
        else:
            names[m.name] = frozenset(m.labels)
    return names


# ---------------------------------------------------------------- a PromQL tokenizer

FUNCTIONS = frozenset(
    """abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes clamp
    clamp_max clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year days_in_month
    deg delta deriv exp floor histogram_count histogram_fraction histogram_quantile histogram_stddev
    histogram_stdvar histogram_sum holt_winters hour idelta increase irate label_join label_replace
    last_over_time ln log10 log2 mad_over_time max_over_time min_over_time minute month
    predict_linear present_over_time quantile_over_time rad rate resets round scalar sgn sin sinh
    sort sort_desc sqrt stddev_over_time stdvar_over_time sum_over_time tan tanh time timestamp
    vector year""".split()
)
AGGREGATIONS = frozenset(
    "sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk limit_ratio".split()
)
KEYWORDS = frozenset("by without on ignoring group_left group_right bool offset and or unless atan2 inf nan".split())
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
NAME = r"[A-Za-z_:][A-Za-z0-9_:]*"
IDENT = re.compile(rf"(?<![\w.:$]){NAME}")
SELECTOR = re.compile(rf"(?<![\w.:$])({NAME})?\s*\{{([^{{}}]*)\}}")
MATCHER = re.compile(rf'\s*({NAME})\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*")\s*,?')
GRAFANA_VAR = re.compile(r"\$\{[^}]*\}|\$\w+")


class PromQLError(ValueError):
    pass


def _matchers(body: str) -> list[tuple[str, str, str]]:
    found, pos = [], 0
    while pos < len(body.rstrip()):
        m = MATCHER.match(body, pos)
        if m is None:
            raise PromQLError(f"cannot read the label matchers {{{body}}}")
        found.append((m[1], m[2], m[3][1:-1]))
        pos = m.end()
    return found


def metric_references(expr: str) -> tuple[list[tuple[str, frozenset[str]]], set[str]]:
    """The metric names an expression reads, each with the labels its selector matches
    on, and the labels it groups or joins on. A name is any identifier left once strings,
    label matchers, ranges, Grafana variables and grouping label lists are taken out that
    is not a function, an aggregation or a keyword; `__name__` matchers must be plain
    alternations of names (`a|b`) and count as references to each. Raises PromQLError on
    what it cannot read — an unknown function, a `__name__` regex it cannot list."""
    refs: list[tuple[str, frozenset[str]]] = []
    grouping: set[str] = set()
    for sel in SELECTOR.finditer(expr):
        matchers = _matchers(sel[2])
        labels = frozenset(label for label, _, _ in matchers if label != "__name__")
        names = [sel[1]] if sel[1] else []
        for label, op, value in matchers:
            if label != "__name__":
                continue
            if op not in ("=", "=~"):
                raise PromQLError(f"a negative __name__ matcher cannot be checked: {sel[0]}")
            if not all(re.fullmatch(NAME, alt) for alt in value.split("|")):
                raise PromQLError(f"__name__ {op} {value!r} is not an alternation of names")
            names.extend(value.split("|"))
        if not names:
            raise PromQLError(f"a selector without a metric name: {sel[0]}")
        refs.extend((name, labels) for name in names)
    rest = STRING.sub('""', expr)
    rest = re.sub(r"\{[^{}]*\}", "{}", GRAFANA_VAR.sub("", rest))
    rest = re.sub(r"\[[^\[\]]*\]", "[]", rest)
    for m in GROUPING.finditer(rest):
        grouping.update(label.strip() for label in m[2].split(",") if label.strip())
    rest = GROUPING.sub(r"\1", rest)
    selected = {name for name, _ in refs}
    for m in IDENT.finditer(rest):
        word = m[0]
        called = rest[m.end() :].lstrip().startswith("(")
        if word in KEYWORDS or word in AGGREGATIONS or (called and word in FUNCTIONS):
            continue  # `sum by (…) (…)` leaves `sum by (…)`: an aggregation need not be called
        if called:
            raise PromQLError(f"unknown function {word}() in {expr}")
        if rest[m.end() :].lstrip().startswith("{") and word in selected:
            continue  # read with its matchers above
        refs.append((word, frozenset()))
    return refs, grouping


# ---------------------------------------------------------------- the dashboard's queries


def dashboard() -> dict[str, Any]:
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(board, dict)
    return board


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


LABEL_VALUES = re.compile(r"^\s*label_values\((?:(.*),\s*)?(\w+)\s*\)\s*$", re.S)


def expressions(board: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(where, PromQL expression, legend) for every target and label_values() variable."""
    for panel in panels(board):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r} {target['refId']}", target["expr"], target.get("legendFormat", "")
    for var in board["templating"]["list"]:
        if var["type"] != "query":
            continue
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        m = LABEL_VALUES.match(query)
        assert m is not None, f"variable {var['name']}: not a label_values() query: {query}"
        assert m[2] in LABELS, f"variable {var['name']}: label_values of {m[2]}, not an exported label"
        assert m[1], f"variable {var['name']}: label_values() over every series, not fsar-tui's"
        yield f"variable {var['name']}", m[1], ""


# ---------------------------------------------------------------- the tests


def _generator() -> ModuleType:
    try:
        import grafana_foundation_sdk  # noqa: F401
    except ImportError:
        pytest.fail("grafana-foundation-sdk is not installed: pip install -e '.[dev]' (it builds the dashboard)")
    spec = importlib.util.spec_from_file_location("grafana_dashboard", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_dashboard_is_the_generators_output() -> None:
    generated = _generator().render()
    assert DASHBOARD.read_text(encoding="utf-8") == generated, (
        "docs/grafana/dashboards/fsar-tui.json differs from tools/grafana_dashboard.py's output: "
        "run python tools/grafana_dashboard.py"
    )


def test_every_expression_names_only_exported_metrics_and_their_labels() -> None:
    names = exported()
    problems = []
    seen = 0
    for where, expr, legend in expressions(dashboard()):
        refs, grouping = metric_references(expr)
        assert refs, f"{where}: no metric in {expr}"
        seen += 1
        for name, labels in refs:
            if name not in names:
                problems.append(f"{where}: {name} is not exported (fsar_tui/domain/metric_names.py): {expr}")
            elif not labels <= names[name]:
                problems.append(f"{where}: {name} has no label {sorted(labels - names[name])}: {expr}")
        if not grouping <= {*LABELS, "le"}:
            problems.append(f"{where}: groups on {sorted(grouping - {*LABELS, 'le'})}: {expr}")
        legend_labels = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))
        if not legend_labels <= {*LABELS, "instance", "job"}:
            problems.append(f"{where}: legend names {sorted(legend_labels - {*LABELS, 'instance', 'job'})}")
    assert not problems, "\n".join(problems)
    assert seen >= 40


def test_every_exported_metric_is_on_the_dashboard() -> None:
    used = {name for _, expr, _ in expressions(dashboard()) for name, _ in metric_references(expr)[0]}
    missing = [
        m.name
        for m in METRICS
        if not used & ({f"{m.name}_bucket", f"{m.name}_sum", f"{m.name}_count"} if m.kind == "histogram" else {m.name})
    ]
    assert not missing, f"exported but on no panel: {missing}"


@pytest.mark.parametrize(
    ("expr", "names", "grouping"),
    [
        ("sum(fsar_tasks_queued)", ["fsar_tasks_queued"], set()),
        (
            (
                'histogram_quantile(0.9, sum by (task_type, le) (rate(fsar_task_run_seconds_bucket{ai_model=~"$m"}'
                "[$__rate_interval])))"
            ),
            ["fsar_task_run_seconds_bucket"],
            {"task_type", "le"},
        ),
        (
            "sum(rate(fsar_cost_total[5m])) by (currency) / on (currency) group_left fsar_revenue_total offset 1h",
            ["fsar_cost_total", "fsar_revenue_total"],
            {"currency"},
        ),
        (
            '{__name__=~"fsar_tasks_queued|fsar_tasks_running", task_type="x"}',
            ["fsar_tasks_queued", "fsar_tasks_running"],
            set(),
        ),
        (
            "count(fsar_gate_failing == 1 and fsar_gate_hard > bool 0) or vector(0) * 1e3",
            ["fsar_gate_failing", "fsar_gate_hard"],
            set(),
        ),
    ],
)
def test_the_tokenizer_finds_every_metric_and_nothing_else(expr: str, names: list[str], grouping: set[str]) -> None:
    refs, found_grouping = metric_references(expr)
    assert sorted(name for name, _ in refs) == sorted(names)
    assert found_grouping == grouping


def test_the_tokenizer_catches_what_the_dashboard_must_not_hold() -> None:
    exported_names = exported()
    refs, _ = metric_references("sum(rate(fsar_task_run_second_bucket[5m]))")  # misspelt
    assert [name for name, _ in refs if name not in exported_names] == ["fsar_task_run_second_bucket"]
    refs, _ = metric_references('sum(fsar_revenue_total{task_type="x"})')  # revenue has no task_type
    assert refs == [("fsar_revenue_total", frozenset({"task_type"}))]
    assert not refs[0][1] <= exported_names["fsar_revenue_total"]
    with pytest.raises(PromQLError, match="unknown function"):
        metric_references("rates(fsar_cost_total[5m])")
    with pytest.raises(PromQLError, match="alternation"):
        metric_references('{__name__=~"fsar_.*"}')


def test_rows_carry_the_screens_names_and_the_description_maps_them() -> None:
    source = (ROOT / "screens" / "command_mode.py").read_text(encoding="utf-8")
    screens = next(
        ast.literal_eval(node.value)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "SCREENS" for t in node.targets)
    )
    board = dashboard()
    rows = [p["title"] for p in panels(board) if p["type"] == "row"]
    assert rows == [title for _, title in screens.values()] + ["Exporter"]
    for key, title in screens.values():
        mirrors = rf"[Rr]ow {re.escape(title)} mirrors screen {key} \({re.escape(title)}:"
        assert re.search(mirrors, board["description"]), f"the description does not map row {title} to screen {key}"
    assert "tools/grafana_dashboard.py" in str(board["description"])
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert {"task_type", "ai_model", "currency", "DS_PROMETHEUS"} <= set(variables)


def test_panels_read_the_provisioned_datasource() -> None:
    board = dashboard()
    ds_var = next(v for v in board["templating"]["list"] if v["name"] == "DS_PROMETHEUS")
    assert ds_var["type"] == "datasource" and ds_var["query"] == "prometheus"
    ref = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    for panel in panels(board):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == ref, panel["title"]
        assert all(t["datasource"] == ref for t in panel["targets"]), panel["title"]
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids))

    datasources = DATASOURCES.read_text(encoding="utf-8")
    assert re.search(r"^\s*type:\s*prometheus\s*$", datasources, re.M)
    assert re.search(rf"^\s*uid:\s*{re.escape(ds_var['current']['value'])}\s*$", datasources, re.M)
    providers = PROVIDERS.read_text(encoding="utf-8")
    assert re.search(r"^\s*type:\s*file\s*$", providers, re.M)
    assert re.search(r"^\s*path:\s*/var/lib/grafana/dashboards/fsar-tui\s*$", providers, re.M)


PROMTOOL_VARS = {"$__rate_interval": "5m", "$__range": "1d", "$__interval": "1m"}


def _promtool() -> str:
    """promtool from Debian's prometheus package: `.ci/run` installs it; missing, the test
    fails saying so (it never skips silently)."""
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is missing: `apt-get install prometheus` (.ci/run installs it)"
    return promtool


def test_promtool_parses_every_expression(tmp_path: Path) -> None:
    promtool = _promtool()
    rules = []
    for i, (_, expr, _) in enumerate(expressions(dashboard())):
        for var, value in PROMTOOL_VARS.items():
            expr = expr.replace(var, value)
        rules.append({"record": f"fsar_dashboard_expr_{i}", "expr": GRAFANA_VAR.sub(".*", expr)})
    path = tmp_path / "rules.yaml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8")
    proc = subprocess.run(
        [promtool, "check", "rules", "--lint=none", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(rules)} rules found" in proc.stdout


def _expr(board: dict[str, Any], kind: str, title: str, ref: str = "A") -> str:
    panel = next(p for p in panels(board) if p["type"] == kind and p["title"] == title)
    expr: str = next(t["expr"] for t in panel["targets"] if t["refId"] == ref)
    for var, value in {"$__rate_interval": "5m", "$__range": "10m"}.items():
        expr = expr.replace(var, value)
    return GRAFANA_VAR.sub(".*", expr)


def test_the_dashboards_formulas_on_known_series(tmp_path: Path) -> None:
    """promtool's rule unit tests (no server) evaluate the dashboard's own expressions over
    series whose answers are known: ROI = (revenue − cost) / cost, the failing gates
    with hard/soft, cost per success joined across the cost and finished counters, p90
    from the run-time buckets."""
    promtool = _promtool()
    board = dashboard()
    tm = 'task_type="implement_idea",ai_model="gpt-4o-mini"'
    series = {
        'fsar_revenue_total{currency="USD"}': "0+35x20",
        'fsar_revenue_deductions_total{currency="USD"}': "0+5x20",  # net: 30 a minute
        f'fsar_cost_total{{{tm},currency="USD"}}': "0+10x20",
        f'fsar_tasks_finished_total{{{tm},status="succeeded"}}': "0+5x20",
        f'fsar_tasks_finished_total{{{tm},status="failed"}}': "0+1x20",
        f'fsar_task_run_seconds_bucket{{{tm},le="1"}}': "0+0x20",
        f'fsar_task_run_seconds_bucket{{{tm},le="10"}}': "0+9x20",
        f'fsar_task_run_seconds_bucket{{{tm},le="+Inf"}}': "0+10x20",
        'fsar_gate_failing{gate="failure_rate"}': "1x20",
        'fsar_gate_hard{gate="failure_rate"}': "1x20",
        'fsar_gate_failing{gate="anomaly_count"}': "1x20",
        'fsar_gate_hard{gate="anomaly_count"}': "0x20",
        'fsar_gate_failing{gate="broken_rollback_artifacts"}': "0x20",
        'fsar_gate_hard{gate="broken_rollback_artifacts"}': "1x20",
        'fsar_rollback_ready{target="prompt/implement_idea"}': "0x20",
    }
    group = '{ai_model="gpt-4o-mini",currency="USD",task_type="implement_idea"}'
    cases = [
        (_expr(board, "stat", "ROI"), [('{currency="USD"}', 2)]),
        (_expr(board, "stat", "Profit"), [('{currency="USD"}', 200)]),
        (_expr(board, "table", "Failing gates"), [('{gate="failure_rate"}', 1), ('{gate="anomaly_count"}', 0)]),
        (_expr(board, "stat", "Failing gates", "A"), [("{}", 1)]),
        (_expr(board, "stat", "Failing gates", "B"), [("{}", 1)]),
        (_expr(board, "stat", "Rollback not ready"), [("{}", 1)]),
        (_expr(board, "table", "Cost and waste by type × model over the dashboard range", "D"), [(group, 2)]),
        (
            _expr(board, "table", "Profiles over the dashboard range", "D"),
            [('{ai_model="gpt-4o-mini",task_type="implement_idea"}', 10)],
        ),
    ]
    rules = tmp_path / "rules.yaml"
    rules.write_text(json.dumps({"groups": []}), encoding="utf-8")
    spec = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series.items()],
                "promql_expr_test": [
                    {
                        "expr": expr,
                        "eval_time": "15m",
                        "exp_samples": [{"labels": labels, "value": value} for labels, value in expected],
                    }
                    for expr, expected in cases
                ],
            }
        ],
    }
    path = tmp_path / "test.yaml"
    path.write_text(json.dumps(spec), encoding="utf-8")
    proc = subprocess.run(
        [promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
