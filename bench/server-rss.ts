/**
 * Memory of a compiled tabby server holding the load test's cluster, with no agents: RSS when it is
 * ready, RSS some seconds later (after V8's first major collections), and the live heap and external
 * (Buffer) bytes it reports on /metrics at that point. Separates what the data costs from what the
 * process keeps after the initial list.
 *   npm run build && npx tsx bench/server-rss.ts [--nodes 1000] [--pods-per-node 30] [--runs 3] [--settle 40]
 *     [--node-options "--max-semi-space-size=8"]
 * The simulator runs in this process on 127.0.0.1; the server is `node dist/src/cli/main.js serve`, each run
 * once with the Node options it is deployed with (src/cli/node-flags.ts; or --node-options) and once with
 * Node's defaults.
 * Both get this process's environment: run it with `MALLOC_ARENA_MAX=2` (SERVE_ENV) for the image's.
 */
import { readFile, rm } from "node:fs/promises";
import { parseArgs } from "node:util";
import { SERVE_NODE_OPTIONS } from "../src/cli/node-flags.js";
import { startServe } from "./serve-child.js";
import { kubeconfigYamlFor, seedCluster, startSimulator, writeKubeconfig } from "../src/sim/index.js";

const { values } = parseArgs({
  options: {
    nodes: { type: "string", default: "1000" },
    "pods-per-node": { type: "string", default: "30" },
    runs: { type: "string", default: "3" },
    settle: { type: "string", default: "40" },
    /** Node options to compare with Node's defaults, space-separated (default: the image's, SERVE_NODE_OPTIONS). */
    "node-options": { type: "string", default: SERVE_NODE_OPTIONS.join(" ") },
  },
});
const nodes = Number(values.nodes);
const podsPerNode = Number(values["pods-per-node"]);
const runs = Number(values.runs);
const settleMs = Number(values.settle) * 1000;
const compared = values["node-options"].split(" ").filter((o) => o !== "");

async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for ${pid}`);
  return Number(kb) * 1024;
}

function metric(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  if (line === undefined) throw new Error(`no ${name} on /metrics`);
  return Number(line.slice(line.lastIndexOf(" ") + 1));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Sample {
  readySeconds: number;
  rssAtReady: number;
  rssSettled: number;
  heapUsed: number;
  external: number;
}

async function once(kubeconfig: string, nodeOptions: readonly string[]): Promise<Sample> {
  const server = await startServe(kubeconfig, nodeOptions);
  try {
    const rssAtReady = await rssBytes(server.pid);
    await sleep(settleMs);
    const rssSettled = await rssBytes(server.pid);
    const text = await (await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).text();
    return {
      readySeconds: server.readySeconds,
      rssAtReady,
      rssSettled,
      heapUsed: metric(text, "nodejs_heap_size_used_bytes"),
      external: metric(text, "nodejs_external_memory_bytes"),
    };
  } finally {
    await server.stop();
  }
}

const sim = await startSimulator({ host: "127.0.0.1", port: 0 });
const seeded = seedCluster(sim, { nodes, podsPerNode, seed: 1 });
const kubeconfig = await writeKubeconfig(kubeconfigYamlFor(sim.url));
try {
  const mb = (b: number) => (b / 1e6).toFixed(0);
  console.log(
    `cluster: ${nodes} nodes × ${podsPerNode} pods, ${Object.values(seeded.counts).reduce((a, b) => a + b, 0)} simulator objects`,
  );
  console.log(
    "| run | Node options | ready s | RSS at ready MB | RSS after settle MB | heap used MB | external MB |",
  );
  console.log("|---|---|---|---|---|---|---|");
  for (let i = 1; i <= runs; i++) {
    for (const nodeOptions of [compared, []]) {
      const s = await once(kubeconfig, nodeOptions);
      console.log(
        `| ${i} | ${nodeOptions.length === 0 ? "Node's defaults" : nodeOptions.join(" ")} | ${s.readySeconds.toFixed(1)} | ${mb(s.rssAtReady)} | ${mb(s.rssSettled)} | ${mb(s.heapUsed)} | ${mb(s.external)} |`,
      );
    }
  }
} finally {
  await sim.close();
  await rm(kubeconfig, { force: true });
}
