import { Command, InvalidArgumentError } from "commander";
import { runSim } from "../sim/run.js";
import { wholeNumber } from "./args.js";
import { createLogger } from "./logger.js";
import { reportReady } from "./ipc.js";

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
  calicoApiGroup: "crd.projectcalico.org/v1" | "projectcalico.org/v3";
}

export function simCommand(): Command {
  return new Command("sim")
    .description("Run a Kubernetes API simulator with a seeded, churning Calico cluster (loopback only).")
    .option("--nodes <n>", "nodes in the simulated cluster", wholeNumber(0), 100)
    .option("--pods-per-node <n>", "pods per node", wholeNumber(0), 30)
    .option("--churn <n>", "changes per second (0: none)", wholeNumber(0), 0)
    .option("--port <port>", "port to listen on (0: any free port)", wholeNumber(0), 6443)
    .option("--host <addr>", "loopback address to bind", "127.0.0.1")
    .option("--seed <n>", "seed of the cluster and of the churn", wholeNumber(0), 1)
    .option("--kubeconfig-out <path>", "where to write a kubeconfig for the simulator (default: a temp file)")
    .option("--history-limit <n>", "watch events kept for resuming (older: 410 Gone)", wholeNumber(1), 10_000)
    .option(
      "--endpoint-slice-version <v>",
      "discovery.k8s.io version served: v1 or v1beta1",
      (v) => {
        if (v !== "v1" && v !== "v1beta1") throw new InvalidArgumentError("must be v1 or v1beta1");
        return v;
      },
      "v1",
    )
    .option(
      "--calico-api-group <group>",
      "API the Calico CRDs are served under: crd.projectcalico.org/v1 or projectcalico.org/v3",
      (v) => {
        if (v !== "crd.projectcalico.org/v1" && v !== "projectcalico.org/v3") {
          throw new InvalidArgumentError("must be crd.projectcalico.org/v1 or projectcalico.org/v3");
        }
        return v;
      },
      "crd.projectcalico.org/v1",
    )
    .option("--log-level <level>", "log level", "info")
    .action(async (opts: SimCommandOptions & { logLevel: string }) => {
      const abort = new AbortController();
      const stop = (): void => abort.abort();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      // A parent (demo, load test) that goes away takes the simulator with it.
      if (typeof process.send === "function") process.once("disconnect", stop);
      await runSim({
        host: opts.host,
        port: opts.port,
        historyLimit: opts.historyLimit,
        endpointSliceVersion: opts.endpointSliceVersion,
        calicoApiGroup: opts.calicoApiGroup,
        nodes: opts.nodes,
        podsPerNode: opts.podsPerNode,
        churnPerSecond: opts.churn,
        seed: opts.seed,
        signal: abort.signal,
        logger: createLogger(opts.logLevel, "tabby-sim"),
        ...(opts.kubeconfigOut !== undefined && { kubeconfigPath: opts.kubeconfigOut }),
        onReady: ({ url, kubeconfigPath, sim }) =>
          reportReady("sim", { url, port: sim.port, kubeconfig: kubeconfigPath }),
      });
    });
}
