import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import type { ViewName } from "../proto/messages.js";
import { ChaosProxy } from "../src/chaos/proxy.js";
import { TabbyClient } from "../src/client/index.js";
import { ChurnGenerator, seedCluster, startSimulator } from "../src/sim/index.js";
import { ChildPeer } from "../loadtest/ipc.js";
import type { LeakServerOps, ServerFootprint } from "./leak-server.js";

export interface LeakOptions {
  /** Agents, each cut and reconnected `reconnects` times. */
  readonly agents: number;
  readonly reconnects: number;
  /** Simulated nodes (the agents' node-scoped views pick among them). */
  readonly nodes: number;
  /** Object writes per second while the agents reconnect (so that resumes carry a catch-up). */
  readonly churnPerSecond: number;
  /** Cuts before the first footprint: the server's caches, pools and JIT warm up. */
  readonly warmupCycles: number;
  /** A footprint every this many cycles (0: only before and after). */
  readonly sampleEvery: number;
  /** One cycle (cut, every agent back in sync) longer than this fails the bench, ms. */
  readonly cycleTimeoutMs: number;
  readonly onSample?: (s: LeakSample) => void;
}

export interface LeakSample extends ServerFootprint {
  /** Cycles done when it was taken. */
  readonly cycle: number;
}

export interface LeakReport {
  readonly agents: number;
  readonly reconnects: number;
  readonly before: LeakSample;
  readonly after: LeakSample;
  readonly samples: readonly LeakSample[];
  /** The agents' own counts over the measured cycles (resumed sessions and full snapshots). */
  readonly resumes: number;
  readonly snapshots: number;
  readonly seconds: number;
  /** Median time from a cut to every agent in sync again, ms. */
  readonly cycleMsP50: number;
}

const VIEWS: readonly ViewName[] = ["felix", "bgp", "node-status", "tunnel-ip-allocation"];
const silent = pino({ level: "silent" });

/** Resolves when `client` has reconnected past `reconnects` attempts and is in sync again. */
function backInSync(client: TabbyClient, reconnects: number, timeoutMs: number): Promise<void> {
  const isBack = (): boolean => client.stats.reconnects > reconnects && client.status.state === "in-sync";
  if (isBack()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onStatus = (): void => {
      if (!isBack()) return;
      clearTimeout(timer);
      client.off("status", onStatus);
      resolve();
    };
    const timer = setTimeout(() => {
      client.off("status", onStatus);
      reject(new Error(`an agent was not back in sync within ${timeoutMs} ms (${client.status.state})`));
    }, timeoutMs);
    client.on("status", onStatus);
  });
}

/**
 * Forced reconnects against one server process: agents behind a TCP proxy that cuts every connection,
 * again and again; each cycle waits until every agent has reconnected, resumed and is in sync. The server's
 * file descriptors, sockets and memory (after a full GC) are read before and after (and every
 * `sampleEvery` cycles): what a cut session leaves behind shows as growth.
 */
export async function reconnectLeak(o: LeakOptions): Promise<LeakReport> {
  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    const dir = await mkdtemp(join(tmpdir(), "tabby-leak-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const sim = await startSimulator({ host: "127.0.0.1", port: 0 });
    cleanups.push(() => sim.close());
    const seeded = seedCluster(sim, { nodes: o.nodes, podsPerNode: 2, seed: 1 });
    const kubeconfig = join(dir, "kubeconfig");
    await writeFile(kubeconfig, sim.kubeconfigYaml());

    const server = new ChildPeer<LeakServerOps>("leak-server", "../bench/leak-server.ts", [kubeconfig], {
      readyTimeoutMs: 60_000,
      execArgv: ["--expose-gc"],
    });
    cleanups.push(() => server.stop());
    const { port } = (await server.ready) as { port: number };
    const proxy = new ChaosProxy(port);
    await proxy.listen();
    cleanups.push(() => proxy.close());

    const agents: TabbyClient[] = [];
    for (let i = 0; i < o.agents; i++) {
      const view = VIEWS[i % VIEWS.length]!;
      const client = new TabbyClient({
        servers: [`ws://127.0.0.1:${proxy.port}`],
        view,
        ...(view !== "tunnel-ip-allocation" && { nodeName: seeded.nodes[i % seeded.nodes.length]! }),
        clientName: `leak-${i}`,
        backoffInitialMs: 5,
        backoffMaxMs: 50,
        logger: silent,
      });
      client.on("error", () => undefined); // each cut is an error by design; the check is the footprint
      agents.push(client);
      client.start();
    }
    cleanups.push(() => Promise.all(agents.map((a) => a.destroy())));
    await Promise.all(agents.map((a) => a.synced()));
    if (o.churnPerSecond > 0) {
      const churn = new ChurnGenerator(sim, { ratePerSecond: o.churnPerSecond, seed: 1 });
      churn.start();
      cleanups.push(() => Promise.resolve(churn.stop()));
    }

    const cycleMs: number[] = [];
    const cycle = async (): Promise<void> => {
      const startedMs = Date.now();
      const counts = agents.map((a) => a.stats.reconnects);
      proxy.cutAll();
      await Promise.all(agents.map((a, i) => backInSync(a, counts[i]!, o.cycleTimeoutMs)));
      cycleMs.push(Date.now() - startedMs);
    };
    const sample = async (done: number): Promise<LeakSample> => {
      const s = { cycle: done, ...(await server.request("footprint", null)) };
      o.onSample?.(s);
      return s;
    };

    for (let i = 0; i < o.warmupCycles; i++) await cycle();
    cycleMs.length = 0;
    const startedMs = Date.now();
    const resumesBefore = agents.reduce((n, a) => n + a.stats.resumes, 0);
    const snapshotsBefore = agents.reduce((n, a) => n + a.stats.snapshots, 0);
    const before = await sample(0);
    const samples = [before];
    for (let done = 1; done <= o.reconnects; done++) {
      await cycle();
      if (o.sampleEvery > 0 && done % o.sampleEvery === 0 && done < o.reconnects)
        samples.push(await sample(done));
    }
    const seconds = (Date.now() - startedMs) / 1000;
    const after = await sample(o.reconnects);
    samples.push(after);
    cycleMs.sort((a, b) => a - b);
    return {
      agents: o.agents,
      reconnects: o.reconnects,
      before,
      after,
      samples,
      resumes: agents.reduce((n, a) => n + a.stats.resumes, 0) - resumesBefore,
      snapshots: agents.reduce((n, a) => n + a.stats.snapshots, 0) - snapshotsBefore,
      seconds,
      cycleMsP50: cycleMs[Math.floor(cycleMs.length / 2)] ?? 0,
    };
  } finally {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (err) {
        // Teardown goes on; the bench's figures are already taken.
        process.stderr.write(
          `reconnect-leak: teardown: ${err instanceof Error ? err.message : String(err)}\n`,
        );
      }
    }
  }
}
