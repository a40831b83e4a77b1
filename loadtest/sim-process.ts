/**
 * Simulator process of the load test and of the chaos runner (src/chaos/upstream.ts): a Kubernetes API
 * simulator seeded with the cluster, a churn generator whose rate the parent sets, its faults, and the
 * state that verification compares mirrors with (the load test's digest, the chaos runner's converted state).
 * Run as `node --import tsx loadtest/sim-process.ts '<SimProcessArgs as JSON>'` with an IPC channel.
 */
import { convertedState, simLister } from "../src/chaos/expected.js";
import { applySimFault } from "../src/sim/fault-op.js";
import { ChurnGenerator, SIM_TOKEN, seedCluster, startSimulator } from "../src/sim/index.js";
import { stateDigest } from "./digest.js";
import { serveParent } from "./ipc.js";
import type { SimOps, SimProcessArgs, SimReady, SimStats } from "./protocol.js";

const args = JSON.parse(process.argv[2] ?? "{}") as SimProcessArgs;

const sim = await startSimulator({
  host: "127.0.0.1",
  port: 0,
  historyLimit: args.historyLimit,
  ...(args.bookmarkIntervalMs !== undefined && { bookmarkIntervalMs: args.bookmarkIntervalMs }),
});
const seeded = seedCluster(sim, { nodes: args.nodes, podsPerNode: args.podsPerNode, seed: args.seed });

let churn: ChurnGenerator | undefined;
/** Changes made (and changes skipped because the process lagged) by generators already stopped. */
let changesBefore = 0;
let laggedBefore = 0;
let generation = 0;

function stats(): SimStats {
  return {
    changes: changesBefore + (churn?.changes ?? 0),
    lagged: laggedBefore + (churn?.stats.lagged ?? 0),
    openWatches: sim.openWatches,
    resourceVersion: sim.resourceVersion,
    requestCounts: sim.requestCounts,
  };
}

function setChurn(ratePerSecond: number, seed: number | undefined): SimStats {
  if (churn !== undefined) {
    churn.stop();
    changesBefore += churn.changes;
    laggedBefore += churn.stats.lagged;
    churn = undefined;
  }
  if (ratePerSecond > 0) {
    generation++;
    churn = new ChurnGenerator(sim, { ratePerSecond, seed: seed ?? args.seed * 1000 + generation });
    churn.start();
  }
  return stats();
}

const listOrUndefined = simLister(sim);

const channel = serveParent<SimOps>(
  {
    churn: ({ ratePerSecond, seed }) => setChurn(ratePerSecond, seed),
    stats: () => stats(),
    digest: ({ bgpNodes }) => stateDigest(listOrUndefined, bgpNodes),
    fault: async (f) => {
      await applySimFault(sim, f);
      return {};
    },
    converted: () => convertedState(listOrUndefined),
  },
  async () => {
    churn?.stop();
    await sim.close();
  },
);

const objects = Object.values(seeded.counts).reduce((a, b) => a + b, 0);
const ready: SimReady = {
  url: sim.url,
  kubeconfigYaml: sim.kubeconfigYaml(),
  token: SIM_TOKEN,
  nodeNames: seeded.nodes,
  objects,
};
channel.reportReady({ role: "sim", ...ready });
