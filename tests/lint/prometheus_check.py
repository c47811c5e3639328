#!/usr/bin/env python3
"""Checks of deploy/prometheus/ and deploy/grafana/postd.json, for
tests/lint/prometheus.sh and tests/integration/prometheus_test.sh.

  prometheus_check.py coverage ALERTS_YML TESTS_YML
      every alert of ALERTS_YML has a promtool test case in TESTS_YML where
      it fires (exp_alerts not empty) and one where it does not (empty).
  prometheus_check.py grafana-rules GRAFANA_JSON PROMETHEUS_YML OUT_YML
      the dashboard's shape (data source variable, panels, targets, the
      series it must show), and every query (variables substituted) written
      to OUT_YML as a recording rule, for `promtool check rules` to parse.
  prometheus_check.py names METRICS_TXT PROMETHEUS_YML ALERTS_YML GRAFANA_JSON
      every metric name, label name (selectors, by/without/on/ignoring,
      legends, $labels in annotations) and fixed label value in the rules
      and the dashboard's queries against METRICS_TXT, a scrape of postd's
      /metrics (a family with only a `# TYPE` line counts, without labels).
  prometheus_check.py grafana-queries GRAFANA_JSON PROMETHEUS_YML
      the dashboard's queries, variables substituted, one JSON object a line
      ({"panel": title, "refId": ..., "expr": ...}).
  prometheus_check.py test-config PROMETHEUS_YML OUT_YML TARGET RULES_YML
      PROMETHEUS_YML for a test: scrape and evaluation every second, the
      postd job's targets replaced by TARGET, rule_files by RULES_YML, no
      alerting section.

Exit status 0 when the check holds, 1 (with a message per finding on
stderr) when it does not, 2 on bad usage.
"""
import json
import re
import sys

import yaml

# ------------------------------------------------------------------ helpers

errors = []


def error(msg):
    errors.append(msg)


def finish(ok_msg):
    if errors:
        for e in errors:
            print(f"prometheus_check: {e}", file=sys.stderr)
        sys.exit(1)
    print(ok_msg)


def load_yaml(path):
    try:
        with open(path) as f:
            return yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        print(f"prometheus_check: {path}: {e}", file=sys.stderr)
        sys.exit(1)


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print(f"prometheus_check: {path}: {e}", file=sys.stderr)
        sys.exit(1)


def alert_rules(alerts):
    """(group, rule) for each alerting rule of a rules file."""
    out = []
    for g in (alerts or {}).get("groups") or []:
        for r in g.get("rules") or []:
            if "alert" in r:
                out.append((g.get("name"), r))
    return out


def postd_job(prom):
    """The postd scrape job of prometheus.yml."""
    jobs = [j for j in prom.get("scrape_configs") or [] if j.get("job_name") == "postd"]
    if len(jobs) != 1:
        print("prometheus_check: prometheus.yml must have exactly one scrape job named postd "
              "(the rules and the dashboard select job=\"postd\")", file=sys.stderr)
        sys.exit(1)
    return jobs[0]


# ------------------------------------------------------------------ PromQL

AGGREGATORS = {"sum", "avg", "count", "min", "max", "stddev", "stdvar", "topk",
               "bottomk", "quantile", "count_values", "group"}
FUNCTIONS = {
    "abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max",
    "clamp_min", "day_of_month", "day_of_week", "day_of_year", "days_in_month",
    "delta", "deriv", "exp", "floor", "histogram_quantile", "holt_winters", "hour",
    "idelta", "increase", "irate", "ln", "log2", "log10", "minute", "month",
    "predict_linear", "rate", "resets", "round", "scalar", "sgn", "sort",
    "sort_desc", "sqrt", "time", "timestamp", "vector", "year", "avg_over_time",
    "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
    "quantile_over_time", "stddev_over_time", "stdvar_over_time",
    "last_over_time", "present_over_time", "acos", "acosh", "asin", "asinh",
    "atan", "atanh", "cos", "cosh", "sin", "sinh", "tan", "tanh", "deg", "rad",
    "pi",
}
# Functions whose string arguments name labels: this check cannot follow them.
UNSUPPORTED = {"label_replace", "label_join", "count_values"}
LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"and", "or", "unless", "atan2", "bool", "offset", "inf", "nan",
            "start", "end"}
