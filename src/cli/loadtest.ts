import { Command, InvalidArgumentError, Option } from "commander";
import { join } from "node:path";
import {
  LoadtestOptionsError,
  SCENARIOS,
  parseChurnRates,
  parseScenarios,
  resolveLoadtestOptions,
} from "../../loadtest/options.js";
import type { RawLoadtestOptions } from "../../loadtest/options.js";
import { runLoadtest } from "../../loadtest/run.js";
import { wholeNumber } from "./args.js";

function wrap<T>(parse: (v: string) => T): (v: string) => T {
  return (v) => {
    try {
      return parse(v);
    } catch (err) {
      if (err instanceof LoadtestOptionsError) throw new InvalidArgumentError(err.message);
      throw err;
    }
  };
}

interface LoadtestFlags {
  nodes?: number;
  podsPerNode?: number;
  agents?: number;
  churn?: number[];
  duration?: number;
  referenceChurn?: number;
  workers?: number;
  scenario?: ReturnType<typeof parseScenarios>;
  out?: string;
  cpuProf?: boolean;
  cpuProfAgents?: boolean;
  serverLogs?: boolean;
  fullAgents?: number;
  sampleAgents?: number;
  slowPercent?: number;
  syncTimeout?: number;
  progress?: boolean;
  seed?: number;
  flushWindowMs?: number;
  replicas?: number;
  replicaDrainMs?: number;
  serverSetting?: string[];
  serverNodeOption?: string[];
}

