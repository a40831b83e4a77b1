import type { ScenarioResult } from "../report.js";
import { churnWindow, toResult } from "./common.js";
import type { ScenarioContext } from "./common.js";

/**
 * Scenario 2: steady churn at one rate for the duration: latency from the simulator's change stamp to the
 * agents' update events, deliveries per second, the server's CPU and RSS, bytes sent; mirrors verified.
 * The agents that go slow later take part too (they are still reading). One decoding felix agent records
 * the frames it receives, for the ceiling scenario.
 */
export async function steadyChurn(ctx: ScenarioContext, ratePerSecond: number): Promise<ScenarioResult> {
  const { h } = ctx;
  const workers = h.allWorkers;
  const agents = h.agentSpecs.regular.reduce((a, s) => a + s.length, 0) + h.agentSpecs.slow.length;
  const measured = await churnWindow(ctx, {
    scenario: "churn",
    name: `churn-${ratePerSecond}`,
    workers,
    agents,
    ratePerSecond,
    durationSeconds: h.options.durationSeconds,
    isRecordingFrames: true,
  });
  if (measured.final.frameLog !== undefined) {
    ctx.recordings.set(measured.name, {
      frames: measured.final.frameLog,
      churnSeconds: (measured.toMs - measured.fromMs) / 1000,
    });
  }
  return toResult(ctx, measured);
}
