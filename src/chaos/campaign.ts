import { mkdir, writeFile } from "node:fs/promises";
import { cpus } from "node:os";
import { join } from "node:path";
import { chaosRun } from "./run.js";
import type { RunOptions, RunResult } from "./run.js";

export interface CampaignOptions extends RunOptions {
  readonly runs: number;
  /** The first run's seed; run i uses seed + i (so `--seed N --runs 1` repeats run N). */
  readonly seed: number;
  /** Where chaos.json goes; undefined: not written. */
  readonly out: string | undefined;
  /** Called after each run (progress). */
  readonly onRun?: (r: RunResult, index: number) => void;
}

export interface ChaosReport {
  readonly runs: number;
  readonly divergent: number;
  readonly faultsByKind: Readonly<Record<string, number>>;
  readonly convergeSeconds: { readonly p50: number; readonly p99: number; readonly max: number };
  /** Each divergent run: its seed (rerun with `tabby chaos --seed N --runs 1`), schedule and mirrors. */
  readonly divergentRuns: readonly RunResult[];
  /** Runs that could not be carried out (the setup failed): not counted as divergent, listed here. */
  readonly errors: readonly { readonly seed: number; readonly message: string }[];
  readonly options: Omit<CampaignOptions, "onRun">;
  readonly machine: { readonly cpus: number; readonly node: string; readonly date: string };
  readonly wallSeconds: number;
  readonly results: readonly Omit<RunResult, "schedule" | "failures">[];
}

/** The q-quantile (nearest rank) of sorted values; 0 for none. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** Runs `runs` seeded chaos runs one after the other and reports; writes DIR/chaos.json when `out` is set. */
export async function runChaos(o: CampaignOptions): Promise<ChaosReport> {
  const startedMs = Date.now();
  const results: RunResult[] = [];
  const errors: { seed: number; message: string }[] = [];
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
    };
    try {
      const r = await chaosRun(run);
      results.push(r);
      o.onRun?.(r, i);
    } catch (err) {
      errors.push({ seed, message: err instanceof Error ? err.message : String(err) });
    }
  }
  const faultsByKind: Record<string, number> = {};
  for (const r of results) {
    for (const [k, n] of Object.entries(r.faultsByKind)) faultsByKind[k] = (faultsByKind[k] ?? 0) + n;
  }
  const converge = results
    .map((r) => r.convergeSeconds)
    .filter((s): s is number => s !== undefined)
    .sort((a, b) => a - b);
  const { onRun: _onRun, ...options } = o;
  const report: ChaosReport = {
    runs: results.length,
    divergent: results.filter((r) => r.isDivergent).length,
    faultsByKind,
    convergeSeconds: {
      p50: quantile(converge, 0.5),
      p99: quantile(converge, 0.99),
      max: converge.at(-1) ?? 0,
    },
    divergentRuns: results.filter((r) => r.isDivergent),
    errors,
    options,
    machine: { cpus: cpus().length, node: process.version, date: new Date(startedMs).toISOString() },
    wallSeconds: (Date.now() - startedMs) / 1000,
    results: results.map(({ schedule: _s, failures: _f, ...rest }) => rest),
  };
  if (o.out !== undefined) {
    await mkdir(o.out, { recursive: true });
    await writeFile(join(o.out, "chaos.json"), `${JSON.stringify(report, null, 2)}\n`);
  }
  return report;
}
