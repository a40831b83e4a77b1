/** Helpers of the replica scenarios (scale-out, rolling-restart): sessions per replica, balance. */
import { delay } from "../harness.js";
import type { Harness } from "../harness.js";
import type { OnProgress } from "../measure.js";

/** Sessions each running replica holds (its /status `connections.active`); null for a slot not running. */
export async function connectionsPerReplica(h: Harness): Promise<(number | null)[]> {
  return Promise.all(
    Array.from({ length: h.replicaCount }, async (_, slot) => {
      if (h.replica(slot) === undefined) return null;
      try {
        return (await h.replicaStatus(slot)).connections?.active ?? null;
      } catch {
        return null;
      }
    }),
  );
}

/** The largest count over the mean of the running replicas (1: perfectly even); null without counts. */
export function maxOverMean(counts: readonly (number | null)[]): number | null {
  const running = counts.filter((c): c is number => c !== null);
  const total = running.reduce((a, b) => a + b, 0);
  if (running.length === 0 || total === 0) return null;
  return Math.max(...running) / (total / running.length);
}

/** True when every running replica is within `tolerance` (0.1: 10%) of their mean, and they hold `sessions`. */
export function isBalanced(counts: readonly (number | null)[], sessions: number, tolerance = 0.1): boolean {
  if (counts.some((c) => c === null)) return false;
  const running = counts as readonly number[];
  const total = running.reduce((a, b) => a + b, 0);
  if (total < sessions) return false;
  const mean = total / running.length;
  return running.every((c) => Math.abs(c - mean) <= tolerance * mean);
}

/**
 * Waits until every replica is within 10% of the mean with all `sessions` connected; answers when (epoch
 * ms), or null at the timeout.
 */
export async function waitBalanced(
  h: Harness,
  sessions: number,
  timeoutMs: number,
  onTick: OnProgress | undefined,
): Promise<number | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const counts = await connectionsPerReplica(h);
    onTick?.({
      inSync: counts.reduce<number>((a, c) => a + (c ?? 0), 0),
      total: sessions,
      updates: 0,
      latencies: 0,
    });
    if (isBalanced(counts, sessions)) return Date.now();
    if (Date.now() >= deadline) return null;
    await delay(250, h.signal);
  }
}

/** Every replica's /status `balance` (share, move counters) and resume counters, by slot (null: gone). */
export async function moveCounters(h: Harness): Promise<unknown[]> {
  return Promise.all(
    Array.from({ length: h.replicaCount }, async (_, slot) => {
      if (h.replica(slot) === undefined) return null;
      try {
        const status = (await h.replicaStatus(slot)) as {
          balance?: unknown;
          counters?: { resumes?: unknown; resumeRefusals?: unknown; resumeWaits?: unknown };
        };
        const c = status.counters;
        return {
          ...(typeof status.balance === "object" && status.balance !== null ? status.balance : {}),
          resumes: c?.resumes ?? null,
          resumeRefusals: c?.resumeRefusals ?? null,
          resumeWaits: c?.resumeWaits ?? null,
        };
      } catch {
        return null;
      }
    }),
  );
}
