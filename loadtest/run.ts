import { readFileSync } from "node:fs";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { availableParallelism, cpus, loadavg, totalmem } from "node:os";
import { join, relative } from "node:path";
import { RESOURCES } from "../src/server/datastore/index.js";
import { connectionsChart, latencyChart, resourceChart } from "./charts.js";
import { Harness, SERVER, SIM } from "./harness.js";
import type { LoadtestOptions } from "./options.js";
import { hasTabbyScenario, referenceChurnRate } from "./options.js";
import { Progress } from "./progress.js";
import { REPORT_SCHEMA_VERSION, checkTargets, maxChurnWithinP99 } from "./report.js";
import type { LoadtestReport, MachineInfo, ScenarioResult } from "./report.js";
import { baseline } from "./scenarios/baseline.js";
import { ceiling } from "./scenarios/ceiling.js";
import { round } from "./scenarios/common.js";
import type { ScenarioContext } from "./scenarios/common.js";
import { connectStorm } from "./scenarios/connect-storm.js";
import { reconnectStorm } from "./scenarios/reconnect-storm.js";
import { rollingRestart } from "./scenarios/rolling-restart.js";
import { scaleOut } from "./scenarios/scale-out.js";
import { slowAgents } from "./scenarios/slow-agents.js";
import { steadyChurn } from "./scenarios/steady-churn.js";
import { renderSummary } from "./summary.js";

export function machineInfo(loadAtStart: number): MachineInfo {
  let cpuModel = cpus()[0]?.model ?? "unknown";
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (m?.[1] !== undefined) cpuModel = m[1].trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  return {
    nproc: availableParallelism(),
    cpuModel,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    memTotalBytes: totalmem(),
    loadAverage: { start: loadAtStart, end: loadavg()[0] ?? 0 },
  };
}

export interface RunDeps {
  /** Aborting stops the run (the children are killed and a partial report is written). */
  readonly signal?: AbortSignal;
  /** The command line, for the report. */
  readonly command?: string;
  /** Log lines (default: stderr). */
  readonly log?: (line: string) => void;
}

/**
 * Runs the selected scenarios one after the other on one simulator, server and set of agents, then writes
 * report.json, summary.md and the SVG charts into the results folder. Every child process is killed at the
 * end, also on failure or abort. Resolves with the report (also when a scenario failed verification).
 */
