import { describe, expect, it } from "vitest";
import { connectionsChart } from "../../loadtest/charts.js";
import { resolveLoadtestOptions } from "../../loadtest/options.js";
import { isBalanced, maxOverMean } from "../../loadtest/scenarios/replicas.js";

describe("load test with replicas", () => {
  it("runs the replica scenarios only with --replicas 2+, and the single-server ones only with one", () => {
    expect(resolveLoadtestOptions({}).scenarios).not.toContain("scale-out");
    expect(resolveLoadtestOptions({}).replicas).toBe(1);
    const three = resolveLoadtestOptions({ replicas: 3 });
    expect(three.scenarios).toEqual(["connect-storm", "churn", "baseline", "scale-out", "rolling-restart"]);
    expect(() => resolveLoadtestOptions({ scenarios: ["scale-out"] })).toThrow(
      expect.objectContaining({ code: "ERR_LOADTEST_OPTIONS", field: "replicas" }) as Error,
    );
    expect(() => resolveLoadtestOptions({ replicas: 2, scenarios: ["ceiling"] })).toThrow(
      expect.objectContaining({ field: "replicas" }) as Error,
    );
    expect(() => resolveLoadtestOptions({ replicas: 17 })).toThrow(
      expect.objectContaining({ field: "replicas" }) as Error,
    );
    // Replicas drain over 10 s unless told (a rollout as a deployment does it, not a 1 s storm).
    expect(three.replicaDrainMs).toBe(10_000);
    expect(resolveLoadtestOptions({ replicas: 3, replicaDrainMs: 0 }).replicaDrainMs).toBe(0);
    expect(() => resolveLoadtestOptions({ replicas: 3, replicaDrainMs: -1 })).toThrow(
      expect.objectContaining({ field: "replicaDrainMs" }) as Error,
    );
  });

  it("balanced = every replica within 10% of the mean, all sessions connected", () => {
    expect(isBalanced([34, 33, 33], 100)).toBe(true);
    expect(isBalanced([37, 33, 30], 100)).toBe(false);
    expect(isBalanced([34, 33, 32], 100)).toBe(false); // one agent not connected
    expect(isBalanced([50, null, 50], 100)).toBe(false);
    expect(maxOverMean([50, 50, 0])).toBe(1.5);
    expect(maxOverMean([null, 10, 10])).toBe(1);
    expect(maxOverMean([])).toBeNull();
  });

  it("charts the sessions of every replica, with gaps while one is down", () => {
    const svg = connectionsChart(
      [],
      [
        { atMs: 0, connections: [50, 50, null] },
        { atMs: 1000, connections: [40, 40, 20] },
        { atMs: 2000, connections: [34, null, 33] },
      ],
    );
    expect(svg).toContain("replica 2");
    expect(svg).toContain("<svg");
  });
});
