import { Prng } from "../sim/prng.js";

/** Every fault the runner injects. */
export const FAULT_KINDS = [
  // upstream (the simulated API server)
  "watch-drop",
  "watch-stall",
  "watch-410",
  "api-500",
  "api-429",
  "api-restart-compact",
  "api-pause",
  // tabby servers (child processes)
  "server-kill9",
  "server-stop-cont",
  "server-term",
  // between agents and servers (the TCP proxy)
  "proxy-cut",
  "proxy-delay",
  "proxy-truncate",
  "proxy-stall",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** One fault of a run's schedule. */
export interface Fault {
  /** When it starts, ms after churn began. */
  readonly atMs: number;
  readonly kind: FaultKind;
  /** How long it lasts (stalls, pauses, failure windows, delays), ms; 0 for instant faults. */
  readonly durationMs: number;
  /** The server (index) a server or proxy fault applies to. */
  readonly server: number;
  /** proxy-delay: the added latency, ms. */
  readonly delayMs?: number;
}

/** Which fault serializes with which: one fault at a time per upstream, per server, per proxy. */
export function laneOf(f: Fault): string {
  if (f.kind.startsWith("server-")) return `server-${f.server}`;
  if (f.kind.startsWith("proxy-")) return `proxy-${f.server}`;
  return "api";
}

export interface ScheduleOptions {
  /** Churn (and fault) period of the run, ms. */
  readonly durationMs: number;
  readonly servers: number;
  /** Faults per run: [min, max]. */
  readonly faults: readonly [number, number];
  /** Restrict to these kinds (default all). */
  readonly kinds?: readonly FaultKind[];
}

const between = (rng: Prng, lo: number, hi: number): number => lo + rng.int(hi - lo + 1);

/** The seeded fault schedule of one run: the same seed and options give the same schedule. */
export function makeSchedule(seed: number, o: ScheduleOptions): Fault[] {
  const rng = new Prng(seed * 7919 + 17);
  const kinds = o.kinds ?? FAULT_KINDS;
  const n = between(rng, o.faults[0], o.faults[1]);
  const faults: Fault[] = [];
  for (let i = 0; i < n; i++) {
    const kind = rng.pick(kinds);
    const atMs = between(rng, 200, Math.max(200, o.durationMs - 1500));
    const server = rng.int(o.servers);
    let durationMs = 0;
    let delayMs: number | undefined;
    switch (kind) {
      case "watch-stall":
      case "proxy-stall":
        durationMs = between(rng, 300, 2500);
        break;
      case "api-pause":
        durationMs = between(rng, 500, 4000);
        break;
      case "api-500":
      case "api-429":
        durationMs = between(rng, 200, 1500);
        break;
      case "server-stop-cont":
        durationMs = between(rng, 300, 3000);
        break;
      case "proxy-delay":
        durationMs = between(rng, 500, 2500);
        delayMs = between(rng, 20, 500);
        break;
      default:
        break;
    }
    faults.push(
      delayMs === undefined
        ? { atMs, kind, durationMs, server }
        : { atMs, kind, durationMs, server, delayMs },
    );
  }
  return faults.sort((a, b) => a.atMs - b.atMs);
}
