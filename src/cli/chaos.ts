import { Command, Option } from "commander";
import { wholeNumber } from "./args.js";

interface ChaosFlags {
  runs: number;
  seed: number;
  agents: number;
  nodes: number;
  servers: number;
  durationMs: number;
  churn: number;
  settleTimeoutMs: number;
  startTimeoutMs: number;
  simProcess: "auto" | "child" | "in-process";
  out?: string;
}

/**
 * `tabby chaos`: seeded runs of faults mixed under churn (src/chaos), each checked by comparing every
 * agent's mirror with the simulator's state converted. Exits 1 when a run diverged or could not be carried
 * out. DIR/chaos.json is rewritten after every run.
 */
export function chaosCommand(): Command {
  return new Command("chaos")
    .description(
      "Run seeded chaos runs: a simulated API server, tabby servers as processes, agents behind a faulty TCP proxy; every mirror must equal the cluster after each run. Writes DIR/chaos.json.",
    )
    .option("--runs <n>", "runs (run i uses seed + i)", wholeNumber(1), 10)
    .option("--seed <n>", "seed of the first run (--seed N --runs 1 repeats run N)", wholeNumber(0), 1)
    .option(
      "--agents <n>",
      "agents (views felix, bgp, node-status, tunnel-ip-allocation in turn)",
      wholeNumber(1),
      8,
    )
    .option("--nodes <n>", "simulated nodes", wholeNumber(1), 4)
    .option("--servers <n>", "tabby server processes", wholeNumber(1), 2)
    .option("--duration-ms <ms>", "churn and faults per run", wholeNumber(1000), 8000)
    .option("--churn <n>", "object writes per second during a run", wholeNumber(0), 40)
    .option(
      "--settle-timeout-ms <ms>",
      "a run not converged this long after its last fault is divergent",
      wholeNumber(1000),
      30_000,
    )
    .option(
      "--start-timeout-ms <ms>",
      "a server not ready, or agents not in sync before the faults, this long: the run fails",
      wholeNumber(1000),
      60_000,
    )
    .addOption(
      new Option(
        "--sim-process <where>",
        "where the simulator runs: auto (a child process from 51 agents on, else the runner's process), child, in-process",
      )
        .choices(["auto", "child", "in-process"])
        .default("auto"),
    )
    .option("--out <dir>", "write DIR/chaos.json (after every run)")
    .action(async (flags: ChaosFlags) => {
      const { runChaos } = await import("../chaos/campaign.js");
      const { killServersNow } = await import("../chaos/run.js");
      const { killSimulatorsNow } = await import("../chaos/upstream.js");
      // Interrupted: no server or simulator process of the run under way outlives the runner (chaos.json has
      // the runs so far).
      const onSignal = (signal: NodeJS.Signals): void => {
        killServersNow();
        killSimulatorsNow();
        process.stderr.write(`chaos: ${signal}: stopped\n`);
        process.exit(130);
      };
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      const report = await runChaos({
        runs: flags.runs,
        seed: flags.seed,
        agents: flags.agents,
        nodes: flags.nodes,
        servers: flags.servers,
        durationMs: flags.durationMs,
        churnPerSecond: flags.churn,
        faults: [3, 7],
        settleTimeoutMs: flags.settleTimeoutMs,
        startTimeoutMs: flags.startTimeoutMs,
        simProcess: flags.simProcess,
        out: flags.out,
        onError: (e, i) => {
          const why = e.explanation ?? "unexplained: the run counts as failed";
          process.stderr.write(`run ${i + 1}/${flags.runs} seed ${e.seed}: ERROR in ${e.phase} (${why})\n`);
          process.stderr.write(`  ${e.message.split("\n", 1)[0] ?? ""}\n`);
          process.stderr.write(`  reproduce: tabby chaos --seed ${e.seed} --runs 1\n`);
        },
        onRun: (r, i) => {
          const kinds = r.schedule.map((f) => f.kind).join(",");
          const verdict = r.isDivergent
            ? "DIVERGENT"
            : `converged in ${r.convergeSeconds?.toFixed(2)} s (checked at ${r.checkedSeconds?.toFixed(2)} s)`;
          process.stderr.write(`run ${i + 1}/${flags.runs} seed ${r.seed}: ${verdict} [${kinds}]\n`);
          if (r.isDivergent) {
            process.stderr.write(`  reproduce: tabby chaos --seed ${r.seed} --runs 1\n`);
            process.stderr.write(`  schedule: ${JSON.stringify(r.schedule)}\n`);
            process.stderr.write(`  mirrors: ${JSON.stringify(r.failures.slice(0, 5))}\n`);
          }
        },
      });
      process.stdout.write(
        `${JSON.stringify({
          runs: report.runs,
          divergent: report.divergent,
          failed: report.failed,
          notRun: report.notRun,
          faultsByKind: report.faultsByKind,
          convergeSeconds: report.convergeSeconds,
          checkedSeconds: report.checkedSeconds,
        })}\n`,
      );
      // A run not carried out proves nothing either: it fails the command too, with its reason printed.
      if (report.failed > 0 || report.notRun > 0) process.exitCode = 1;
    });
}
