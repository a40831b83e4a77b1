import { Counter, Gauge } from "prom-client";
import type { Registry } from "prom-client";

/** Why a session was asked to move: a bounded label (also the `reason` of the `move` message). */
export type MoveReason = "rebalance" | "shutting-down";

/** What the session registry reports about moves (implemented by BalancerMetrics). */
export interface MoveMetrics {
  /** A `move` message went to a session. */
  moveSent(reason: MoveReason): void;
  /** A session that was sent a `move` closed (by itself, or by the server after the delay). */
  sessionMoved(reason: MoveReason, isClosedByServer: boolean): void;
}

/** Plain counts mirroring the counters, for /status. */
export interface MoveCounts {
  movesSent: Record<MoveReason, number>;
  sessionsMoved: Record<MoveReason, number>;
  /** Moved sessions the server had to close (4007/4008) because the client had not left after the delay. */
  movesForced: number;
}

/** The balancer's metrics: moves sent, sessions moved, the fair share it computes. */
export class BalancerMetrics implements MoveMetrics {
  readonly counts: MoveCounts = {
    movesSent: { rebalance: 0, "shutting-down": 0 },
    sessionsMoved: { rebalance: 0, "shutting-down": 0 },
    movesForced: 0,
  };
  readonly #movesSent: Counter<"reason">;
  readonly #sessionsMoved: Counter<"reason">;
  readonly #forced: Counter;

  constructor(
    registry: Registry,
    sources: { fairShare(): number | undefined; fairShareLimit(): number | undefined },
  ) {
    this.#movesSent = new Counter({
      name: "tabby_moves_sent_total",
      help: "move messages sent to sessions, by reason (rebalance: over the fair share; shutting-down: drain)",
      labelNames: ["reason"],
      registers: [registry],
    });
    this.#sessionsMoved = new Counter({
      name: "tabby_sessions_moved_total",
      help: "Sessions that were sent a move and have closed, by reason",
      labelNames: ["reason"],
      registers: [registry],
    });
    this.#forced = new Counter({
      name: "tabby_moves_forced_total",
      help: "Moved sessions closed by the server (4007/4008) because the client had not left after the delay",
      registers: [registry],
    });
    for (const reason of ["rebalance", "shutting-down"] as const) {
      this.#movesSent.inc({ reason }, 0);
      this.#sessionsMoved.inc({ reason }, 0);
    }
    new Gauge({
      name: "tabby_fair_share_sessions",
      help: "Sessions this replica should hold (ceil of all sessions / ready replicas); NaN before the first round",
      registers: [registry],
      collect() {
        this.set(sources.fairShare() ?? NaN);
      },
    });
    new Gauge({
      name: "tabby_fair_share_limit_sessions",
      help: "Sessions above which this replica moves sessions to others (the fair share plus slack)",
      registers: [registry],
      collect() {
        this.set(sources.fairShareLimit() ?? NaN);
      },
    });
  }

  moveSent(reason: MoveReason): void {
    this.counts.movesSent[reason]++;
    this.#movesSent.inc({ reason });
  }

  sessionMoved(reason: MoveReason, isClosedByServer: boolean): void {
    this.counts.sessionsMoved[reason]++;
    this.#sessionsMoved.inc({ reason });
    if (isClosedByServer) {
      this.counts.movesForced++;
      this.#forced.inc();
    }
  }
}
