import { ChildPeer } from "../../loadtest/ipc.js";
import type { SimOps, SimProcessArgs, SimReady } from "../../loadtest/protocol.js";
import { applySimFault } from "../sim/fault-op.js";
import type { SimFault } from "../sim/fault-op.js";
import { ChurnGenerator, seedCluster, startSimulator } from "../sim/index.js";
import { convertedState, simLister } from "./expected.js";
import type { ConvertedEntry } from "./expected.js";

/** Where a chaos run's simulator runs: in the runner's process, or in a child process of its own. */
export type SimPlacement = "in-process" | "child-process";

/** The cluster a chaos run starts: its nodes, pods per node, and the seed of both and of the churn. */
export interface UpstreamOptions {
  readonly nodes: number;
  readonly seed: number;
  /** BOOKMARK period of the watches, ms. */
  readonly bookmarkIntervalMs: number;
  /** How long a child simulator may take to report ready (and to answer a request), ms. */
  readonly timeoutMs: number;
}

/**
 * The simulated API server of a chaos run, wherever it runs: its faults, churn and state, each an
 * operation that resolves when it is done (over IPC for a child simulator).
 */
export interface ChaosUpstream {
  readonly placement: SimPlacement;
  /** "http://127.0.0.1:PORT". */
  readonly url: string;
  /** The simulator's kubeconfig (a token on loopback). */
  readonly kubeconfigYaml: string;
  /** The seeded nodes' names. */
  readonly nodes: readonly string[];
  fault(f: SimFault): Promise<void>;
  /** Starts the churn (the generator seeded with the run's seed). */
  startChurn(ratePerSecond: number): Promise<void>;
  /** Stops the churn; answers the changes it made. */
  stopChurn(): Promise<number>;
  /** The cluster's state converted (convertedState): what the mirrors are compared with. */
  converted(): Promise<readonly ConvertedEntry[]>;
  close(): Promise<void>;
}

const PODS_PER_NODE = 2;
/** Retained watch events (the simulator's default); a restart with compaction shrinks it for a moment. */
export const HISTORY_LIMIT = 10_000;

/** Child simulators of the runs under way: killed at once if the runner itself is interrupted. */
const LIVE_SIMS = new Set<ChildPeer<SimOps>>();

/** SIGKILLs every child simulator of the runs under way (the runner got SIGINT or SIGTERM). */
export function killSimulatorsNow(): void {
  for (const peer of LIVE_SIMS) peer.process.kill("SIGKILL");
  LIVE_SIMS.clear();
}

/** Starts a chaos run's simulator, seeded with its cluster, in this process or in a child process. */
export async function startUpstream(placement: SimPlacement, o: UpstreamOptions): Promise<ChaosUpstream> {
  return placement === "in-process" ? startInProcess(o) : startChild(o);
}

async function startInProcess(o: UpstreamOptions): Promise<ChaosUpstream> {
  const sim = await startSimulator({
    host: "127.0.0.1",
    port: 0,
    bookmarkIntervalMs: o.bookmarkIntervalMs,
    historyLimit: HISTORY_LIMIT,
  });
  const seeded = seedCluster(sim, { nodes: o.nodes, podsPerNode: PODS_PER_NODE, seed: o.seed });
  let churn: ChurnGenerator | undefined;
  return {
    placement: "in-process",
    url: sim.url,
    kubeconfigYaml: sim.kubeconfigYaml(),
    nodes: seeded.nodes,
    fault: (f) => applySimFault(sim, f),
    startChurn: (ratePerSecond) => {
      churn?.stop();
      churn = new ChurnGenerator(sim, { ratePerSecond, seed: o.seed });
      churn.start();
      return Promise.resolve();
    },
    stopChurn: () => {
      churn?.stop();
      return Promise.resolve(churn?.changes ?? 0);
    },
    converted: () => Promise.resolve(convertedState(simLister(sim))),
    close: async () => {
      churn?.stop();
      await sim.close();
    },
  };
}

async function startChild(o: UpstreamOptions): Promise<ChaosUpstream> {
  const args: SimProcessArgs = {
    nodes: o.nodes,
    podsPerNode: PODS_PER_NODE,
    seed: o.seed,
    historyLimit: HISTORY_LIMIT,
    bookmarkIntervalMs: o.bookmarkIntervalMs,
  };
  const peer = new ChildPeer<SimOps>("simulator", "sim-process.ts", [JSON.stringify(args)], {
    readyTimeoutMs: o.timeoutMs,
  });
  LIVE_SIMS.add(peer);
  peer.process.once("exit", () => LIVE_SIMS.delete(peer));
  let ready: SimReady;
  try {
    ready = (await peer.ready) as unknown as SimReady;
  } catch (err) {
    await peer.kill();
    throw err;
  }
  const timeoutMs = o.timeoutMs;
  return {
    placement: "child-process",
    url: ready.url,
    kubeconfigYaml: ready.kubeconfigYaml,
    nodes: ready.nodeNames,
    fault: async (f) => {
      await peer.request("fault", f, timeoutMs);
    },
    startChurn: async (ratePerSecond) => {
      await peer.request("churn", { ratePerSecond, seed: o.seed }, timeoutMs);
    },
    stopChurn: async () => (await peer.request("churn", { ratePerSecond: 0 }, timeoutMs)).changes,
    converted: () => peer.request("converted", {}, timeoutMs),
    // The child closes its simulator and exits when its channel closes; killed after 5 s if it does not.
    close: () => peer.stop(5000),
  };
}