# Labels every scraped series gets from Prometheus.
TARGET_LABELS = {"job", "instance"}
# Series Prometheus itself writes for each target.
SCRAPE_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
                 "scrape_samples_post_metric_relabeling", "scrape_series_added"}
# Labels whose values the scrape shows in full (state, dependency, actor and
# fault are fixed at postd's start; route: the lint's traffic requests
# /v1/post/create and the health routes): a value selected with = must be
# one of them.
FIXED_VALUE_LABELS = {"state", "dependency", "actor", "fault", "route"}

TOKEN = re.compile(r"""
    (?P<ws>\s+|\#[^\n]*)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<dur>[0-9]+(?:ms|[smhdwy])(?:[0-9]+(?:ms|[smhdwy]))*)
  | (?P<num>0[xX][0-9a-fA-F]+|[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^=<>,(){}\[\]@:])
""", re.X)


def tokenize(expr):
    pos, out = 0, []
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m:
            raise ValueError(f"cannot read {expr[pos:pos + 20]!r}")
        pos = m.end()
        if m.lastgroup != "ws":
            out.append((m.lastgroup, m.group()))
    return out


def unquote(s):
    """The value of a PromQL string literal."""
    quote, body = s[0], s[1:-1]
    if quote == "`":
        return body
    if quote == "'":
        body = body.replace("\\'", "'").replace('"', '\\"')
    try:
        return json.loads('"' + body + '"')
    except ValueError:
        return body


def parse_promql(expr):
    """The names an expression uses: {"metrics": [name], "matchers":
    [(metric or None, label, op, value)], "grouping": [(by|without|on|...,
    label)]}."""
    toks = tokenize(expr)
    metrics, matchers, grouping = [], [], []
    i, n = 0, len(toks)
    while i < n:
        kind, text = toks[i]
        nxt = toks[i + 1] if i + 1 < n else (None, None)
        if text == "[":  # range or subquery: durations only
            depth = 0
            while i < n:
                if toks[i][1] == "[":
                    depth += 1
                elif toks[i][1] == "]":
                    depth -= 1
                    if depth == 0:
                        break
                i += 1
            i += 1
            continue
        if text == "{":  # a selector without a metric name before it
            i = read_matchers(toks, i, None, matchers, metrics)
            continue
        if kind != "ident":
            i += 1
            continue
        low = text.lower()
        if text in LABEL_LISTS:
            i += 1
            if i < n and toks[i][1] == "(":
                i += 1
                while i < n and toks[i][1] != ")":
                    if toks[i][0] == "ident":
                        grouping.append((text, toks[i][1]))
                    elif toks[i][1] != ",":
                        raise ValueError(f"unexpected {toks[i][1]!r} in {text}(...)")
                    i += 1
                i += 1
            continue
        if text in UNSUPPORTED:
            raise ValueError(f"{text}() names labels in strings, which this check does not follow")
        if text in AGGREGATORS or low in KEYWORDS or (nxt[1] == "(" and text in FUNCTIONS):
            i += 1
            continue
        if nxt[1] == "(":
            raise ValueError(f"unknown function {text}()")
        # a metric name
        metrics.append(text)
        i += 1
        if i < n and toks[i][1] == "{":
            i = read_matchers(toks, i, text, matchers, metrics)
    return {"metrics": metrics, "matchers": matchers, "grouping": grouping}


def read_matchers(toks, i, metric, matchers, metrics):
    """Read {label op "value", ...} from toks[i] == "{"; return the index after it."""
    i += 1
    found = []
    while i < len(toks) and toks[i][1] != "}":
        if toks[i][1] == ",":
            i += 1
            continue
        if i + 2 >= len(toks) or toks[i][0] != "ident" or toks[i + 2][0] != "str":
            raise ValueError("a label matcher is not label op \"value\"")
        found.append((toks[i][1], toks[i + 1][1], unquote(toks[i + 2][1])))
        i += 3
    for label, op, value in found:
        if label == "__name__" and op == "=":
            metric = value
            metrics.append(value)
    for label, op, value in found:
        if label != "__name__":
            matchers.append((metric, label, op, value))
    return i + 1


# ------------------------------------------------------------------ postd's series

