import { Command, InvalidArgumentError } from "commander";
import { ChurnGenerator, seedCluster } from "../sim/churn.js";
import { startSimulator, writeKubeconfig } from "../sim/index.js";
import { reportReady } from "./ipc.js";

function whole(min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min)
      throw new InvalidArgumentError(`must be a whole number >= ${min}`);
    return n;
  };
}

interface SimCommandOptions {
  nodes: number;
  podsPerNode: number;
  churn: number;
  port: number;
  host: string;
  seed: number;
  kubeconfigOut?: string;
  historyLimit: number;
  endpointSliceVersion: "v1" | "v1beta1";
}

export function simCommand(): Command {
  return new Command("sim")
    .description("Run a Kubernetes API simulator with a seeded, churning Calico cluster (loopback only).")
    .option("--nodes <n>", "nodes in the simulated cluster", whole(0), 100)
    .option("--pods-per-node <n>", "pods per node", whole(0), 30)
    .option("--churn <n>", "changes per second (0: none)", whole(0), 0)
    .option("--port <port>", "port to listen on (0: any free port)", whole(0), 6443)
    .option("--host <addr>", "loopback address to bind", "127.0.0.1")
    .option("--seed <n>", "seed of the cluster and of the churn", whole(0), 1)
    .option("--kubeconfig-out <path>", "where to write a kubeconfig for the simulator (default: a temp file)")
    .option("--history-limit <n>", "watch events kept for resuming (older: 410 Gone)", whole(1), 10_000)
    .option(
      "--endpoint-slice-version <v>",
      "discovery.k8s.io version served: v1 or v1beta1",
      (v) => {
        if (v !== "v1" && v !== "v1beta1") throw new InvalidArgumentError("must be v1 or v1beta1");
        return v;
      },
      "v1",
    )
    .action(async (opts: SimCommandOptions) => {
      const sim = await startSimulator({
        host: opts.host,
        port: opts.port,
        historyLimit: opts.historyLimit,
        endpointSliceVersion: opts.endpointSliceVersion,
      });
      const abort = new AbortController();
      try {
        const seeded = seedCluster(sim, {
          nodes: opts.nodes,
          podsPerNode: opts.podsPerNode,
          seed: opts.seed,
        });
        const kubeconfig = await writeKubeconfig(sim.kubeconfigYaml(), opts.kubeconfigOut);
        const churn =
          opts.churn > 0
            ? new ChurnGenerator(sim, { ratePerSecond: opts.churn, seed: opts.seed, signal: abort.signal })
            : undefined;
        churn?.start();
        const objects = Object.values(seeded.counts).reduce((a, b) => a + b, 0);
        console.error(
          `tabby sim: ${sim.url} (${opts.nodes} nodes, ${objects} objects, churn ${opts.churn}/s); kubeconfig ${kubeconfig}`,
        );
        reportReady("sim", { url: sim.url, port: sim.port, kubeconfig, objects });
        await new Promise<void>((resolve) => {
          process.once("SIGINT", () => resolve());
          process.once("SIGTERM", () => resolve());
          if (typeof process.send === "function") process.once("disconnect", () => resolve());
        });
        abort.abort();
      } finally {
        abort.abort();
        await sim.close();
      }
    });
}
