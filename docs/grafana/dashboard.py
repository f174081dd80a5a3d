#!/usr/bin/python3
"""dashboard.py — writes docs/grafana/marquee.json, the Grafana dashboard over
Marquee's Prometheus metrics (calls, sales, the outbox, consumers, payment
breakers). The JSON is what gets imported; this script is how it is kept
regular. Usage: python3 docs/grafana/dashboard.py > docs/grafana/marquee.json
(tests/interop/metrics.sh checks the file is current and that every metric
it queries is served)."""
import json

DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
_ids = [0]


def sel(extra=""):
    inner = 'job=~"$job", instance=~"$instance"' + ((", " + extra) if extra else "")
    return "{" + inner + "}"


def panel(title, exprs, x, y, w=12, h=8, unit="short", desc="", mappings=None, kind="timeseries"):
    _ids[0] += 1
    p = {"id": _ids[0], "type": kind, "title": title, "description": desc, "datasource": DS,
         "gridPos": {"x": x, "y": y, "w": w, "h": h},
         "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
         "options": {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max"]},
                     "tooltip": {"mode": "multi", "sort": "desc"}},
         "targets": [{"datasource": DS, "refId": chr(65 + i), "expr": e, "legendFormat": l}
                     for i, (e, l) in enumerate(exprs)]}
    if mappings:
        p["fieldConfig"]["defaults"]["mappings"] = mappings
    if kind == "state-timeline":
        p["options"] = {"showValue": "auto", "mergeValues": True, "rowHeight": 0.8}
    return p