def read_exposition(path):
    """{sample name: {"labels": {label: {values}}, "family": name, "type": t,
    "sampled": bool}} from a Prometheus text scrape."""
    series = {}
    types = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("# TYPE "):
                _, _, name, typ = line.split(" ", 3)
                types[name] = typ
                continue
            if not line or line.startswith("#"):
                continue
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+\S+", line)
            if not m:
                error(f"{path}: cannot read the sample line {line!r}")
                continue
            s = series.setdefault(m.group(1), {"labels": {}, "sampled": True})
            for label, value in re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"',
                                           m.group(2) or ""):
                s["labels"].setdefault(label, set()).add(value)
    for name, typ in types.items():
        names = [name]
        if typ == "histogram":
            names = [name + "_bucket", name + "_sum", name + "_count"]
        elif typ == "summary":
            names = [name, name + "_sum", name + "_count"]
        for sample in names:
            series.setdefault(sample, {"labels": {}, "sampled": False})
            series[sample]["family"] = name
            series[sample]["type"] = typ
    return series


def check_expression(where, expr, series, job_names, legends=()):
    try:
        used = parse_promql(expr)
    except ValueError as e:
        error(f"{where}: {e}: {expr}")
        return
    if not used["metrics"]:
        error(f"{where}: names no metric: {expr}")
        return
    labels_here = set(TARGET_LABELS)
    for metric in used["metrics"]:
        if metric in SCRAPE_SERIES:
            continue
        if metric not in series:
            error(f"{where}: metric {metric} is not exported by postd (not on its /metrics)")
            continue
        labels_here |= set(series[metric]["labels"])
        if series[metric].get("type") == "histogram" and metric.endswith("_bucket"):
            labels_here.add("le")
    for metric, label, op, value in used["matchers"]:
        if label in TARGET_LABELS:
            if label == "job" and op == "=" and value not in job_names:
                error(f"{where}: job=\"{value}\" is no job of prometheus.yml ({', '.join(sorted(job_names))})")
            continue
        if metric is None:
            continue
        if metric in SCRAPE_SERIES:
            error(f"{where}: {metric} carries no label {label} (only {', '.join(sorted(TARGET_LABELS))})")
            continue
        if metric not in series:
            continue  # reported above
        s = series[metric]
        known = set(s["labels"])
        if s.get("type") == "histogram" and metric.endswith("_bucket"):
            known.add("le")
        if label not in known:
            if not s["sampled"]:
                error(f"{where}: postd exported no sample of {metric} to check label {label} against")
            else:
                error(f"{where}: metric {metric} has no label {label} (it has: "
                      f"{', '.join(sorted(known | TARGET_LABELS))})")
            continue
        if op == "=" and label in FIXED_VALUE_LABELS and value not in s["labels"].get(label, ()):
            error(f"{where}: {metric}{{{label}=\"{value}\"}} matches nothing: postd exports "
                  f"{label} = {', '.join(sorted(s['labels'][label]))}")
    for kw, label in used["grouping"]:
        if label not in labels_here:
            error(f"{where}: label {label} in {kw}(...) is on none of the metrics "
                  f"{', '.join(sorted(set(used['metrics'])))}")
    # A label shown (legend, $labels.X) must survive the aggregations: kept
    # by every by(...) there is, dropped by no without(...).
    kept = [{l for kw, l in used["grouping"] if kw == "by"}] if any(
        kw == "by" for kw, _ in used["grouping"]) else []
    dropped = {l for kw, l in used["grouping"] if kw == "without"}
    for label in legends:
        if label not in labels_here:
            error(f"{where}: label {label} (shown) is on none of the metrics "
                  f"{', '.join(sorted(set(used['metrics'])))}")
        elif label in dropped or (kept and label not in kept[0]):
            error(f"{where}: label {label} (shown) is aggregated away")


# ------------------------------------------------------------------ Grafana

# The series the dashboard must show (issue 16): queue counts, accepted/s,
# persisted/s, 429/503 per second, p50/p99, writers, dependencies, replication.
DASHBOARD_MUST_USE = [
    "postd_queue_jobs", "http_requests_total", "postd_jobs_completed_total",
    "http_request_duration_seconds_bucket", "postd_writers_running",
    "postd_writers_configured", "postd_dependency_up", "postd_redis_replicas_online",
    "postd_redis_ack_replicas", "postd_redis_wait_shortfalls_total",
]
RATE_INTERVAL = "1m"


