/**
 * The metric names a PromQL expression reads, for checking dashboards and alert rules against what a
 * running server exports. A small lexer, not a parser: it drops string literals, label matchers,
 * range/offset brackets, grouping clauses, function and aggregation calls, keywords and numbers; what is
 * left is metric names.
 */
const KEYWORDS = new Set(["and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"]);

export function metricNamesOf(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\boffset\s+-?[0-9smhdwy]+/g, " ")
    .replace(/\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b/gi, " ")
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  const names = new Set<string>();
  for (const m of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const name = m[0];
    const rest = stripped.slice((m.index ?? 0) + name.length);
    if (/^\s*\(/.test(rest) || KEYWORDS.has(name)) continue;
    names.add(name);
  }
  return [...names];
}

/**
 * The sample names a Prometheus text exposition can carry, from its `# TYPE` lines (prom-client writes
 * them even for a labelled metric with no series yet): a histogram X gives X_bucket, X_sum and X_count,
 * a summary X gives X, X_sum and X_count.
 */
export function exportedSampleNames(exposition: string): Set<string> {
  const out = new Set<string>();
  for (const m of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string];
    if (type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) out.add(name + s);
    else if (type === "summary") for (const s of ["", "_sum", "_count"]) out.add(name + s);
    else out.add(name);
  }
  return out;
}

/** Every `expr` string in a Grafana dashboard (panel targets, nested rows), and the metrics of its variables. */
export function dashboardQueries(dashboard: unknown): { exprs: string[]; variableMetrics: string[] } {
  const exprs: string[] = [];
  const variableMetrics: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const n of node) walk(n);
      return;
    }
    if (typeof node !== "object" || node === null) return;
    for (const [k, v] of Object.entries(node)) {
      if (k === "expr" && typeof v === "string") exprs.push(v);
      else if (k === "definition" && typeof v === "string") {
        for (const m of v.matchAll(/label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)/g))
          variableMetrics.push(m[1]!);
      } else walk(v);
    }
  };
  walk(dashboard);
  return { exprs, variableMetrics };
}
