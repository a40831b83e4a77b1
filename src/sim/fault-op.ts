import type { Simulator } from "./simulator.js";

/**
 * One operation on a simulator's faults (SimulatorFaults) or its restart, as data: what a parent sends to
 * a simulator in a child process (loadtest/sim-process.ts) and what `applySimFault` carries out, so that
 * the chaos runner drives an in-process and an out-of-process simulator the same way.
 */
export type SimFault =
  | { readonly op: "drop-watches" }
  | { readonly op: "stall-watches"; readonly isOn: boolean }
  | { readonly op: "expire-watches" }
  | { readonly op: "fail-requests"; readonly status: 500 | 429; readonly forMs: number }
  | { readonly op: "set-history-limit"; readonly limit: number }
  | { readonly op: "pause"; readonly isOn: boolean }
  | { readonly op: "restart" };

/** Carries out `f` on `sim`; resolves when it has (a restart: once the simulator listens again). */
export async function applySimFault(sim: Simulator, f: SimFault): Promise<void> {
  switch (f.op) {
    case "drop-watches":
      sim.faults.dropWatches();
      return;
    case "stall-watches":
      sim.faults.stallWatches(f.isOn);
      return;
    case "expire-watches":
      sim.faults.expireWatches();
      return;
    case "fail-requests":
      sim.faults.failRequests(f.status, f.forMs);
      return;
    case "set-history-limit":
      sim.faults.setHistoryLimit(f.limit);
      return;
    case "pause":
      sim.faults.pause(f.isOn);
      return;
    case "restart":
      await sim.restart();
      return;
  }
}
