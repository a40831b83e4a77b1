import type { PeerDirectory } from "../../src/server/replicas/peers.js";
import { CloseCode } from "../../proto/close-codes.js";
import { isDeepStrictEqual } from "node:util";
import { describe, expect, it } from "vitest";
import { ALL_KINDS } from "../../src/snapshot/kinds.js";
import {
  expectedView,
  hello,
  markInSync,
  metricValue,
  RawClient,
  resource,
  startFanout,
  waitFor,
} from "./fanout-harness.js";
import type { Harness } from "./fanout-harness.js";

function seed(h: Harness): void {
  const s = h.server;
  s.upsert("IPPool/pool-a", resource("IPPool", "pool-a", { cidr: "10.0.0.0/16" }));
  s.upsert("Node/n1", resource("Node", "n1"));
  s.upsert("Node/n2", resource("Node", "n2"));
  s.upsert("WorkloadEndpoint/ns/pod-a", resource("WorkloadEndpoint", "pod-a", { node: "n1" }, "ns"));
  s.upsert("BlockAffinity/n1-a", resource("BlockAffinity", "n1-a", { node: "n1", cidr: "10.0.1.0/26" }));
  s.upsert("BlockAffinity/n2-a", resource("BlockAffinity", "n2-a", { node: "n2", cidr: "10.0.2.0/26" }));
  s.upsert("CalicoNodeStatus/n1", resource("CalicoNodeStatus", "n1", { node: "n1" }));
  s.upsert("CalicoNodeStatus/n2", resource("CalicoNodeStatus", "n2", { node: "n2" }));
  s.flushNow();
}

