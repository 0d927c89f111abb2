"""The building blocks of the Grafana dashboard (tools/grafana_dashboard.py): the
datasource reference, the label selectors every query shares, and the panel makers —
a query, thresholds, value maps, a time series, a big number, a table, a row, and the
PromQL of a quantile over the exported histograms. No panel of the dashboard itself.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

Part = dash.Row | timeseries.Panel | stat.Panel | table.Panel  # a row, then its panels

DS = model.DataSourceRef(type_val="prometheus", uid="${DS_PROMETHEUS}")

# Label filters from the template variables (multi-value: Grafana writes a regex).
TM = 'task_type=~"$task_type", ai_model=~"$ai_model"'
CUR = 'currency=~"$currency"'
TMC = f"{TM}, {CUR}"
RATE = "[$__rate_interval]"
RANGE = "[$__range]"
TYPE_MODEL_LEGEND = "{{task_type}} · {{ai_model}}"


def q(expr: str, legend: str = "", ref: str = "A", *, as_table: bool = False) -> prometheus.Dataquery:
    """A query; tables read instant values (at the range's end), one row per label set."""
    query = prometheus.Dataquery().expr(expr).ref_id(ref).datasource(DS)
    if legend:
        query = query.legend_format(legend)
    if as_table:
        query = query.format(PromQueryFormat.TABLE)
    return query.instant() if as_table else query.range()


def thresholds(*steps: tuple[float | None, str]) -> dash.ThresholdsConfig:
    return (
        dash.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=value, color=color) for value, color in steps])
    )


def value_map(mapping: dict[str, tuple[str, str]]) -> list[model.ValueMapping]:
    return [
        model.ValueMap(
            options={
                key: model.ValueMappingResult(text=text, color=color, index=i)
                for i, (key, (text, color)) in enumerate(mapping.items())
            }
        )
    ]


def series(
    title: str,
    description: str,
    targets: list[prometheus.Dataquery],
    *,
    unit: str = "short",
    span: int = 12,
    height: int = 8,
    stack: bool = False,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DS)
        .targets(list(targets))
        .unit(unit)
        .span(span)
        .height(height)
        .fill_opacity(10 if not stack else 60)
        .legend(
            common_b.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.RIGHT)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
    )
    if stack:
        panel = panel.stacking(common_b.StackingConfig().mode(common.StackingMode.NORMAL))
    return panel


def big(
    title: str,
    description: str,
    targets: list[prometheus.Dataquery],
    *,
    unit: str = "short",
    span: int = 4,
    height: int = 4,
    steps: tuple[tuple[float | None, str], ...] = ((None, "green"),),
    mappings: dict[str, tuple[str, str]] | None = None,
    decimals: float | None = None,
) -> stat.Panel:
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DS)
        .targets([target.instant() for target in targets])  # the value now (at the range's end)
        .unit(unit)
        .span(span)
        .height(height)
        .thresholds(thresholds(*steps))
        .graph_mode(common.BigValueGraphMode.NONE)
        .color_mode(common.BigValueColorMode.VALUE)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    if mappings:
        panel = panel.mappings(value_map(mappings))
    if decimals is not None:
        panel = panel.decimals(decimals)
    return panel


def grid(
    title: str,
    description: str,
    targets: list[prometheus.Dataquery],
    columns: dict[str, str],
    *,
    units: dict[str, str] | None = None,
    mappings: dict[str, dict[str, tuple[str, str]]] | None = None,
    sort_by: str = "",
    span: int = 24,
    height: int = 8,
) -> table.Panel:
    """A table of instant queries in table format, one row per label set: the queries'
    values merged side by side, the columns renamed (`Value #A` → `n`) and ordered as
    `columns` lists them; the time and the scrape's own labels (instance, job) hidden."""
    order = {name: i for i, name in enumerate(columns)}
    exclude = {"Time": True, "__name__": True, "instance": True, "job": True}
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(DS)
        .targets(list(targets))
        .span(span)
        .height(height)
        .show_header(True)
        .with_transformation(model.DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            model.DataTransformerConfig(
                id_val="organize",
                options={"excludeByName": exclude, "indexByName": order, "renameByName": columns},
            )
        )
    )
    for name, unit in (units or {}).items():
        panel = panel.override_by_name(columns.get(name, name), [model.DynamicConfigValue(id_val="unit", value=unit)])
    for name, mapping in (mappings or {}).items():
        panel = panel.override_by_name(
            columns.get(name, name),
            [
                model.DynamicConfigValue(id_val="mappings", value=value_map(mapping)),
                model.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-text"}),
            ],
        )
    if sort_by:
        panel = panel.sort_by([common_b.TableSortByFieldState().display_name(sort_by).desc(True)])
    return panel


def row(title: str) -> dash.Row:
    return dash.Row(title)


def quantile(phi: float, metric: str, window: str, by: str = "task_type, ai_model") -> str:
    return f"histogram_quantile({phi}, sum by ({by}, le) (rate({metric}_bucket{{{TM}}}{window})))"


def quantile_over_range(phi: float, metric: str) -> str:
    return f"histogram_quantile({phi}, sum by (task_type, ai_model, le) (increase({metric}_bucket{{{TM}}}{RANGE})))"
