import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { loopbackServeArgs } from "../../src/cli/args.js";
import { spawnTabby } from "../../src/cli/ipc.js";
import { formatStatusTable, statusUrl } from "../../src/cli/status.js";
import type { StatusReport } from "../../src/server/fanout/status-report.js";
import { seedCluster, startSimulator } from "../../src/sim/index.js";

const run = promisify(execFile);
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function tabbyStatus(args: string[]): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await run(process.execPath, ["--import", "tsx", "src/cli/main.ts", "status", ...args]);
    return { code: 0, stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, stdout: e.stdout };
  }
}

describe("tabby status", () => {
  it("normalizes replica addresses to their /status URL", () => {
    expect(statusUrl("10.0.0.1:9098")).toBe("http://10.0.0.1:9098/status");
    expect(statusUrl("http://tabby-0:9093/")).toBe("http://tabby-0:9093/status");
    expect(statusUrl("https://x:9098/custom/status")).toBe("https://x:9098/custom/status");
  });

  it("prints one row per replica from its /status, and fails when one is unreachable", async () => {
    const sim = await startSimulator({ host: "127.0.0.1", port: 0 });
    cleanups.push(() => sim.close());
    seedCluster(sim, { nodes: 3, podsPerNode: 2 });
    const dir = await mkdtemp(join(tmpdir(), "tabby-status-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const kubeconfig = join(dir, "kubeconfig");
    await writeFile(kubeconfig, sim.kubeconfigYaml());
    const server = await spawnTabby(loopbackServeArgs(kubeconfig));
    cleanups.push(() => server.stop(5000));
    const health = `http://127.0.0.1:${String(server.ready.healthPort)}`;
    // Ready once every view is in sync.
    for (let i = 0; i < 100; i++) {
      const res = await fetch(`${health}/readyz`);
      if (res.status === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const report = (await (await fetch(`${health}/status`)).json()) as StatusReport;

    const ok = await tabbyStatus(["--server", health]);
    expect(ok.code).toBe(0);
    const [header, line] = ok.stdout.trimEnd().split("\n");
    expect(header).toMatch(
      /^replica\s+id\s+ready\s+views \(revision\/entries\)\s+sessions\s+lag p99\s+stale kinds\s+replicas$/,
    );
    expect(line).toContain(String(server.ready.serverId));
    expect(line).toMatch(/\byes\b/);
    expect(line).toContain(`felix ${report.views.felix.lastChangeRevision}/${report.views.felix.entries}`);
    expect(line).toContain(`bgp ${report.views.bgp.lastChangeRevision}/${report.views.bgp.entries}`);
    expect(report.views.felix.entries).toBeGreaterThan(0);
    expect(line).toMatch(/\s1\/1 \(none\)$/); // no --service-name or --peers: this server alone

    const down = await tabbyStatus(["--server", health, "127.0.0.1:9", "--timeout-ms", "2000"]);
    expect(down.code).toBe(1);
    const lines = down.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[2]).toMatch(/^127\.0\.0\.1:9\s+-\s+unreachable/);
  }, 60_000);

  it("shows not-ready reasons, draining, lag and stale kinds", () => {
    const view = { status: { state: "stale", since: 0 }, lastChangeRevision: 7, entries: 3 };
    const report = {
      server: "abc",
      ready: false,
      notReadyReason: "stale: IPPool",
      draining: true,
      connections: { active: 12, handshaking: 0 },
      views: { felix: view, bgp: view, "tunnel-ip-allocation": view, "node-status": view },
      kinds: {
        IPPool: { state: "stale", since: 0 },
        Node: { state: "in-sync", since: 0 },
        BGPPeer: { state: "stale", since: 0 },
      },
      lag: { laggingMs: { p50: 0, p90: 0, p99: 2500, max: 3000 } },
    } as unknown as StatusReport;
    const table = formatStatusTable([{ url: "http://a:9098/status", report }]);
    const line = table.split("\n")[1]!;
    expect(line).toMatch(/^a:9098\s+abc\s+no \(stale: IPPool\), draining\s+felix 7\/3, bgp 7\/3/);
    expect(line).toMatch(/\s12\s+2\.5s\s+BGPPeer,IPPool\s+-$/); // an older server: no replicas section
    const withReplicas = {
      ...report,
      replicas: { source: "endpoint-slices", ready: 2, peers: [{}, {}, {}] },
    } as unknown as StatusReport;
    const line2 = formatStatusTable([{ url: "http://a:9098/status", report: withReplicas }]).split("\n")[1]!;
    expect(line2).toMatch(/\s2\/3 \(endpoint-slices\)$/);
  });
});