def all_panels(panels):
    for p in panels or []:
        yield p
        yield from all_panels(p.get("panels"))  # collapsed rows hold theirs


def substitute(expr, job):
    """Grafana's variables as a query of this dashboard would have them."""
    values = {"job": job, "instance": ".*", "__rate_interval": RATE_INTERVAL,
              "__interval": "15s", "__range": "1h"}

    def repl(m):
        name = m.group(1) or m.group(2)
        if name not in values:
            raise ValueError(f"unknown variable ${name}")
        return values[name]
    return re.sub(r"\$\{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-z]+)?\}|\$([a-zA-Z_][a-zA-Z0-9_]*)", repl, expr)


def grafana_targets(dash, job):
    """(where, expr with variables substituted, legend labels) per query."""
    out = []
    for p in all_panels(dash.get("panels")):
        for t in p.get("targets") or []:
            where = f"grafana panel {p.get('title')!r} query {t.get('refId')}"
            expr = t.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                error(f"{where}: no expr")
                continue
            try:
                expr = substitute(expr, job)
            except ValueError as e:
                error(f"{where}: {e}")
                continue
            legends = re.findall(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}", t.get("legendFormat") or "")
            out.append((where, expr, legends))
    for v in (dash.get("templating") or {}).get("list") or []:
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        where = f"grafana variable {v.get('name')}"
        m = re.fullmatch(r"\s*label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*", q or "")
        if not m:
            error(f"{where}: not label_values(selector, label): {q!r}")
            continue
        try:
            out.append((where, substitute(m.group(1), job), [m.group(2)]))
        except ValueError as e:
            error(f"{where}: {e}")
    return out


def check_dashboard_shape(dash):
    if not dash.get("uid") or not dash.get("title"):
        error("grafana: the dashboard needs a uid and a title")
    variables = {v.get("name"): v for v in (dash.get("templating") or {}).get("list") or []}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        error("grafana: no data source variable (templating: name datasource, type datasource, query prometheus)")
    for name in ("job", "instance"):
        if name not in variables:
            error(f"grafana: no ${name} variable")
    ids, used = set(), set()
    for p in all_panels(dash.get("panels")):
        if p.get("id") in ids:
            error(f"grafana: panel id {p.get('id')} used twice")
        ids.add(p.get("id"))
        if not isinstance(p.get("gridPos"), dict):
            error(f"grafana panel {p.get('title')!r}: no gridPos")
        if p.get("type") == "row":
            continue
        if not p.get("targets"):
            error(f"grafana panel {p.get('title')!r}: no queries")
        uid = (p.get("datasource") or {}).get("uid")
        if uid != "${datasource}":
            error(f"grafana panel {p.get('title')!r}: datasource uid must be ${{datasource}}, not {uid!r}")
        for t in p.get("targets") or []:
            tuid = (t.get("datasource") or {}).get("uid", "${datasource}")
            if tuid != "${datasource}":
                error(f"grafana panel {p.get('title')!r} query {t.get('refId')}: datasource uid {tuid!r}")
            if not t.get("refId"):
                error(f"grafana panel {p.get('title')!r}: a query without refId")
            try:
                used.update(parse_promql(substitute(t.get("expr") or "", "postd"))["metrics"])
            except ValueError:
                pass  # reported with the names
    for m in DASHBOARD_MUST_USE:
        if m not in used:
            error(f"grafana: no panel shows {m}")


# ------------------------------------------------------------------ commands

