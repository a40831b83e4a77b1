import type { OnProgress } from "./measure.js";

/**
 * When the agents of a storm came back in sync: the load test's polls of the in-sync count, from a start
 * (the storm's start, the kill), reduced to how long it took for half, 90% and all of them, the mean over
 * agents, and the count at each poll where it changed. An agent that drops out and comes back is counted
 * once: only rises above the highest count so far count.
 */

export interface InSyncCurve {
  /** Seconds from the start until at least half, 90% and every agent were in sync (null: not reached). */
  readonly halfSeconds: number | null;
  readonly ninetySeconds: number | null;
  readonly allSeconds: number | null;
  /** Mean over the agents that came back of the seconds from the start until each did. */
  readonly meanSeconds: number | null;
  /** `[seconds, inSync]` at each poll where the count changed (the first and last polls included), at most MAX_POINTS. */
  readonly points: readonly (readonly [number, number])[];
}

export const MAX_POINTS = 200;

export class InSyncRecorder {
  readonly #fromMs: number;
  readonly #samples: [number, number][] = [];
  #total = 0;

  constructor(fromMs: number) {
    this.#fromMs = fromMs;
  }

  /** One poll: `inSync` of `total` agents at `atMs`. */
  add(atMs: number, inSync: number, total: number): void {
    this.#total = total;
    this.#samples.push([Math.max(0, atMs - this.#fromMs) / 1000, inSync]);
  }

  /** `onProgress` that also records each poll (as `add` at the time of the poll). */
  recording(onProgress: OnProgress): OnProgress {
    return (p) => {
      this.add(Date.now(), p.inSync, p.total);
      onProgress(p);
    };
  }

  curve(): InSyncCurve {
    const total = this.#total;
    const samples = this.#samples;
    let best = 0;
    let weighted = 0;
    let half: number | null = null;
    let ninety: number | null = null;
    let all: number | null = null;
    for (const [seconds, inSync] of samples) {
      if (inSync > best) {
        weighted += (inSync - best) * seconds;
        best = inSync;
      }
      if (half === null && total > 0 && best * 2 >= total) half = seconds;
      if (ninety === null && total > 0 && best * 10 >= total * 9) ninety = seconds;
      if (all === null && total > 0 && best >= total) all = seconds;
    }
    const changed = samples.filter(
      (s, i) => i === 0 || i === samples.length - 1 || s[1] !== samples[i - 1]?.[1],
    );
    const step = Math.max(1, Math.ceil(changed.length / MAX_POINTS));
    const points = changed
      .filter((_, i) => i % step === 0 || i === changed.length - 1)
      .map(([s, n]) => [round(s), n] as const);
    return {
      halfSeconds: half === null ? null : round(half),
      ninetySeconds: ninety === null ? null : round(ninety),
      allSeconds: all === null ? null : round(all),
      meanSeconds: best === 0 ? null : round(weighted / best),
      points,
    };
  }
}

function round(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}
