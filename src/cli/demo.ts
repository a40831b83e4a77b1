import { Command } from "commander";
import hdr from "hdr-histogram-js";
import { TabbyClient } from "../client/index.js";
import type { Update } from "../client/index.js";
import { loopbackServeArgs, wholeNumber } from "./args.js";
import { spawnTabby } from "./ipc.js";
import type { TabbyChild } from "./ipc.js";

const CHANGED_AT = "tabby.dev/changed-at";

export interface DemoOptions {
  readonly nodes: number;
  readonly podsPerNode: number;
  readonly churn: number;
  readonly agents: number;
  /** Seconds; 0 runs until SIGINT/SIGTERM. */
  readonly duration: number;
}

/** Milliseconds from the simulator's change stamp to now, for each change that carries one. */
function latencies(batch: readonly Update[], now: number): number[] {
  const out: number[] = [];
  for (const u of batch) {
    const meta = (u.value as { metadata?: { annotations?: Record<string, string> } } | null)?.metadata;
    const stamp = meta?.annotations?.[CHANGED_AT];
    if (stamp !== undefined) out.push(Math.max(0, now - Number(stamp)));
  }
  return out;
}

/** Simulator and server as child processes, agents in this process, a live summary line. */
export async function runDemo(options: DemoOptions, signal: AbortSignal): Promise<void> {
  const children: TabbyChild[] = [];
  const agents: TabbyClient[] = [];
  const histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000,
    numberOfSignificantValueDigits: 3,
  });
  let ticker: NodeJS.Timeout | undefined;
  try {
    const sim = await spawnTabby([
      "sim",
      "--nodes",
      String(options.nodes),
      "--pods-per-node",
      String(options.podsPerNode),
      "--churn",
      String(options.churn),
      "--port",
      "0",
    ]);
    children.push(sim);
    const kubeconfig = String(sim.ready.kubeconfig);
    const server = await spawnTabby(loopbackServeArgs(kubeconfig));
    children.push(server);
    const wsUrl = `ws://127.0.0.1:${String(server.ready.port)}`;
    const health = `http://127.0.0.1:${String(server.ready.healthPort)}`;
    const metrics = `http://127.0.0.1:${String(server.ready.metricsPort)}`;
    console.log(`simulator   ${String(sim.ready.url)}  (kubeconfig ${kubeconfig})`);
    console.log(`tabby       ${wsUrl}  server ${String(server.ready.serverId)}`);
    console.log(`status      ${health}/status   readiness ${health}/readyz`);
    console.log(`metrics     ${metrics}/metrics`);
    console.log(`dump        npx tsx src/cli/main.ts dump --server ${wsUrl} --view felix`);

    let updates = 0;
    for (let i = 0; i < options.agents; i++) {
      const view = i % 4 === 3 ? "bgp" : "felix";
      const agent = new TabbyClient({
        servers: [wsUrl],
        view,
        nodeName: `node-${String(i).padStart(4, "0")}`,
        clientName: "tabby-demo-agent",
      });
      agent.on("updates", (batch) => {
        updates += batch.length;
        // The initial snapshot carries stamps of changes made before the agent connected: not latency.
        if (agent.isInSync) for (const ms of latencies(batch, Date.now())) histogram.recordValue(ms);
      });
      agent.on("error", () => undefined);
      agent.start();
      agents.push(agent);
    }
    const started = Date.now();
    let lastUpdates = 0;
    const isTty = process.stdout.isTTY;
    ticker = setInterval(() => {
      const inSync = agents.filter((a) => a.isInSync).length;
      const rate = updates - lastUpdates;
      lastUpdates = updates;
      const line =
        `rev ${agents[0]?.revision ?? 0} | agents in sync ${inSync}/${agents.length} | updates/s (all agents) ${rate} | ` +
        `latency p50 ${histogram.getValueAtPercentile(50)} ms p99 ${histogram.getValueAtPercentile(99)} ms ` +
        `max ${histogram.maxValue} ms | ${Math.round((Date.now() - started) / 1000)} s`;
      if (isTty) process.stdout.write(`\r${line}   `);
      else console.log(line);
      histogram.reset();
    }, 1000);
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      signal.addEventListener("abort", () => resolve(), { once: true });
      if (options.duration > 0) setTimeout(resolve, options.duration * 1000).unref();
    });
    if (isTty) process.stdout.write("\n");
  } finally {
    if (ticker !== undefined) clearInterval(ticker);
    await Promise.allSettled(agents.map((a) => a.close()));
    await Promise.allSettled(children.reverse().map((c) => c.stop(5000)));
    histogram.destroy();
  }
}

export function demoCommand(): Command {
  return new Command("demo")
    .description("Run a simulated cluster, a tabby server and a few agents, with a live summary.")
    .option("--nodes <n>", "simulated nodes", wholeNumber(1), 100)
    .option("--pods-per-node <n>", "pods per node", wholeNumber(0), 10)
    .option("--churn <n>", "changes per second in the simulated cluster", wholeNumber(0), 20)
    .option("--agents <n>", "agents (clients) to run", wholeNumber(1), 8)
    .option("--duration <s>", "stop after this many seconds (0: until Ctrl-C)", wholeNumber(0), 0)
    .action(async (opts: DemoOptions) => {
      const abort = new AbortController();
      const stop = (): void => abort.abort();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      try {
        await runDemo(opts, abort.signal);
      } catch (err) {
        console.error(`tabby demo: ${err instanceof Error ? err.message : String(err)}`);
        process.exitCode = 1;
      }
    });
}