def cmd_coverage(alerts_path, tests_path):
    alerts = load_yaml(alerts_path)
    tests = load_yaml(tests_path)
    names = [r["alert"] for _, r in alert_rules(alerts)]
    if not names:
        error(f"{alerts_path}: no alerting rules")
    dup = {n for n in names if names.count(n) > 1}
    for n in sorted(dup):
        error(f"{alerts_path}: alert {n} defined twice")
    fires, quiet = set(), set()
    for t in (tests or {}).get("tests") or []:
        for case in t.get("alert_rule_test") or []:
            (fires if case.get("exp_alerts") else quiet).add(case.get("alertname"))
    for n in names:
        if n not in fires:
            error(f"{tests_path}: no test case where {n} fires (exp_alerts not empty)")
        if n not in quiet:
            error(f"{tests_path}: no test case where {n} does not fire (exp_alerts: [])")
    for n in sorted((fires | quiet) - set(names)):
        error(f"{tests_path}: tests alert {n}, which {alerts_path} does not define")
    for _, r in alert_rules(alerts):
        sev = (r.get("labels") or {}).get("severity")
        if sev not in ("critical", "warning"):
            error(f"{alerts_path}: alert {r['alert']}: severity must be critical or warning, not {sev!r}")
        ann = r.get("annotations") or {}
        if not ann.get("summary") or not ann.get("description"):
            error(f"{alerts_path}: alert {r['alert']}: needs a summary and a description")
    finish(f"coverage: each of the {len(names)} alerts has a firing and a not-firing test case")


def cmd_grafana_rules(grafana_path, prom_path, out_path):
    dash = load_json(grafana_path)
    check_dashboard_shape(dash)
    job = postd_job(load_yaml(prom_path))["job_name"]
    rules = []
    for k, (where, expr, _) in enumerate(grafana_targets(dash, job)):
        rules.append({"record": f"grafana:query_{k}", "expr": expr,
                      "labels": {"where": where}})
    with open(out_path, "w") as f:
        yaml.safe_dump({"groups": [{"name": "grafana-queries", "rules": rules}]}, f)
    finish(f"grafana: dashboard shape ok, {len(rules)} queries written to {out_path}")


def cmd_names(metrics_path, prom_path, alerts_path, grafana_path):
    series = read_exposition(metrics_path)
    prom = load_yaml(prom_path)
    job_names = {j.get("job_name") for j in prom.get("scrape_configs") or []}
    job = postd_job(prom)["job_name"]
    n = 0
    for group, r in alert_rules(load_yaml(alerts_path)):
        where = f"{alerts_path}: alert {r['alert']}"
        expr = r.get("expr") or ""
        # $labels.X in annotations: labels the alert carries
        templ = " ".join(str(v) for v in (r.get("annotations") or {}).values())
        legends = re.findall(r"\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)", templ)
        check_expression(where, expr, series, job_names, legends)
        n += 1
    for where, expr, legends in grafana_targets(load_json(grafana_path), job):
        check_expression(where, expr, series, job_names, legends)
        n += 1
    finish(f"names: the metric and label names of {n} expressions are all exported by postd")


def cmd_grafana_queries(grafana_path, prom_path):
    job = postd_job(load_yaml(prom_path))["job_name"]
    dash = load_json(grafana_path)
    for p in all_panels(dash.get("panels")):
        for t in p.get("targets") or []:
            try:
                expr = substitute(t.get("expr") or "", job)
            except ValueError as e:
                error(f"grafana panel {p.get('title')!r} query {t.get('refId')}: {e}")
                continue
            print(json.dumps({"panel": p.get("title"), "refId": t.get("refId"), "expr": expr}))
    if errors:
        finish("")


def cmd_test_config(prom_path, out_path, target, rules_path):
    prom = load_yaml(prom_path)
    job = postd_job(prom)
    prom.setdefault("global", {})
    prom["global"]["scrape_interval"] = "1s"
    prom["global"]["scrape_timeout"] = "1s"
    prom["global"]["evaluation_interval"] = "1s"
    prom["rule_files"] = [rules_path]
    prom.pop("alerting", None)
    job.pop("scrape_interval", None)
    job.pop("scrape_timeout", None)
    for key in [k for k in job if k.endswith("_sd_configs")]:
        del job[key]
    job["static_configs"] = [{"targets": [target]}]
    with open(out_path, "w") as f:
        yaml.safe_dump(prom, f)


def main(argv):
    commands = {"coverage": (cmd_coverage, 2), "grafana-rules": (cmd_grafana_rules, 3),
                "names": (cmd_names, 4), "grafana-queries": (cmd_grafana_queries, 2),
                "test-config": (cmd_test_config, 4)}
    if len(argv) < 2 or argv[1] not in commands or len(argv) - 2 != commands[argv[1]][1]:
        print(__doc__, file=sys.stderr)
        return 2
    commands[argv[1]][0](*argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