describe("fan-out streaming", () => {
  it("serves every view a snapshot and then its live changes, node-scoped kinds only to their node", async () => {
    const h = await startFanout();
    seed(h);
    const clients = {
      felix: await RawClient.live(h.url, hello({ view: "felix", node: "n1" })),
      bgp1: await RawClient.live(h.url, hello({ view: "bgp", node: "n1" })),
      bgp2: await RawClient.live(h.url, hello({ view: "bgp", node: "n2" })),
      tunnel: await RawClient.live(h.url, hello({ view: "tunnel-ip-allocation" })),
      status1: await RawClient.live(h.url, hello({ view: "node-status", node: "n1" })),
      status2: await RawClient.live(h.url, hello({ view: "node-status", node: "n2" })),
    };
    const expected = (): Record<keyof typeof clients, Map<string, unknown>> => ({
      felix: expectedView(h.hub, "felix", "n1"),
      bgp1: expectedView(h.hub, "bgp", "n1"),
      bgp2: expectedView(h.hub, "bgp", "n2"),
      tunnel: expectedView(h.hub, "tunnel-ip-allocation"),
      status1: expectedView(h.hub, "node-status", "n1"),
      status2: expectedView(h.hub, "node-status", "n2"),
    });
    for (const [name, client] of Object.entries(clients)) {
      expect(client.welcome?.mode, name).toBe("snapshot");
      expect(client.mirror, name).toEqual(expected()[name as keyof typeof clients]);
    }
    expect([...clients.bgp1.mirror.keys()]).toContain("BlockAffinity/n1-a");
    expect([...clients.bgp1.mirror.keys()]).not.toContain("BlockAffinity/n2-a");
    expect([...clients.status2.mirror.keys()]).toEqual(["CalicoNodeStatus/n2"]);

    // One change per view, then a node-scoped object changing owner (n1 -> n2).
    h.server.upsert("IPPool/pool-b", resource("IPPool", "pool-b", { cidr: "10.1.0.0/16" }));
    h.server.upsert(
      "BlockAffinity/n1-b",
      resource("BlockAffinity", "n1-b", { node: "n1", cidr: "10.0.3.0/26" }),
    );
    h.server.upsert("CalicoNodeStatus/n2", resource("CalicoNodeStatus", "n2", { node: "n2", up: true }));
    h.server.upsert("WorkloadEndpoint/ns/pod-b", resource("WorkloadEndpoint", "pod-b", {}, "ns"));
    h.server.flushNow();
    h.server.upsert(
      "BlockAffinity/n1-a",
      resource("BlockAffinity", "n1-a", { node: "n2", cidr: "10.0.1.0/26" }),
    );
    h.server.delete("Node/n2");
    h.server.flushNow();
    const want = expected();
    await Promise.all(
      Object.entries(clients).map(([name, c]) =>
        c.until(() => isDeepStrictEqual(c.mirror, want[name as keyof typeof clients])),
      ),
    );

    for (const [name, client] of Object.entries(clients)) {
      expect(client.mirror, name).toEqual(want[name as keyof typeof clients]);
      expect(client.violations, name).toEqual([]);
    }
    expect(clients.bgp1.mirror.has("BlockAffinity/n1-a")).toBe(false);
    expect(clients.bgp2.mirror.has("BlockAffinity/n1-a")).toBe(true);
    // node-status n1 was sent nothing about n2's status, bgp n2 nothing about n1's block.
    const keysSeen = (c: RawClient): string[] =>
      c.messages("deltas").flatMap((m) => (m.t === "deltas" ? m.changes.map((x) => x.k) : []));
    expect(keysSeen(clients.status1)).not.toContain("CalicoNodeStatus/n2");
    expect(keysSeen(clients.bgp2)).not.toContain("BlockAffinity/n1-b");
    expect(keysSeen(clients.tunnel)).not.toContain("WorkloadEndpoint/ns/pod-b");
  });

  it("holds a session that arrives before its view was ever listed, pinging it, and starts it once listed", async () => {
    const h = await startFanout({ isInSync: false, options: { pingIntervalMs: 50 } });
    h.server.upsert("IPPool/p", resource("IPPool", "p"));
    const felix = await RawClient.connect(h.url, hello({ view: "felix" }));
    const early = await RawClient.connect(h.url, hello({ view: "node-status", node: "n1" }));
    await felix.until(() => felix.count("ping") >= 3);
    // Held: pinged (the client's read watchdog stays quiet), but no welcome, no snapshot, no status yet.
    expect(felix.messages().every((m) => m.t === "ping")).toBe(true);
    expect(h.server.sessionsAwaitingInitialSync).toBe(2);
    // Half the kinds listed: node-status (CalicoNodeStatus only) is listed, felix is not.
    h.server.setKindState("CalicoNodeStatus", { state: "in-sync", since: 5 });
    await early.until(() => early.count("status") > 0);
    expect(early.messages("status")).toMatchObject([{ state: "in-sync" }]);
    expect(felix.count("welcome")).toBe(0);
    h.server.upsert("IPPool/q", resource("IPPool", "q"));
    markInSync(h.server, 1000);
    await felix.until(() => felix.count("status") > 0);
    expect(h.server.sessionsAwaitingInitialSync).toBe(0);
    // One snapshot of the listed view, and the first status the session sees is in-sync.
    expect(felix.messages("status")).toMatchObject([{ state: "in-sync" }]);
    expect(felix.count("snap-begin")).toBe(1);
    expect(felix.mirror.has("IPPool/p") && felix.mirror.has("IPPool/q")).toBe(true);
    expect(felix.violations).toEqual([]);
    // A view listed once stays listed: a later stale or syncing kind does not hold new sessions.
    h.server.setKindState("IPPool", { state: "stale", since: 2000, reason: "watch failing" });
    const later = await RawClient.live(h.url, hello({ view: "felix" }));
    expect(later.messages("status")).toMatchObject([{ state: "stale" }]);
  });

  it("sends a session to the ready replicas (4007) instead of holding it, when there are some", async () => {
    let isPeerReady = false;
    const peers: PeerDirectory = {
      readyReplicas: () => (isPeerReady ? 2 : 1),
      peers: () => [
        { url: "ws://127.0.0.1:1/", ready: true, self: true },
        { url: "ws://127.0.0.2:1/", ready: isPeerReady, self: false },
      ],
      onChange: () => () => undefined,
    };
    const h = await startFanout({ isInSync: false, peers });
    const held = await RawClient.connect(h.url, hello({ view: "felix" }));
    await waitFor(() => h.server.sessionsAwaitingInitialSync === 1);
    isPeerReady = true;
    const sent = await RawClient.connect(h.url, hello({ view: "felix" }));
    expect(await sent.closed).toBe(CloseCode.rebalance);
    expect(sent.count("welcome")).toBe(0);
    expect(h.server.status().counters.dropped).toEqual({ notListed: 1 });
    // The one already held stays held until the list.
    markInSync(h.server, 1000);
    await held.until(() => held.count("status") > 0);
    expect(held.closeCode).toBeUndefined();
  });

  it("starts nothing for a held client that went away, and still starts the others", async () => {
    const h = await startFanout({ isInSync: false });
    const gone = await RawClient.connect(h.url, hello({ view: "felix" }));
    const stays = await RawClient.connect(h.url, hello({ view: "felix" }));
    await waitFor(() => h.server.sessionsAwaitingInitialSync === 2);
    gone.ws.terminate();
    await waitFor(() => h.server.establishedSessions === 1);
    markInSync(h.server, 1000);
    await stays.until(() => stays.count("status") > 0);
    expect(h.server.sessionsAwaitingInitialSync).toBe(0);
    expect(h.server.establishedSessions).toBe(1);
    expect(h.server.status().counters.dropped).toEqual({});
    expect(gone.count("welcome")).toBe(0);
  });

  it("starts a held session with the syncing status after initialSyncWaitMs", async () => {
    const h = await startFanout({ isInSync: false, options: { initialSyncWaitMs: 300 } });
    const startedAt = Date.now();
    const felix = await RawClient.live(h.url, hello({ view: "felix" }));
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(250);
    expect(felix.messages("status")).toMatchObject([{ state: "syncing" }]);
    expect(h.server.sessionsAwaitingInitialSync).toBe(0);
  });

  it("sends the view status at session start and on every change, after the deltas it depends on", async () => {
    const h = await startFanout({ isInSync: false, options: { initialSyncWaitMs: 0 } });
    const felix = await RawClient.live(h.url, hello({ view: "felix" }));
    const status = await RawClient.live(h.url, hello({ view: "node-status", node: "n1" }));
    expect(felix.messages("status")).toMatchObject([{ state: "syncing" }]);
    expect(h.server.isReady()).toBe(false);

    h.server.upsert("IPPool/p", resource("IPPool", "p"));
    markInSync(h.server, 1000);
    await felix.until(() => felix.messages("status").some((m) => m.t === "status" && m.state === "in-sync"));
    // The first status change (IPPool listed) comes after the deltas that were pending when it happened.
    const types = felix.messages().map((m) => m.t);
    const statusAt = types.flatMap((t, i) => (t === "status" ? [i] : []));
    expect(types.filter((t) => t === "deltas")).toHaveLength(1);
    expect(types.indexOf("deltas")).toBeGreaterThan(statusAt[0]!);
    expect(types.indexOf("deltas")).toBeLessThan(statusAt[1]!);
    expect(felix.mirror.has("IPPool/p")).toBe(true);
    expect(h.server.isReady()).toBe(true);

    const lastState = (c: RawClient): string | undefined => {
      const last = c.messages("status").at(-1);
      return last?.t === "status" ? last.state : undefined;
    };
    h.server.setKindState("IPPool", { state: "stale", since: 2000, reason: "watch failing" });
    await felix.until(() => lastState(felix) === "stale");
    expect(felix.messages("status").at(-1)).toMatchObject({ state: "stale", kinds: ["IPPool"], since: 2000 });
    expect(h.server.isReady()).toBe(false);
    expect(h.server.notReadyReason()).toMatch(/stale/);
    // node-status has no IPPool: its status did not change, so it got no new status frame.
    await status.until(() => status.count("status") === 2);
    const before = status.count("status");
    h.server.setKindState("CalicoNodeStatus", { state: "stale", since: 3000 });
    await status.until(() => status.count("status") === before + 1);
    expect(status.messages("status").map((m) => (m.t === "status" ? m.state : ""))).toEqual([
      "syncing",
      "in-sync",
      "stale",
    ]);
  });

  it("keeps every session's frames in order when fan-outs are sliced", async () => {
    const h = await startFanout({ options: { fanoutSliceSessions: 3 } });
    const clients = await Promise.all(
      Array.from({ length: 10 }, () => RawClient.live(h.url, hello({ view: "felix" }))),
    );
    for (let i = 0; i < 30; i++) {
      h.server.upsert(`IPPool/p${i % 4}`, resource("IPPool", `p${i % 4}`, { i }));
      h.server.flushNow();
      if (i === 15) h.server.setKindState("Node", { state: "stale", since: 5 });
    }
    const want = expectedView(h.hub, "felix");
    await Promise.all(clients.map((c) => c.until(() => isDeepStrictEqual(c.mirror, want))));
    for (const c of clients) {
      expect(c.violations).toEqual([]);
      const live = c.messages().slice(c.messages().findIndex((m) => m.t === "status") + 1);
      const deltas = live.filter((m) => m.t === "deltas");
      expect(deltas).toHaveLength(30);
      deltas.forEach((m, i) => {
        if (i > 0 && m.t === "deltas" && deltas[i - 1]?.t === "deltas")
          expect(m.from).toBe(deltas[i - 1]!.to);
      });
      const stale = live.findIndex((m) => m.t === "status");
      expect(live.slice(0, stale).filter((m) => m.t === "deltas")).toHaveLength(16);
    }
  });

  it("encodes each batch once however many sessions receive it (1 vs 200 sessions)", async () => {
    async function run(sessions: number): Promise<{ encoded: number; sent: number; metric: number }> {
      const h = await startFanout();
      const clients = await Promise.all(
        Array.from({ length: sessions }, () => RawClient.live(h.url, hello({ view: "felix" }))),
      );
      for (let i = 0; i < 20; i++) {
        h.server.upsert(`IPPool/p${i % 5}`, resource("IPPool", `p${i % 5}`, { i }));
        h.server.upsert(`Node/n${i}`, resource("Node", `n${i}`));
        h.server.flushNow();
      }
      const head = h.hub.revision;
      await Promise.all(clients.map((c) => c.until(() => c.revision === head)));
      const counts = h.server.status().views.felix;
      const metric = await metricValue(h.registry, "tabby_frames_encoded_total", { view: "felix" });
      await h.server.destroy();
      return { encoded: counts.framesEncoded, sent: counts.framesSent, metric };
    }
    const one = await run(1);
    const many = await run(200);
    expect(one.encoded).toBe(20);
    expect(many.encoded).toBe(one.encoded);
    expect(many.metric).toBe(one.metric);
    expect(one.sent).toBe(20);
    expect(many.sent).toBe(200 * one.sent);
  });

  it("sends deflate-compressed chunks that decode to the same entries, compressed once per snapshot", async () => {
    const h = await startFanout({
      hub: { snapshotChunkBytes: 2048 },
      options: { snapshotReuseMs: 60_000 },
    });
    for (let i = 0; i < 300; i++) {
      h.server.upsert(
        `WorkloadEndpoint/ns/pod-${i}`,
        resource("WorkloadEndpoint", `pod-${i}`, { n: i }, "ns"),
      );
    }
    h.server.flushNow();
    const plain = await RawClient.live(h.url, hello({ view: "felix" }));
    const zipped = await RawClient.live(
      h.url,
      hello({ view: "felix", features: ["deflate-snapshot", "x-new"] }),
    );
    const zipped2 = await RawClient.live(h.url, hello({ view: "felix", features: ["deflate-snapshot"] }));

    expect(zipped.welcome?.features).toEqual(["deflate-snapshot"]);
    expect(plain.welcome?.features).toEqual([]);
    const chunks = zipped.messages("snap-chunk");
    expect(chunks.length).toBeGreaterThan(3);
    expect(chunks.every((c) => c.t === "snap-chunk" && c.z !== undefined && c.entries === undefined)).toBe(
      true,
    );
    expect(plain.messages("snap-chunk").every((c) => c.t === "snap-chunk" && c.z === undefined)).toBe(true);
    expect(zipped.mirror.size).toBe(300);
    expect(zipped.mirror).toEqual(plain.mirror);
    expect(zipped2.mirror).toEqual(plain.mirror);
    expect(zipped.mirror).toEqual(expectedView(h.hub, "felix"));
    const status = h.server.status().views.felix;
    expect(status.snapshotsGenerated).toBe(1);
    expect(status.snapshotsReused).toBe(2);
    await waitFor(() => h.server.status().views.felix.snapshotsCompressed === 1);
    expect(await metricValue(h.registry, "tabby_snapshot_compressed_bytes", { view: "felix" })).toBeLessThan(
      await metricValue(h.registry, "tabby_snapshot_bytes", { view: "felix" }),
    );
  });

  it("reports per-view status and keeps the upstream kinds", async () => {
    const h = await startFanout();
    seed(h);
    await RawClient.live(h.url, hello({ view: "bgp", node: "n1" }));
    const report = h.server.status();
    expect(report.server).toBe(h.server.serverId);
    expect(report.revision).toBe(h.hub.revision);
    expect(report.views.bgp.connections).toBe(1);
    expect(report.views.bgp.entries).toBe(5);
    expect(report.views.felix.status.state).toBe("in-sync");
    expect(Object.keys(report.kinds).sort()).toEqual([...ALL_KINDS].sort());
    expect(report.connections.active).toBe(1);
    expect(report.lag.sessions).toBe(1);
  });
});
