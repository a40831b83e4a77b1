import { mkdir, rename, writeFile } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { ChaosRunError, chaosRun } from "./run.js";
import type { ProcFootprint, RunOptions, RunPhase, RunResult } from "./run.js";
import type { Fault } from "./schedule.js";

export interface CampaignOptions extends RunOptions {
  readonly runs: number;
  /** The first run's seed; run i uses seed + i (so `--seed N --runs 1` repeats run N). */
  readonly seed: number;
  /** Where chaos.json goes (rewritten after every run); undefined: not written. */
  readonly out: string | undefined;
  /** Called after each run that was carried out (progress). */
  readonly onRun?: (r: RunResult, index: number) => void;
  /** Called after each run that could not be carried out. */
  readonly onError?: (e: RunError, index: number) => void;
}

/** A run that could not be carried out (it threw before its check gave a verdict). */
export interface RunError {
  readonly seed: number;
  readonly phase: RunPhase;
  readonly message: string;
  /**
   * Why, when the failure is a known problem of the machine the runner runs on, not of tabby (its
   * node_modules or build vanished under it, a full disk): such a run counts as not run. Undefined: an
   * unexplained error, and the run counts as failed.
   */
  readonly explanation: string | undefined;
  readonly schedule: readonly Fault[];
  /** The machine's 1-minute load average when the run failed. */
  readonly loadAverage1m: number;
}

/** The growth of one resource of a server across runs whose server process lived through the run. */
export interface GrowthSummary {
  readonly p50: number;
  readonly max: number;
}

export interface ChaosReport {
  /** False in the file written between the runs of a campaign still under way (or cut short). */
  readonly isComplete: boolean;
  /** Runs asked for. */
  readonly runsPlanned: number;
  /** Runs carried out and checked. */
  readonly runs: number;
  /** Runs with a mirror that did not converge to the cluster's state. */
  readonly divergent: number;
  /** Divergent runs plus runs with an unexplained error: must be 0. */
  readonly failed: number;
  /** Runs that could not be carried out for an explained reason (see `errors[].explanation`). */
  readonly notRun: number;
  readonly faultsByKind: Readonly<Record<string, number>>;
  readonly convergeSeconds: Quantiles;
  /** When the runner's check found the mirrors converged (RunResult.checkedSeconds). */
  readonly checkedSeconds: Quantiles;
  /**
   * fds, sockets and RSS of each server after the run minus before it, over the (run, server) pairs whose
   * process was not restarted by a fault; `samples` is how many.
   */
  readonly serverGrowth: {
    readonly samples: number;
    readonly fds: GrowthSummary;
    readonly sockets: GrowthSummary;
    readonly rssMiB: GrowthSummary;
  };
  /** Each divergent run: its seed (rerun with `tabby chaos --seed N --runs 1`), schedule and mirrors. */
  readonly divergentRuns: readonly RunResult[];
  /** Runs that could not be carried out: explained ones count as not run, the others as failed. */
  readonly errors: readonly RunError[];
  readonly options: Omit<CampaignOptions, "onRun" | "onError">;
  readonly machine: {
    readonly cpus: number;
    readonly node: string;
    readonly date: string;
    /** The 1-minute load average at the end of the runs: median and highest. */
    readonly loadAverage1m: { readonly p50: number; readonly max: number };
  };
  readonly wallSeconds: number;
  readonly results: readonly Omit<RunResult, "schedule" | "failures">[];
}

/** Median, 99th percentile and highest of a set of times, seconds. */
export interface Quantiles {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/** Median, p99 and highest of the values that are defined (0 for none). */
function quantiles(values: readonly (number | undefined)[]): Quantiles {
  const sorted = values.filter((s): s is number => s !== undefined).sort((a, b) => a - b);
  return { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), max: sorted.at(-1) ?? 0 };
}

/** The q-quantile (nearest rank) of sorted values; 0 for none. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** Known failures of the machine the runner runs on (not of tabby), by what their message says. */
const ENVIRONMENT_FAILURES: readonly { readonly pattern: RegExp; readonly explanation: string }[] = [
  {
    pattern: /ERR_MODULE_NOT_FOUND|Cannot find (package|module)/,
    explanation:
      "a tabby process could not load its code: the node_modules or build the runner uses changed or vanished under it (an npm ci, npm run build or cleanup in that directory during the campaign); run long campaigns from a copy nothing else writes",
  },
  {
    pattern: /\bENOSPC\b/,
    explanation: "the disk is full",
  },
];

/** A start that timed out (a server not ready, agents not in sync before the first fault). */
const START_TIMEOUT = /did not report ready within|did not sync before the faults/;
/** Load average per CPU above which a start that timed out is put down to the machine. */
const OVERLOADED_PER_CPU = 4;

/**
 * The explanation of a run error that is the environment's, not tabby's; undefined when unexplained. A
 * start that timed out in the setup phase is explained only on a machine whose load average was above
 * four per CPU (other work starved the runner): then nothing of tabby was tested yet.
 */