/** `tabby loadtest`: the load test of loadtest/ (docs/LOADTEST.md). Exits 1 when verification fails. */
export function loadtestCommand(): Command {
  return new Command("loadtest")
    .description(
      "Run the load test: a simulated cluster, a tabby server and many agents in worker processes; writes report.json, summary.md and SVG charts.",
    )
    .option("--nodes <n>", "simulated nodes (default 1000)", wholeNumber(1))
    .option("--pods-per-node <n>", "pods per node (default 30)", wholeNumber(1))
    .option("--agents <n>", "agent connections (default 1000)", wholeNumber(1))
    .option(
      "--churn <rates>",
      "steady churn rates, changes/s, comma-separated (default 100,1000,5000)",
      wrap(parseChurnRates),
    )
    .option(
      "--reference-churn <n>",
      "churn rate of slow-agents, reconnect-storm and the run ceiling mirrors (default: the --churn rate closest to 1000)",
      wholeNumber(1),
    )
    .option("--duration <s>", "seconds of churn per measured scenario (default 30)", wholeNumber(1))
    .option("--workers <n>", "agent worker processes (default 8)", wholeNumber(1))
    .addOption(
      new Option(
        "--scenario <list>",
        `"all" or a comma-separated list of: ${SCENARIOS.join(", ")} (default all)`,
      ).argParser(wrap(parseScenarios)),
    )
    .option("--out <dir>", "results folder (default results/<timestamp>)")
    .option("--cpu-prof", "run the server with --cpu-prof (profiles in <out>/profiles)")
    .option("--cpu-prof-agents", "run the agent workers with --cpu-prof too (profiles in <out>/profiles)")
    .option("--server-logs", "keep every server's log in <out>/logs/replica-<slot>.log")
    .option(
      "--full-agents <n>",
      "agents with a full, verified mirror (default max(2, 1% of agents))",
      wholeNumber(1),
    )
    .option(
      "--sample-agents <n>",
      "lite agents that decode every change, for latency; the other lite agents skim (default max(1, 1%))",
      wholeNumber(0),
    )
    .option("--slow-percent <p>", "percentage of agents that stop reading in slow-agents (default 5)", Number)
    .option(
      "--sync-timeout <s>",
      "limit of every wait for agents to sync and mirrors to match (default 120)",
      wholeNumber(1),
    )
    .option("--flush-window-ms <ms>", "the server's flush window (default: the server's)", wholeNumber(0))
    .option("--seed <n>", "PRNG seed of the cluster and the churn (default 1)", wholeNumber(0))
    .option(
      "--replicas <n>",
      "tabby replicas, each listing the others in --peers; agents spread over them (default 1; scale-out and rolling-restart need 2+)",
      wholeNumber(1),
    )
    .option(
      "--replica-drain-ms <ms>",
      "with several replicas: each one's --drain-ms, over which a SIGTERMed replica moves its sessions (default 10000)",
      wholeNumber(0),
    )
    .option(
      "--server-setting <name=value>",
      "a tabby serve flag for the server, repeatable (e.g. --server-setting ingest-worker=false)",
      (v: string, all: string[] = []) => [...all, v],
    )
    .option(
      "--server-node-option <flag>",
      "a Node option for the servers, repeatable (default: the image's, --max-semi-space-size=2; none: Node's defaults)",
      (v: string, all: string[] = []) => [...all, v],
    )
    .option("--no-progress", "no progress bar")
    .action(async (flags: LoadtestFlags) => {
      const raw: RawLoadtestOptions = {
        ...(flags.nodes !== undefined && { nodes: flags.nodes }),
        ...(flags.podsPerNode !== undefined && { podsPerNode: flags.podsPerNode }),
        ...(flags.agents !== undefined && { agents: flags.agents }),
        ...(flags.churn !== undefined && { churnRates: flags.churn }),
        ...(flags.duration !== undefined && { durationSeconds: flags.duration }),
        ...(flags.referenceChurn !== undefined && { referenceChurn: flags.referenceChurn }),
        ...(flags.workers !== undefined && { workers: flags.workers }),
        ...(flags.scenario !== undefined && { scenarios: flags.scenario }),
        ...(flags.out !== undefined && { outDir: flags.out }),
        ...(flags.cpuProf !== undefined && { isCpuProfiled: flags.cpuProf }),
        ...(flags.cpuProfAgents !== undefined && { isAgentCpuProfiled: flags.cpuProfAgents }),
        ...(flags.serverLogs !== undefined && { isServerLogged: flags.serverLogs }),
        ...(flags.fullAgents !== undefined && { fullAgents: flags.fullAgents }),
        ...(flags.sampleAgents !== undefined && { sampleAgents: flags.sampleAgents }),
        ...(flags.slowPercent !== undefined && { slowPercent: flags.slowPercent }),
        ...(flags.syncTimeout !== undefined && { syncTimeoutSeconds: flags.syncTimeout }),
        ...(flags.flushWindowMs !== undefined && { flushWindowMs: flags.flushWindowMs }),
        ...(flags.seed !== undefined && { seed: flags.seed }),
        ...(flags.replicas !== undefined && { replicas: flags.replicas }),
        ...(flags.replicaDrainMs !== undefined && { replicaDrainMs: flags.replicaDrainMs }),
        ...(flags.serverSetting !== undefined && { serverSettings: flags.serverSetting }),
        ...(flags.serverNodeOption !== undefined && { serverNodeOptions: flags.serverNodeOption }),
        hasProgressBar: flags.progress !== false,
      };
      let options;
      try {
        options = resolveLoadtestOptions(raw);
      } catch (err) {
        if (err instanceof LoadtestOptionsError) {
          console.error(`tabby loadtest: ${err.message}`);
          process.exitCode = 2;
          return;
        }
        throw err;
      }
      const controller = new AbortController();
      const onSignal = (): void => controller.abort();
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      try {
        const report = await runLoadtest(options, {
          signal: controller.signal,
          command: ["tabby", ...process.argv.slice(2)].join(" "),
        });
        console.log(`report: ${join(options.outDir, "report.json")}`);
        console.log(`summary: ${join(options.outDir, "summary.md")}`);
        if (!report.verified) {
          console.error(`tabby loadtest: ${report.error ?? "verification failed"}`);
          process.exitCode = 1;
        }
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
    });
}
