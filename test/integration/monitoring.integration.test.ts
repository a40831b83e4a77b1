/**
 * deploy/monitoring for real: promtool checks and unit-tests the alert rules, and a real Prometheus
 * scrapes a real `tabby serve` over the simulator and fires, then resolves, TabbyViewStale when the
 * simulator is paused.
 */
import { execFile } from "node:child_process";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { loopbackServeArgs } from "../../src/cli/args.js";
import { spawnTabby } from "../../src/cli/ipc.js";
import { seedCluster } from "../../src/sim/churn.js";
import { startSimulator } from "../../src/sim/index.js";
import { PROMTOOL_PATH, requireBinary, startPrometheus } from "./harness/prometheus.js";
import type { AlertInfo, Prometheus } from "./harness/prometheus.js";
import { waitFor } from "./harness/wait.js";

const run = promisify(execFile);
const MONITORING_DIR = new URL("../../deploy/monitoring/", import.meta.url).pathname;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Rule {
  alert?: string;
  expr: string;
  for?: string;
}
interface RuleFile {
  groups: { name: string; rules: Rule[] }[];
}

async function promtool(args: string[], cwd: string): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run(requireBinary(PROMTOOL_PATH), args, { cwd });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, out: (e.stdout ?? "") + (e.stderr ?? "") };
  }
}

describe("promtool", () => {
  it("checks the rules and passes their unit tests", async () => {
    const check = await promtool(["check", "rules", "tabby-alerts.yaml"], MONITORING_DIR);
    expect(check.out).toContain("SUCCESS: 6 rules found");
    expect(check.code).toBe(0);
    const test = await promtool(["test", "rules", "tests/tabby-alerts.test.yaml"], MONITORING_DIR);
    expect(test.out).toContain("SUCCESS");
    expect(test.code).toBe(0);
  });

  it("the unit tests fail when an alert's threshold or delay changes", async () => {
    const rules = parse(await readFile(path.join(MONITORING_DIR, "tabby-alerts.yaml"), "utf8")) as RuleFile;
    const mutations: [string, (r: Rule) => void][] = [
      ["TabbyNotReady", (r) => (r.for = "1m")],
      ["TabbySessionLagHigh", (r) => (r.expr = r.expr.replace("> 10", "> 60"))],
      ["TabbySnapshotStorm", (r) => (r.expr = r.expr.replace("> 5", "> 0.1"))],
    ];
    for (const [alert, mutate] of mutations) {
      const dir = await mkdtemp(path.join(os.tmpdir(), "tabby-promtool-"));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      await cp(path.join(MONITORING_DIR, "tests"), path.join(dir, "tests"), { recursive: true });
      const copy = structuredClone(rules);
      const rule = copy.groups.flatMap((g) => g.rules).find((r) => r.alert === alert);
      expect(rule, alert).toBeDefined();
      mutate(rule!);
      await writeFile(path.join(dir, "tabby-alerts.yaml"), stringify(copy));
      const test = await promtool(["test", "rules", "tests/tabby-alerts.test.yaml"], dir);
      expect(test.code, alert).not.toBe(0);
      expect(test.out).toContain(`alertname: ${alert}`);
    }
  });
});

describe("a real Prometheus scraping tabby serve over the simulator", () => {
  it("fires TabbyViewStale while the simulator is paused, and resolves it after", async () => {
    // Bookmarks well within the 1 s watchdog: only the pause makes watches silent.
    const sim = await startSimulator({ host: "127.0.0.1", port: 0, bookmarkIntervalMs: 300 });
    cleanups.push(() => sim.close());
    seedCluster(sim, { nodes: 3, podsPerNode: 2 });
    const dir = await mkdtemp(path.join(os.tmpdir(), "tabby-prometheus-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const kubeconfig = path.join(dir, "kubeconfig");
    await writeFile(kubeconfig, sim.kubeconfigYaml());
    const tabby = await spawnTabby(
      loopbackServeArgs(kubeconfig, { extra: ["--stale-after-ms", "2000", "--watchdog-ms", "1000"] }),
    );
    cleanups.push(() => tabby.stop(5000));

    // The shipped rules, with `for:` shortened so the test need not wait minutes (promtool covers `for`).
    const rules = parse(await readFile(path.join(MONITORING_DIR, "tabby-alerts.yaml"), "utf8")) as RuleFile;
    for (const r of rules.groups.flatMap((g) => g.rules)) r.for = "1s";
    const prometheus: Prometheus = await startPrometheus({
      targets: [`127.0.0.1:${String(tabby.ready.metricsPort)}`],
      ruleFiles: [stringify(rules)],
    });
    cleanups.push(() => prometheus.stop());

    const staleAlerts = async (state: AlertInfo["state"]): Promise<AlertInfo[]> =>
      (await prometheus.alerts()).filter((a) => a.labels.alertname === "TabbyViewStale" && a.state === state);
    const readyValue = async (): Promise<number | undefined> =>
      (await prometheus.query("tabby_ready"))[0]?.[1];

    // Scraped and ready, nothing firing.
    await waitFor(async () => ((await readyValue()) === 1 ? true : undefined), {
      what: "tabby_ready == 1 in Prometheus",
      timeoutMs: 60_000,
      intervalMs: 500,
    });
    expect(await prometheus.alerts()).toEqual([]);

    // Pause the simulator: open watches go silent (the watchdog restarts them) and every request fails.
    sim.faults.stallWatches(true);
    sim.faults.failRequests(500, 20_000);
    // Each view goes stale when its own kinds have failed for 2 s, so the views can reach Prometheus one
    // scrape or rule evaluation apart: wait until the alert fires for every view, not just the first.
    const everyView = ["bgp", "felix", "node-status", "tunnel-ip-allocation"];
    let lastFiring: string[] = [];
    const firing = await waitFor(
      async () => {
        const a = await staleAlerts("firing");
        lastFiring = a.map((x) => String(x.labels.view)).sort();
        return everyView.every((v) => lastFiring.includes(v)) ? a : undefined;
      },
      {
        what: "TabbyViewStale firing for every view",
        timeoutMs: 60_000,
        intervalMs: 500,
        describeFailure: () => `firing for: [${lastFiring.join(", ")}]`,
      },
    );
    expect(firing.map((a) => a.labels.view).sort()).toEqual(everyView);
    expect(firing[0]?.labels.severity).toBe("critical");
    expect(await readyValue()).toBe(0);

    // Resume: the failure window ends, tabby relists, and the alert resolves.
    sim.faults.stallWatches(false);
    await waitFor(
      async () =>
        (await prometheus.alerts()).some((a) => a.labels.alertname === "TabbyViewStale") ? undefined : true,
      {
        what: "TabbyViewStale resolved",
        timeoutMs: 90_000,
        intervalMs: 500,
      },
    );
    expect(await readyValue()).toBe(1);
  }, 240_000);
});