export function explainRunError(
  message: string,
  phase: RunPhase,
  load: { readonly loadAverage1m: number; readonly cpus: number },
): string | undefined {
  const known = ENVIRONMENT_FAILURES.find((f) => f.pattern.test(message));
  if (known !== undefined) return known.explanation;
  if (
    phase === "setup" &&
    START_TIMEOUT.test(message) &&
    load.loadAverage1m > OVERLOADED_PER_CPU * load.cpus
  ) {
    return `the machine was overloaded (load average ${load.loadAverage1m.toFixed(1)} on ${load.cpus} CPUs): the run could not start in time`;
  }
  return undefined;
}

function toRunError(seed: number, err: unknown): RunError {
  const message = err instanceof Error ? err.message : String(err);
  const phase = err instanceof ChaosRunError ? err.phase : "setup";
  const loadAverage1m = loadavg()[0] ?? 0;
  return {
    seed,
    phase,
    message: message.slice(0, 4000),
    explanation: explainRunError(message, phase, { loadAverage1m, cpus: cpus().length }),
    schedule: err instanceof ChaosRunError ? err.schedule : [],
    loadAverage1m,
  };
}

/**
 * Runs `runs` seeded chaos runs one after the other and reports. With `out`, DIR/chaos.json is rewritten
 * after every run (atomically), so that a long campaign that is interrupted keeps what it measured.
 */
export async function runChaos(o: CampaignOptions): Promise<ChaosReport> {
  const startedMs = Date.now();
  const results: RunResult[] = [];
  const errors: RunError[] = [];
  for (let i = 0; i < o.runs; i++) {
    const seed = o.seed + i;
    const run: RunOptions = {
      seed,
      agents: o.agents,
      nodes: o.nodes,
      servers: o.servers,
      durationMs: o.durationMs,
      churnPerSecond: o.churnPerSecond,
      faults: o.faults,
      settleTimeoutMs: o.settleTimeoutMs,
      ...(o.kinds !== undefined && { kinds: o.kinds }),
      ...(o.startTimeoutMs !== undefined && { startTimeoutMs: o.startTimeoutMs }),
      ...(o.simProcess !== undefined && { simProcess: o.simProcess }),
    };
    try {
      const r = await chaosRun(run);
      results.push(r);
      o.onRun?.(r, i);
    } catch (err) {
      const e = toRunError(seed, err);
      errors.push(e);
      o.onError?.(e, i);
    }
    if (i < o.runs - 1) await writeReport(o.out, buildReport(o, results, errors, startedMs, false));
  }
  const report = buildReport(o, results, errors, startedMs, true);
  await writeReport(o.out, report);
  return report;
}

async function writeReport(out: string | undefined, report: ChaosReport): Promise<void> {
  if (out === undefined) return;
  await mkdir(out, { recursive: true });
  const file = join(out, "chaos.json");
  await writeFile(`${file}.tmp`, `${JSON.stringify(report, null, 2)}\n`);
  await rename(`${file}.tmp`, file);
}

/** Median and highest of `values`. */
function spread(values: number[]): GrowthSummary {
  const sorted = values.sort((a, b) => a - b);
  return { p50: quantile(sorted, 0.5), max: sorted.at(-1) ?? 0 };
}

/** The report of the runs so far. */
export function buildReport(
  o: CampaignOptions,
  results: readonly RunResult[],
  errors: readonly RunError[],
  startedMs: number,
  isComplete: boolean,
): ChaosReport {
  const faultsByKind: Record<string, number> = {};
  for (const r of results) {
    for (const [k, n] of Object.entries(r.faultsByKind)) faultsByKind[k] = (faultsByKind[k] ?? 0) + n;
  }
  const lived = results.flatMap((r) =>
    r.servers.flatMap((s): { before: ProcFootprint; after: ProcFootprint }[] =>
      s.before !== undefined && s.after !== undefined && s.before.pid === s.after.pid
        ? [{ before: s.before, after: s.after }]
        : [],
    ),
  );
  const divergent = results.filter((r) => r.isDivergent).length;
  const unexplained = errors.filter((e) => e.explanation === undefined).length;
  const { onRun: _onRun, onError: _onError, ...options } = o;
  return {
    isComplete,
    runsPlanned: o.runs,
    runs: results.length,
    divergent,
    failed: divergent + unexplained,
    notRun: errors.length - unexplained,
    faultsByKind,
    convergeSeconds: quantiles(results.map((r) => r.convergeSeconds)),
    checkedSeconds: quantiles(results.map((r) => r.checkedSeconds)),
    serverGrowth: {
      samples: lived.length,
      fds: spread(lived.map((l) => l.after.fds - l.before.fds)),
      sockets: spread(lived.map((l) => l.after.sockets - l.before.sockets)),
      rssMiB: spread(lived.map((l) => Math.round((l.after.rssBytes - l.before.rssBytes) / 2 ** 20))),
    },
    divergentRuns: results.filter((r) => r.isDivergent),
    errors,
    options,
    machine: {
      cpus: cpus().length,
      node: process.version,
      date: new Date(startedMs).toISOString(),
      loadAverage1m: spread([...results.map((r) => r.loadAverage1m), ...errors.map((e) => e.loadAverage1m)]),
    },
    wallSeconds: (Date.now() - startedMs) / 1000,
    results: results.map(({ schedule: _s, failures: _f, ...rest }) => rest),
  };
}
