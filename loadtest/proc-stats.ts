import { readFile } from "node:fs/promises";

/** Kernel clock ticks per second for /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

export interface ProcSample {
  /** Epoch milliseconds. */
  readonly atMs: number;
  /** User + system CPU time of the process so far, seconds. */
  readonly cpuSeconds: number;
  readonly rssBytes: number;
}

/**
 * User + system CPU seconds from a /proc/<pid>/stat or /proc/<pid>/task/<tid>/stat line (NaN if it is not
 * one).
 */
export function statCpuSeconds(stat: string): number {
  // The command name (field 2) may contain spaces: the fields after it start past the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15, i.e. 11 and 12 counted from field 3.
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** Reads CPU time and RSS of a process from /proc; undefined when it is gone (or not on Linux). */
export async function readProcSample(pid: number, nowMs = Date.now()): Promise<ProcSample | undefined> {
  try {
    const [stat, status] = await Promise.all([
      readFile(`/proc/${pid}/stat`, "utf8"),
      readFile(`/proc/${pid}/status`, "utf8"),
    ]);
    const cpuSeconds = statCpuSeconds(stat);
    const rss = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    if (!Number.isFinite(cpuSeconds) || rss === null) return undefined;
    return { atMs: nowMs, cpuSeconds, rssBytes: Number(rss[1]) * 1024 };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "ESRCH") {
      return undefined;
    }
    throw err;
  }
}

/** A labelled series of samples of one process. */
export interface ProcSeries {
  readonly label: string;
  readonly pid: number;
  readonly samples: ProcSample[];
}

/**
 * Samples processes every `intervalMs` (default 500) while started. Several processes may be watched
 * under one label (the server before and after a restart): each keeps its own series.
 */
export class ProcSampler {
  readonly #intervalMs: number;
  readonly #series: ProcSeries[] = [];
  /** Series being sampled, by label (a label may cover several processes: the agent workers). */
  readonly #active = new Map<string, ProcSeries[]>();
  #timer: NodeJS.Timeout | undefined;
  #isSampling = false;
  #errors = 0;

  constructor(intervalMs = 500) {
    this.#intervalMs = intervalMs;
  }

  /** Starts sampling `pid` under `label`; with `isAdded`, next to the label's other processes. */
  watch(label: string, pid: number, isAdded = false): void {
    const series: ProcSeries = { label, pid, samples: [] };
    this.#series.push(series);
    this.#active.set(label, isAdded ? [...(this.#active.get(label) ?? []), series] : [series]);
    void this.#sampleOne(series);
  }

  /** Stops sampling the label's processes (their series stay). */
  unwatch(label: string): void {
    this.#active.delete(label);
  }

  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => void this.sampleNow(), this.#intervalMs);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Samples every watched process now. */
  async sampleNow(): Promise<void> {
    if (this.#isSampling) return;
    this.#isSampling = true;
    try {
      await Promise.all([...this.#active.values()].flat().map((s) => this.#sampleOne(s)));
    } finally {
      this.#isSampling = false;
    }
  }

  /** Reads that failed for a reason other than the process being gone. */
  get errors(): number {
    return this.#errors;
  }

  /** All series of a label, in the order they were watched. */
  series(label: string): readonly ProcSeries[] {
    return this.#series.filter((s) => s.label === label);
  }

  /** The latest sample of a label's (last watched) current process. */
  latest(label: string): ProcSample | undefined {
    const s = this.#active.get(label)?.at(-1);
    return s?.samples[s.samples.length - 1];
  }

  /**
   * Over [fromMs, toMs]: the largest RSS and the CPU seconds per wall second of a label (the CPU used by
   * each of its processes within the window, summed, over the time the samples span).
   */
  window(label: string, fromMs: number, toMs: number): { rssBytesMax: number; cpuSecondsPerSecond: number } {
    let rssBytesMax = 0;
    let cpuSeconds = 0;
    let spanFromMs = Infinity;
    let spanToMs = -Infinity;
    for (const s of this.series(label)) {
      const inside = s.samples.filter((x) => x.atMs >= fromMs && x.atMs <= toMs);
      // The samples just before and just after bound the window (a window shorter than the sampling
      // interval has none inside).
      const before = s.samples.filter((x) => x.atMs < fromMs).pop();
      const after = s.samples.find((x) => x.atMs > toMs);
      const measured = after === undefined ? inside : [...inside, after];
      for (const x of measured) rssBytesMax = Math.max(rssBytesMax, x.rssBytes);
      const first = before ?? measured[0];
      const last = measured[measured.length - 1];
      if (first === undefined || last === undefined || first === last) continue;
      cpuSeconds += last.cpuSeconds - first.cpuSeconds;
      spanFromMs = Math.min(spanFromMs, first.atMs);
      spanToMs = Math.max(spanToMs, last.atMs);
    }
    // CPU over the time it was measured across (server restarts included: a gap counts as idle).
    const seconds = spanToMs > spanFromMs ? (spanToMs - spanFromMs) / 1000 : 0;
    return { rssBytesMax, cpuSecondsPerSecond: seconds > 0 ? cpuSeconds / seconds : 0 };
  }

  async #sampleOne(series: ProcSeries): Promise<void> {
    try {
      const sample = await readProcSample(series.pid);
      if (sample !== undefined) series.samples.push(sample);
    } catch (err) {
      this.#errors++;
      if (this.#errors === 1) console.error(`loadtest: cannot read /proc/${series.pid}: ${String(err)}`);
    }
  }
}
