/**
 * Memory of a compiled tabby server holding the load test's cluster, with no agents: RSS when it is
 * ready, RSS some seconds later (after V8's first major collections), and the live heap and external
 * (Buffer) bytes it reports on /metrics at that point. Separates what the data costs from what the
 * process keeps after the initial list.
 *   npm run build && npx tsx bench/server-rss.ts [--nodes 1000] [--pods-per-node 30] [--runs 3] [--settle 40]
 * The simulator runs in this process on 127.0.0.1; the server is `node dist/src/cli/main.js serve`, each run
 * once with the Node options it is deployed with (src/cli/node-flags.ts) and once with Node's defaults.
 * Both get this process's environment: run it with `MALLOC_ARENA_MAX=2` (SERVE_ENV) for the image's.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { SERVE_NODE_OPTIONS } from "../src/cli/node-flags.js";
import { kubeconfigYamlFor, seedCluster, startSimulator, writeKubeconfig } from "../src/sim/index.js";

const MAIN = fileURLToPath(new URL("../dist/src/cli/main.js", import.meta.url));

const { values } = parseArgs({
  options: {
    nodes: { type: "string", default: "1000" },
    "pods-per-node": { type: "string", default: "30" },
    runs: { type: "string", default: "3" },
    settle: { type: "string", default: "40" },
  },
});
const nodes = Number(values.nodes);
const podsPerNode = Number(values["pods-per-node"]);
const runs = Number(values.runs);
const settleMs = Number(values.settle) * 1000;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const address = s.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      s.close(() => resolve(port));
    });
  });
}

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
  const port = await freePort();
  const httpPort = await freePort();
  const child = spawn(
    process.execPath,
    [
      ...nodeOptions,
      MAIN,
      "serve",
      "--kubeconfig",
      kubeconfig,
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--http-host",
      "127.0.0.1",
      "--health-port",
      String(httpPort),
      "--metrics-port",
      String(httpPort),
      "--insecure-allow-anonymous",
      "--log-level",
      "error",
    ],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    const pid = child.pid;
    if (pid === undefined) throw new Error("server did not start");
    const t0 = performance.now();
    for (;;) {
      if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
      const ok = await fetch(`http://127.0.0.1:${httpPort}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (performance.now() - t0 > 300_000) throw new Error("server not ready within 300 s");
      await sleep(250);
    }
    const readySeconds = (performance.now() - t0) / 1000;
    const rssAtReady = await rssBytes(pid);
    await sleep(settleMs);
    const rssSettled = await rssBytes(pid);
    const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    return {
      readySeconds,
      rssAtReady,
      rssSettled,
      heapUsed: metric(text, "nodejs_heap_size_used_bytes"),
      external: metric(text, "nodejs_external_memory_bytes"),
    };
  } finally {
    child.kill("SIGKILL");
    await exited;
  }
}

if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first`);
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
    for (const nodeOptions of [SERVE_NODE_OPTIONS, []]) {
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
