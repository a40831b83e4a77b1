import { isDeepStrictEqual } from "node:util";
import { describe, expect, it } from "vitest";
import { applyChanges } from "../support/deltas.js";
import { expectedView, hello, RawClient, resource, startFanout } from "./fanout-harness.js";

describe("fan-out resume", () => {
  it("resumes a known revision with only the missing deltas, coalesced per key", async () => {
    const h = await startFanout();
    for (let i = 0; i < 5; i++) h.server.upsert(`IPPool/p${i}`, resource("IPPool", `p${i}`, { i }));
    h.server.flushNow();
    const first = await RawClient.live(h.url, hello({ view: "felix" }));
    const token = { server: first.welcome!.server, revision: first.revision };
    const mirror = first.mirror;
    first.ws.close();
    await first.closed;

    h.server.upsert("IPPool/p0", resource("IPPool", "p0", { i: 100 }));
    h.server.flushNow();
    h.server.upsert("IPPool/p0", resource("IPPool", "p0", { i: 200 }));
    h.server.delete("IPPool/p1");
    h.server.upsert("Node/n9", resource("Node", "n9"));
    h.server.flushNow();

    const again = await RawClient.live(h.url, hello({ view: "felix", resume: token }));
    expect(again.welcome).toMatchObject({ mode: "resume", server: h.server.serverId });
    expect(again.count("snap-begin")).toBe(0);
    const deltas = again.messages("deltas");
    expect(deltas).toHaveLength(1);
    const changes = deltas[0]!.t === "deltas" ? deltas[0].changes : [];
    expect(changes.map((c) => c.k)).toEqual(["IPPool/p0", "IPPool/p1", "Node/n9"]);
    expect(changes[0]!.v).toMatchObject({ spec: { i: 200 } });
    expect(deltas[0]).toMatchObject({ from: token.revision, to: h.hub.revision });

    again.mirror = mirror;
    applyChanges(again.mirror, changes);
    expect(again.mirror).toEqual(expectedView(h.hub, "felix"));
    // It is live afterwards.
    h.server.upsert("IPPool/p7", resource("IPPool", "p7"));
    h.server.flushNow();
    await again.until(() => again.mirror.has("IPPool/p7"));
  });

  it("resumes at the head with no deltas at all", async () => {
    const h = await startFanout();
    h.server.upsert("IPPool/p", resource("IPPool", "p"));
    h.server.flushNow();
    const first = await RawClient.live(h.url, hello({ view: "tunnel-ip-allocation" }));
    const token = { server: h.server.serverId, revision: first.revision };
    const again = await RawClient.live(h.url, hello({ view: "tunnel-ip-allocation", resume: token }));
    expect(again.welcome?.mode).toBe("resume");
    expect(again.messages().map((m) => m.t)).toEqual(["welcome", "status"]);
  });

  it("resumes node-scoped views with the node's own changes only", async () => {
    const h = await startFanout();
    const first = await RawClient.live(h.url, hello({ view: "node-status", node: "n1" }));
    const token = { server: h.server.serverId, revision: first.revision };
    first.ws.close();
    h.server.upsert("CalicoNodeStatus/n1", resource("CalicoNodeStatus", "n1", { node: "n1" }));
    h.server.upsert("CalicoNodeStatus/n2", resource("CalicoNodeStatus", "n2", { node: "n2" }));
    h.server.flushNow();
    const again = await RawClient.live(h.url, hello({ view: "node-status", node: "n1", resume: token }));
    expect(again.welcome?.mode).toBe("resume");
    const keys = again.messages("deltas").flatMap((m) => (m.t === "deltas" ? m.changes.map((c) => c.k) : []));
    expect(keys).toEqual(["CalicoNodeStatus/n1"]);
  });

  it("resumes bgp without ownerless BlockAffinities, and with a delete for one that lost its owner", async () => {
    const h = await startFanout();
    h.server.upsert("BlockAffinity/owned", resource("BlockAffinity", "owned", { node: "n1" }));
    h.server.flushNow();
    const first = await RawClient.live(h.url, hello({ view: "bgp", node: "n1" }));
    const token = { server: h.server.serverId, revision: first.revision };
    first.ws.close();
    h.server.upsert("BlockAffinity/none", resource("BlockAffinity", "none", { node: "" }));
    h.server.upsert("BlockAffinity/absent", resource("BlockAffinity", "absent", {}));
    h.server.upsert("BlockAffinity/owned", resource("BlockAffinity", "owned", { node: "" }));
    h.server.flushNow();
    const again = await RawClient.live(h.url, hello({ view: "bgp", node: "n1", resume: token }));
    expect(again.welcome?.mode).toBe("resume");
    const changes = again.messages("deltas").flatMap((m) => (m.t === "deltas" ? m.changes : []));
    expect(changes).toEqual([{ k: "BlockAffinity/owned", v: null }]);
  });

  it("sends a snapshot to a token from another server", async () => {
    const h = await startFanout();
    h.server.upsert("IPPool/p", resource("IPPool", "p"));
    h.server.flushNow();
    const client = await RawClient.live(
      h.url,
      hello({ view: "felix", resume: { server: "some-other-server", revision: h.hub.revision } }),
    );
    expect(client.welcome?.mode).toBe("snapshot");
    expect(client.count("snap-begin")).toBe(1);
    expect(client.mirror).toEqual(expectedView(h.hub, "felix"));
  });

  it("sends a snapshot when the revision has left the change log", async () => {
    const h = await startFanout({ hub: { maxLogEntries: 4 } });
    h.server.upsert("IPPool/p", resource("IPPool", "p"));
    h.server.flushNow();
    const first = await RawClient.live(h.url, hello({ view: "felix" }));
    const token = { server: h.server.serverId, revision: first.revision };
    first.ws.close();
    for (let i = 0; i < 10; i++) {
      h.server.upsert(`Node/n${i}`, resource("Node", `n${i}`));
      h.server.flushNow();
    }
    expect(h.hub.canResume("felix", token.revision)).toBe(false);
    const again = await RawClient.live(h.url, hello({ view: "felix", resume: token }));
    expect(again.welcome?.mode).toBe("snapshot");
    await again.until(() => isDeepStrictEqual(again.mirror, expectedView(h.hub, "felix")));
  });
});