def row(title, y):
    _ids[0] += 1
    return {"id": _ids[0], "type": "row", "title": title, "collapsed": False,
            "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []}


def rate(metric, by="", extra=""):
    s = f"rate({metric}{sel(extra)}[$__rate_interval])"
    return f"sum by ({by}) ({s})" if by else f"sum({s})"


NOT_OK = 'code!="OK"'
panels = [
    row("Calls", 0),
    panel("Requests per second by method", [(rate("marquee_rpc_requests_total", "method"), "{{method}}")], 0, 1,
          unit="reqps"),
    panel("Errors per second by method and code",
          [(rate("marquee_rpc_requests_total", "method, code", NOT_OK), "{{method}} {{code}}")], 12, 1, unit="reqps",
          desc="Every status but OK; INVALID_ARGUMENT and NOT_FOUND are usually the clients'."),
    panel("Latency p99 by method",
          [(f"histogram_quantile(0.99, {rate('marquee_rpc_duration_seconds_bucket', 'method, le')})", "{{method}}")],
          0, 9, unit="s"),
    panel("Latency p50 by method",
          [(f"histogram_quantile(0.5, {rate('marquee_rpc_duration_seconds_bucket', 'method, le')})", "{{method}}")],
          12, 9, unit="s"),
    panel("Calls in flight and worker queue",
          [(f"sum by (instance) (marquee_rpc_in_flight{sel()})", "in flight {{instance}}"),
           (f"sum by (instance) (marquee_worker_queue_depth{sel()})", "queued {{instance}}"),
           (f"sum by (instance) (marquee_worker_busy{sel()})", "workers busy {{instance}}")], 0, 17),
    row("Sales", 25),
    panel("Holds and bookings per second",
          [(rate("marquee_holds_created_total"), "holds created"),
           (rate("marquee_bookings_confirmed_total"), "bookings confirmed"),
           (rate("marquee_holds_expired_total"), "holds expired")], 0, 26, unit="ops"),
    panel("Payment gateway breakers", [(f"max by (gateway) (marquee_payment_gateway_breaker_state{sel()})",
                                        "{{gateway}}")], 12, 26, unit="none", kind="state-timeline",
          desc="0 closed (calls go through), 1 open (the next gateway is used), 2 half-open (one probe call).",
          mappings=[{"type": "value", "options": {"0": {"text": "closed", "color": "green"},
                                                  "1": {"text": "open", "color": "red"},
                                                  "2": {"text": "half-open", "color": "orange"}}}]),
    panel("Page views per second", [(rate("marquee_page_views_sent_total"), "sent"),
                                     (rate("marquee_page_views_dropped_total"), "dropped")], 0, 34, unit="ops"),
    panel("Payment webhooks and fallbacks",
          [(rate("marquee_payment_webhooks_total"), "webhooks"),
           (rate("marquee_payment_webhooks_rejected_total"), "webhooks rejected"),
           (rate("marquee_payment_fallbacks_total"), "fallbacks to the next gateway")], 12, 34, unit="ops"),
    row("Events on the bus", 42),
    panel("Outbox backlog", [(f"max by (instance) (marquee_outbox_lag_seconds{sel()})",
                              "oldest unpublished event, {{instance}}")], 0, 43, unit="s",
          desc="How long the oldest event a server wrote has waited for Kafka (0 when nothing waits)."),
    panel("Outbox: published and journaled per second",
          [(rate("marquee_outbox_published_total"), "published"),
           (rate("marquee_outbox_journaled_total"), "journaled (Kafka slow or down)"),
           (rate("marquee_outbox_recovered_total"), "recovered by the sweeper")], 12, 43, unit="ops"),
    panel("Consumer lag", [(f"sum by (consumer, topic) (marquee_consumer_lag{sel()})", "{{consumer}} {{topic}}")],
          0, 51, desc="Messages on the assigned partitions not yet handled, per consumer and topic."),
    panel("Consumer outcomes per second",
          [(rate("marquee_consumer_events_total", "consumer, outcome"), "{{consumer}} {{outcome}}"),
           (rate("marquee_consumer_retries_total", "consumer"), "{{consumer}} retries")], 12, 51, unit="ops"),
    panel("Search staleness and analytics batches",
          [(f"max by (instance) (marquee_search_index_staleness_seconds{sel()})", "search staleness {{instance}}"),
           (rate("marquee_analytics_flushes_total"), "analytics flushes per second"),
           (rate("marquee_analytics_duplicates_total"), "analytics duplicates skipped per second")], 0, 59),
    panel("Dependencies up", [(f"min by (dependency) (marquee_dependency_up{sel()})", "{{dependency}}")], 12, 59,
          unit="none", kind="state-timeline",
          mappings=[{"type": "value", "options": {"0": {"text": "down", "color": "red"},
                                                  "1": {"text": "up", "color": "green"}}}]),
]


def variable(name, query):
    return {"name": name, "label": name, "type": "query", "datasource": DS, "definition": query,
            "query": {"query": query, "refId": name}, "includeAll": True, "multi": True, "allValue": ".*",
            "current": {"text": "All", "value": "$__all"}, "refresh": 2}


dashboard = {
    "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource", "pluginId": "prometheus",
                  "pluginName": "Prometheus",
                  "description": "The Prometheus that scrapes marquee-server and the consumers"}],
    "__requires": [{"type": "grafana", "id": "grafana", "name": "Grafana", "version": "9.0.0"},
                   {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
                   {"type": "panel", "id": "timeseries", "name": "Time series", "version": ""},
                   {"type": "panel", "id": "state-timeline", "name": "State timeline", "version": ""}],
    "title": "Marquee", "uid": "marquee-overview",
    "description": "Marquee's servers and consumers: calls, sales, the outbox, consumer lag, payment breakers.",
    "tags": ["marquee"], "timezone": "browser", "schemaVersion": 37, "version": 1, "editable": True,
    "refresh": "30s", "time": {"from": "now-1h", "to": "now"},
    "templating": {"list": [variable("job", "label_values(marquee_build_info, job)"),
                            variable("instance", 'label_values(marquee_build_info{job=~"$job"}, instance)')]},
    "annotations": {"list": []},
    "panels": panels,
}
print(json.dumps(dashboard, indent=2))
