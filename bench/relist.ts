/**
 * How long a compiled `tabby serve` takes from its start to ready against the load test's cluster: the
 * upstream relist that a restarted server does before its agents can be served again (a reconnect storm's
 * first seconds), without agents. The simulator runs as its own process, churning as in the load test;
 * the server gets the image's Node options and environment. Usage:
 *   npm run build && npx tsx bench/relist.ts [--nodes 1000] [--pods-per-node 30] [--churn 1000] [--runs 5]
 *     [--dist dist,dist-before]
 * Prints each run's time to ready and the server's CPU seconds by then (main thread, busiest others).
 */
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { statCpuSeconds } from "../loadtest/proc-stats.js";
import { SERVE_ENV, SERVE_NODE_OPTIONS } from "../src/cli/node-flags.js";
import { startServe } from "./serve-child.js";

const { values } = parseArgs({
  options: {
    nodes: { type: "string", default: "1000" },
    "pods-per-node": { type: "string", default: "30" },
    churn: { type: "string", default: "1000" },
    runs: { type: "string", default: "5" },
    // Builds to compare, comma-separated directories like dist (each a copy of `npm run build`'s output
    // inside the repository), run in turn: run 1 of each, then run 2 of each, ...
    dist: { type: "string", default: "dist" },
  },
});
const SIM_MAIN = fileURLToPath(new URL("../dist/src/cli/main.js", import.meta.url));

/** CPU seconds of each thread of `pid`, busiest first; the main thread is the one whose id is `pid`. */
async function threadSeconds(pid: number): Promise<{ main: number; others: number[] }> {
  const dir = `/proc/${pid}/task`;
  let main = 0;
  const others: number[] = [];
  for (const tid of await readdir(dir)) {
    const seconds = statCpuSeconds(await readFile(`${dir}/${tid}/stat`, "utf8").catch(() => ""));
    if (Number(tid) === pid) main = seconds;
    else others.push(seconds);
  }
  return { main, others: others.sort((a, b) => b - a) };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), "tabby-relist-"));
  const kubeconfig = path.join(dir, "kubeconfig");
  const sim = spawn(
    process.execPath,
    [
      SIM_MAIN,
      "sim",
      "--nodes",
      values.nodes,
      "--pods-per-node",
      values["pods-per-node"],
      "--churn",
      values.churn,
      "--port",
      "0",
      "--kubeconfig-out",
      kubeconfig,
      "--log-level",
      "warn",
    ],
    { stdio: ["ignore", "ignore", "inherit", "ipc"] },
  );
  const simExited = new Promise<void>((resolve) => sim.once("exit", () => resolve()));
  try {
    // The simulator reports ready over IPC once it serves the seeded cluster (src/cli/ipc.ts).
    await new Promise<void>((resolve, reject) => {
      sim.once("exit", (code) => reject(new Error(`simulator exited with ${String(code)}`)));
      sim.on("message", (m: { type?: unknown }) => {
        if (m.type === "ready") resolve();
      });
    });
    console.log(`# tabby relist bench — ${new Date().toISOString()}`);
    console.log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? "?"}, node ${process.version}`);
    console.log(`cluster: ${values.nodes} nodes x ${values["pods-per-node"]} pods, churn ${values.churn}/s`);
    const builds = values.dist.split(",").filter((d) => d !== "");
    const ready = new Map<string, number[]>(builds.map((b) => [b, []]));
    for (let run = 1; run <= Number(values.runs); run++) {
      for (const build of builds) {
        const server = await startServe(kubeconfig, SERVE_NODE_OPTIONS, {
          env: SERVE_ENV,
          pollMs: 20,
          main: fileURLToPath(new URL(`../${build}/src/cli/main.js`, import.meta.url)),
        });
        const { main: mainSeconds, others } = await threadSeconds(server.pid);
        await server.stop();
        ready.get(build)?.push(server.readySeconds);
        const busiest = others.slice(0, 2).map((s) => s.toFixed(2));
        const total = mainSeconds + others.reduce((a, b) => a + b, 0);
        console.log(
          `${build} run ${run}: ready ${server.readySeconds.toFixed(2)} s; CPU ${total.toFixed(2)} s ` +
            `(main thread ${mainSeconds.toFixed(2)}, busiest others ${busiest.join(", ")})`,
        );
      }
    }
    for (const [build, times] of ready) {
      const sorted = [...times].sort((a, b) => a - b);
      console.log(
        `${build}: ready median ${sorted[Math.floor(sorted.length / 2)]?.toFixed(2)} s, ` +
          `min ${sorted[0]?.toFixed(2)} s, max ${sorted.at(-1)?.toFixed(2)} s`,
      );
    }
  } finally {
    sim.kill("SIGTERM");
    await simExited;
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
