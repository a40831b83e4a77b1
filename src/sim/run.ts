import { once } from "node:events";
import { rm } from "node:fs/promises";
import { dirname } from "node:path";
import { pino, type Logger } from "pino";
import { ChurnGenerator, seedCluster } from "./churn.js";
import { writeKubeconfig } from "./kubeconfig.js";
import { startSimulator, type Simulator, type SimulatorOptions } from "./simulator.js";

export interface RunSimOptions extends SimulatorOptions {
  readonly nodes: number;
  readonly podsPerNode: number;
  /** Object writes per second by the churn generator; 0 for none. */
  readonly churnPerSecond: number;
  /** Runs until this aborts. */
  readonly signal: AbortSignal;
  readonly namespaces?: number;
  /** PRNG seed of the seed and the churn; default 1. */
  readonly seed?: number;
  /** Where to write the kubeconfig; default a new temporary directory. */
  readonly kubeconfigPath?: string;
  /** Period of the churn summary log line; default 10000. */
  readonly statsIntervalMs?: number;
  /** Called once the simulator is seeded and the kubeconfig written. */
  readonly onReady?: (info: {
    readonly url: string;
    readonly kubeconfigPath: string;
    readonly sim: Simulator;
  }) => void;
}

/** The `tabby sim` command: start, seed, churn, log the URL and kubeconfig path; stop when the signal aborts. */
export async function runSim(options: RunSimOptions): Promise<void> {
  const logger: Logger = options.logger ?? pino({ name: "tabby-sim" });
  if (options.signal.aborted) return;
  const sim = await startSimulator({ ...options, logger });
  let churn: ChurnGenerator | undefined;
  let statsTimer: NodeJS.Timeout | undefined;
  let tempDir: string | undefined;
  try {
    const started = performance.now();
    const seeded = seedCluster(sim, {
      nodes: options.nodes,
      podsPerNode: options.podsPerNode,
      ...(options.namespaces === undefined ? {} : { namespaces: options.namespaces }),
      ...(options.seed === undefined ? {} : { seed: options.seed }),
    });
    const objects = Object.values(seeded.counts).reduce((a, b) => a + b, 0);
    logger.info(
      { nodes: seeded.nodes.length, objects, seedMs: Math.round(performance.now() - started) },
      "sim: cluster seeded",
    );
    const kubeconfigPath = await writeKubeconfig(sim.kubeconfigYaml(), options.kubeconfigPath);
    // A kubeconfig this run put in a temporary directory goes with it.
    if (options.kubeconfigPath === undefined) tempDir = dirname(kubeconfigPath);
    logger.info({ url: sim.url, kubeconfig: kubeconfigPath }, "sim: serving the Kubernetes API");
    if (options.churnPerSecond > 0) {
      churn = new ChurnGenerator(sim, {
        ratePerSecond: options.churnPerSecond,
        seed: options.seed ?? 1,
        signal: options.signal,
      });
      churn.start();
      const c = churn;
      statsTimer = setInterval(() => {
        const s = c.stats;
        logger.info(
          {
            changes: s.changes,
            lagged: s.lagged,
            errors: s.errors,
            watches: sim.openWatches,
            resourceVersion: sim.resourceVersion,
          },
          "sim: churn",
        );
      }, options.statsIntervalMs ?? 10_000);
    }
    options.onReady?.({ url: sim.url, kubeconfigPath, sim });
    if (!options.signal.aborted) await once(options.signal, "abort");
  } finally {
    if (statsTimer !== undefined) clearInterval(statsTimer);
    churn?.stop();
    await sim.close();
    if (tempDir !== undefined) await rm(tempDir, { recursive: true, force: true });
    logger.info("sim: stopped");
  }
}
