import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { loopbackServeArgs } from "../../src/cli/args.js";
import { spawnTabby } from "../../src/cli/ipc.js";
import { seedCluster } from "../../src/sim/churn.js";
import { startSimulator } from "../../src/sim/index.js";
import { dashboardQueries, exportedSampleNames, metricNamesOf } from "../support/promql-names.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const monitoring = (file: string): URL => new URL(`../../deploy/monitoring/${file}`, import.meta.url);

interface RuleFile {
  groups: { rules: { alert?: string; expr: string }[] }[];
}

describe("metricNamesOf", () => {
  it("finds the metrics of an expression and nothing else", () => {
    expect(
      metricNamesOf(
        'histogram_quantile(0.99, sum by (le, view) (rate(tabby_delta_fanout_seconds_bucket{job=~"$job", view="felix"}[5m]))) > 1e3',
      ),
    ).toEqual(["tabby_delta_fanout_seconds_bucket"]);
    expect(metricNamesOf("sum(tabby_ready) / count(tabby_ready) or on (instance) up offset 5m")).toEqual([
      "tabby_ready",
      "up",
    ]);
  });
});

describe("deploy/monitoring against a running server", () => {
  it("every dashboard query and alert rule names only metrics tabby serve exports", async () => {
    const sim = await startSimulator({ host: "127.0.0.1", port: 0 });
    cleanups.push(() => sim.close());
    seedCluster(sim, { nodes: 3, podsPerNode: 2 });
    const dir = await mkdtemp(join(tmpdir(), "tabby-monitoring-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const kubeconfig = join(dir, "kubeconfig");
    await writeFile(kubeconfig, sim.kubeconfigYaml());
    const server = await spawnTabby(loopbackServeArgs(kubeconfig));
    cleanups.push(() => server.stop(5000));

    const res = await fetch(`http://127.0.0.1:${String(server.ready.metricsPort)}/metrics`);
    expect(res.status).toBe(200);
    const exported = exportedSampleNames(await res.text());
    expect(exported.has("tabby_ready")).toBe(true);

    const dashboard: unknown = JSON.parse(await readFile(monitoring("tabby-dashboard.json"), "utf8"));
    const { exprs, variableMetrics } = dashboardQueries(dashboard);
    const rules = parse(await readFile(monitoring("tabby-alerts.yaml"), "utf8")) as RuleFile;
    const alertExprs = rules.groups.flatMap((g) => g.rules.map((r) => r.expr));
    expect(exprs.length).toBeGreaterThan(25);
    expect(alertExprs.length).toBeGreaterThanOrEqual(6);

    const missing: string[] = [];
    for (const expr of [...exprs, ...alertExprs]) {
      const names = metricNamesOf(expr);
      expect(names.length, expr).toBeGreaterThan(0);
      for (const n of names) if (!exported.has(n)) missing.push(`${n} (in ${expr})`);
    }
    for (const n of variableMetrics) if (!exported.has(n)) missing.push(`${n} (dashboard variable)`);
    expect(missing).toEqual([]);
  }, 60_000);
});