export async function runLoadtest(options: LoadtestOptions, deps: RunDeps = {}): Promise<LoadtestReport> {
  const startedAt = new Date();
  const loadAtStart = loadavg()[0] ?? 0;
  const controller = new AbortController();
  const onAbort = (): void => controller.abort();
  deps.signal?.addEventListener("abort", onAbort, { once: true });
  if (deps.signal?.aborted === true) controller.abort();
  const h = new Harness(options, controller.signal);
  await mkdir(h.outDir, { recursive: true });
  const progress = new Progress({
    isEnabled: options.hasProgressBar,
    ...(deps.log !== undefined && { log: deps.log }),
  });
  const ctx: ScenarioContext = {
    h,
    progress,
    resources: 0,
    totalKeys: 0,
    results: [],
    recordings: new Map(),
  };
  const onExit = (): void => h.killAllNow();
  process.once("exit", onExit);
  let error: string | undefined;
  try {
    await runScenarios(ctx);
  } catch (err) {
    if (controller.signal.aborted) {
      error = "aborted";
      progress.log("aborted");
    } else {
      error = err instanceof Error ? err.message : String(err);
      progress.log(`stopped: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
  } finally {
    progress.end();
    await h.close();
    process.off("exit", onExit);
    deps.signal?.removeEventListener("abort", onAbort);
  }
  return writeOutputs(ctx, options, { startedAt, loadAtStart }, deps.command ?? "tabby loadtest", error);
}

async function runScenarios(ctx: ScenarioContext): Promise<void> {
  const { h, progress } = ctx;
  const o = h.options;
  progress.log(`seeding ${o.nodes} nodes × ${o.podsPerNode} pods in the simulator`);
  const sim = await h.startSim();
  progress.log(`simulator ready at ${sim.url} with ${sim.objects} objects`);
  if (hasTabbyScenario(o)) {
    // scale-out starts with one replica fewer: the last one joins during the scenario.
    const initial = o.replicas > 1 && o.scenarios.includes("scale-out") ? o.replicas - 1 : o.replicas;
    for (let slot = 0; slot < initial; slot++) {
      const info = await h.startReplica(slot);
      progress.log(
        `${o.replicas > 1 ? `replica ${slot}` : "server"} ${info.serverId} ready on port ${info.port} (pid ${info.pid}, ${h.serverRuntime ?? "?"})`,
      );
    }
    if (h.serverRuntime === "tsx") {
      progress.log("the server runs through tsx (no fresh `npm run build`): its RSS includes tsx's loader");
    }
    await h.startWorkers();
    ctx.results.push(await connectStorm(ctx));
    report(ctx);
    const referenceRate = referenceChurnRate(o);
    if (o.scenarios.includes("scale-out")) {
      ctx.results.push(await scaleOut(ctx, referenceRate));
      report(ctx);
    }
    if (o.scenarios.includes("rolling-restart")) {
      ctx.results.push(await rollingRestart(ctx, referenceRate));
      report(ctx);
    }
    // Churn rates in ascending order. The slow agents and the reconnect storm (at the reference rate) go
    // right after the reference rate's run, which the slow agents are compared with, and before the higher
    // rates, which may overload the machine and leave agents behind for minutes.
    const reference = referenceChurnRate(o);
    const rates = o.scenarios.includes("churn") ? [...o.churnRates].sort((a, b) => a - b) : [];
    const atReference = async (): Promise<void> => {
      if (o.scenarios.includes("slow-agents")) {
        ctx.results.push(await slowAgents(ctx, reference));
        report(ctx);
      }
      if (o.scenarios.includes("reconnect-storm")) {
        ctx.results.push(await reconnectStorm(ctx, reference));
        report(ctx);
      }
    };
    let isReferenceDone = false;
    for (const rate of rates) {
      if (!isReferenceDone && rate > reference) {
        await atReference();
        isReferenceDone = true;
      }
      ctx.results.push(await steadyChurn(ctx, rate));
      report(ctx);
    }
    if (!isReferenceDone) await atReference();
    if (o.scenarios.includes("ceiling")) await runCeiling(ctx, reference);
  }
  if (o.scenarios.includes("baseline")) {
    ctx.results.push(await baseline(ctx, Math.min(...o.churnRates)));
    report(ctx);
  }
}

/**
 * The ceiling mirrors the churn run at the reference rate (or the recorded churn run closest to it; the
 * reference run first when no churn run was asked for), and sets that run's `ceilingRatio`. It goes after
 * every tabby scenario: its agents leave the server for the broadcaster.
 */
async function runCeiling(ctx: ScenarioContext, reference: number): Promise<void> {
  const recorded = ctx.results.filter((s) => s.scenario === "churn" && ctx.recordings.has(s.name));
  let mirrored = recorded.reduce<ScenarioResult | undefined>(
    (best, s) =>
      best === undefined || Math.abs(s.churnPerSecond - reference) < Math.abs(best.churnPerSecond - reference)
        ? s
        : best,
    undefined,
  );
  if (mirrored === undefined) {
    ctx.progress.log(`ceiling: no churn run to mirror, running churn-${reference} first`);
    mirrored = await steadyChurn(ctx, reference);
    ctx.results.push(mirrored);
    report(ctx);
  }
  const result = await ceiling(ctx, mirrored);
  const index = ctx.results.indexOf(mirrored);
  ctx.results[index] = { ...mirrored, ceilingRatio: result.ceilingRatio };
  // The connect storm's ceiling: the agents' move to the broadcaster, which sent them tabby's snapshot.
  const storm = ctx.results.find((s) => s.scenario === "connect-storm");
  const stormSeconds = storm?.inSyncSeconds.connectStorm;
  const ceilingSeconds = result.inSyncSeconds.connectStorm;
  if (storm !== undefined && typeof ceilingSeconds === "number") {
    ctx.results[ctx.results.indexOf(storm)] = {
      ...storm,
      details: {
        ...storm.details,
        ceilingInSyncSeconds: ceilingSeconds,
        ceilingInSyncRatio:
          typeof stormSeconds === "number" && stormSeconds > 0
            ? round(ceilingSeconds / stormSeconds, 3)
            : null,
      },
    };
  }
  ctx.results.push(result);
  report(ctx);
}

function report(ctx: ScenarioContext): void {
  const s = ctx.results[ctx.results.length - 1];
  if (s === undefined) return;
  const l = s.latencyMs;
  const sync = s.inSyncSeconds.connectStorm ?? s.inSyncSeconds.reconnectStorm;
  ctx.progress.log(
    `${s.name}: ${s.verified ? "verified" : `NOT verified (${s.mismatches} mismatches)`}` +
      (sync === null ? "" : `, in sync in ${sync} s`) +
      (l.p99 === null ? "" : `, latency p50 ${l.p50} p99 ${l.p99} max ${l.max} ms`) +
      `, ${s.deliveredPerSecond} updates/s delivered` +
      (s.serverCpuSecondsPerSecond === null ? "" : `, server CPU ${s.serverCpuSecondsPerSecond}/s`) +
      (s.serverRssBytesMax === null ? "" : `, RSS ${(s.serverRssBytesMax / 1048576).toFixed(0)} MB`) +
      (s.wireBytesPerChange === null ? "" : `, ${s.wireBytesPerChange} wire B/change`) +
      (s.relistSeconds === null ? "" : `, relist ${s.relistSeconds} s`) +
      (s.ceilingRatio === null ? "" : `, ceiling ratio ${s.ceilingRatio}`) +
      `, ${s.upstreamWatches} API-side watches`,
  );
  const d = s.details;
  if (s.scenario === "scale-out" || s.scenario === "rolling-restart") {
    const fields = [
      "rebalanceSeconds",
      "movedSessions",
      "agentsMovedTwice",
      "maxOverMeanConnections",
      "spuriousUpdates",
      "snapshotsSent",
      "snapshotBytesSent",
      "resumesAcrossReplicas",
    ].filter((f) => d[f] !== undefined);
    ctx.progress.log(`  ${fields.map((f) => `${f} ${JSON.stringify(d[f])}`).join(", ")}`);
    const gap = d.moveGapMs as { p50: number | null; p99: number | null; count: number } | undefined;
    if (gap !== undefined && gap.count > 0) {
      ctx.progress.log(`  out of sync per move: p50 ${gap.p50} p99 ${gap.p99} ms over ${gap.count} moves`);
    }
  }
  for (const m of s.mismatchSamples.slice(0, 5)) ctx.progress.log(`  ${m}`);
}

async function writeOutputs(
  ctx: ScenarioContext,
  options: LoadtestOptions,
  { startedAt, loadAtStart }: { startedAt: Date; loadAtStart: number },
  command: string,
  error: string | undefined,
): Promise<LoadtestReport> {
  const { h } = ctx;
  const files = ["report.json", "summary.md", "latency.svg", "server.svg"];
  if (options.replicas > 1) {
    await writeFile(join(h.outDir, "replicas.svg"), connectionsChart(ctx.results, h.connectionSamples));
    files.push("replicas.svg");
  }
  await writeFile(join(h.outDir, "latency.svg"), latencyChart(ctx.results));
  await writeFile(
    join(h.outDir, "server.svg"),
    resourceChart(ctx.results, h.sampler.series(SERVER), h.sampler.series(SIM)),
  );
  if (h.profileDir !== undefined) {
    try {
      for (const f of await readdir(h.profileDir)) files.push(relative(h.outDir, join(h.profileDir, f)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
  const scenarios: ScenarioResult[] = ctx.results;
  const report: LoadtestReport = {
    schemaVersion: REPORT_SCHEMA_VERSION,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    command,
    machine: machineInfo(loadAtStart),
    serverRuntime: h.serverRuntime ?? null,
    options: { ...options },
    verified: error === undefined && scenarios.length > 0 && scenarios.every((s) => s.verified),
    scenarios,
    targets: checkTargets(scenarios, RESOURCES.length),
    maxChurnWithinP99_250ms: maxChurnWithinP99(scenarios),
    progressPollsMissed: h.slowWorkerAnswers,
    files,
    ...(error !== undefined && { error }),
  };
  await writeFile(join(h.outDir, "report.json"), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(join(h.outDir, "summary.md"), renderSummary(report));
  return report;
}
