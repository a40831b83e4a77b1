import { describe, expect, it } from "vitest";
import { hubWith } from "./client-test-server.js";
import { inSync, makeClient, makeServer, nextEvent, pool, record } from "./client-test-utils.js";

const STATE = Object.fromEntries(
  Array.from({ length: 5 }, (_, i) => [`IPPool/p${i}`, pool(`10.${i}.0.0/16`)]),
);

describe("client: lite mode without decoding deltas (decodeDeltas: false)", () => {
  it("follows the server's revisions and resumes, but emits no updates", async () => {
    const server = await makeServer({ hub: hubWith(STATE), compress: true });
    const client = makeClient({
      servers: [server.url],
      view: "felix",
      mirror: false,
      decodeDeltas: false,
      backoffInitialMs: 10,
    });
    const rec = record(client);
    client.start();
    await client.synced();
    const deltasBefore = client.stats.deltas;

    server.apply({ "IPPool/p1": pool("10.99.0.0/16"), "IPPool/p2": null });
    const revision = server.hub.revision;
    await expect.poll(() => client.revision, { timeout: 5000 }).toBe(revision);
    expect(client.stats.deltas).toBeGreaterThan(deltasBefore);
    expect(rec.updates).toEqual([]);
    expect(rec.errors).toEqual([]);

    // The revision skimmed from the frames is a valid resume token.
    const down = nextEvent(client, "status", (s) => s.state === "disconnected");
    server.terminateAll();
    await down;
    server.apply({ "IPPool/p3": null });
    const back = inSync(client);
    await back;
    await expect.poll(() => client.revision, { timeout: 5000 }).toBe(server.hub.revision);
    expect(server.hellos[1]?.resume).toEqual({ server: server.id, revision });
    expect(client.stats).toMatchObject({ snapshots: 1, resumes: 1 });
    expect(rec.updates).toEqual([]);
  });
});
