import { describe, expect, it, vi } from "vitest";
import { INTERNAL_ERROR_CLOSE_CODE } from "../../src/server/fanout/errors.js";
import { hello, RawClient, resource, socketOf, startFanout, waitFor } from "./fanout-harness.js";

// A throw on an async path of the server must end the session with 1011, never become an unhandled
// rejection (which kills a Node 20 process; vitest fails the run on one).
describe("fan-out catch boundaries", () => {
  it("a catch-up that throws after the snapshot closes that session with 1011", async () => {
    const h = await startFanout();
    h.server.upsert("IPPool/a", resource("IPPool", "a"));
    h.server.flushNow();
    // The catch-up after a snapshot (with patches against it, or the plain one).
    const spies = (["catchUp", "catchUpFromSnapshot"] as const).map((method) =>
      vi.spyOn(h.hub, method).mockImplementation(() => {
        throw new Error("catch-up exploded");
      }),
    );
    const client = await RawClient.connect(h.url, hello({ view: "felix" }));
    expect(await client.closed).toBe(INTERNAL_ERROR_CLOSE_CODE);
    for (const spy of spies) spy.mockRestore();
    expect(h.server.status().counters.dropped.internalError).toBe(1);
    const other = await RawClient.live(h.url, hello({ view: "felix" }));
    expect(other.mirror.has("IPPool/a")).toBe(true);
  });

  it("a lagging session whose catch-up throws is closed with 1011", async () => {
    const h = await startFanout({ options: { softBufferedBytes: 64 * 1024, maxLagMs: 60_000 } });
    const slow = await RawClient.live(h.url, hello({ view: "bgp", node: "slow" }));
    socketOf(slow).pause();
    for (let seq = 0; h.server.status().views.bgp.lagging === 0; seq++) {
      if (seq > 2000) throw new Error("the paused session never lagged");
      h.server.upsert(
        "BlockAffinity/big",
        resource("BlockAffinity", "big", { node: "slow", blob: String(seq % 10).repeat(256 * 1024) }),
      );
      h.server.flushNow();
      await new Promise((resolve) => setImmediate(resolve));
    }
    vi.spyOn(h.hub, "catchUp").mockImplementation(() => {
      throw new Error("catch-up exploded");
    });
    socketOf(slow).resume();
    expect(await slow.closed).toBe(INTERNAL_ERROR_CLOSE_CODE);
    await waitFor(() => h.server.status().counters.dropped.internalError === 1);
  });
});
