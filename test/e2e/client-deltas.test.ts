import { describe, expect, it } from "vitest";
import { encodeValue } from "../../proto/codec.js";
import { deflateDeltas } from "../../proto/delta-compression.js";
import { assembleCompressedDeltas, assembleEntryArray, encodeEntry } from "../../proto/frame-builder.js";
import type { ResourceValue } from "../../proto/messages.js";
import { hubWith } from "./client-test-server.js";
import type { TestServer } from "./client-test-server.js";
import { inSync, makeClient, makeServer, nextEvent, record } from "./client-test-utils.js";

const pod = (rv: string, version: string): ResourceValue => ({
  metadata: { name: "a", namespace: "ns", resourceVersion: rv, labels: { app: "web", version } },
  spec: { node: "n1", ipNetworks: ["10.0.0.1/32"], profiles: ["kns.ns", "ksa.ns.default"] },
});

const STATE: Record<string, ResourceValue> = {
  "WorkloadEndpoint/ns/a": pod("10", "v1"),
  "WorkloadEndpoint/ns/b": {
    ...pod("11", "v1"),
    metadata: { name: "b", namespace: "ns", resourceVersion: "11" },
  },
};

async function syncedClient(server: TestServer) {
  const client = makeClient({ servers: [server.url], view: "felix", backoffInitialMs: 20, backoffMaxMs: 50 });
  const rec = record(client);
  client.start();
  await client.synced();
  return { client, rec };
}

/** A compressed deltas frame past the server's head, as a faulty server would send it. */
function forgedFrame(server: TestServer, entries: readonly Buffer[]): Buffer {
  const from = server.hub.revision;
  return assembleCompressedDeltas(from, from + 1, entries.length, deflateDeltas(assembleEntryArray(entries)));
}

describe("client: compressed and patched deltas", () => {
  it("negotiates both features and applies compressed patches to its mirror", async () => {
    const server = await makeServer({ hub: hubWith(STATE) });
    const { client, rec } = await syncedClient(server);
    expect(server.hellos[0]?.features).toEqual(
      expect.arrayContaining(["deflate-deltas", "patch-deltas", "json-patch-deltas"]),
    );
    const applied = nextEvent(client, "updates");
    server.apply({ "WorkloadEndpoint/ns/a": pod("12", "v2") });
    expect(await applied).toEqual([
      { key: "WorkloadEndpoint/ns/a", kind: "WorkloadEndpoint", value: pod("12", "v2") },
    ]);
    expect(client.get("WorkloadEndpoint/ns/a")).toEqual(pod("12", "v2"));
    expect(client.stats).toMatchObject({ rejectedFrames: 0, snapshots: 1 });
    expect(rec.updates.flat()).toHaveLength(3);
  });

  it("applies a JSON Patch the server sends for a change inside an array", async () => {
    const withList = (rv: string, profiles: string[]): ResourceValue => ({
      ...pod(rv, "v1"),
      spec: { node: "n1", ipNetworks: ["10.0.0.1/32"], profiles },
    });
    const many = Array.from({ length: 40 }, (_, i) => `ksa.ns.account-${i}`);
    const server = await makeServer({ hub: hubWith({ "WorkloadEndpoint/ns/a": withList("10", many) }) });
    const { client } = await syncedClient(server);
    const next = withList("12", [...many.slice(0, 20), "kns.inserted", ...many.slice(20)]);
    const applied = nextEvent(client, "updates");
    server.apply({ "WorkloadEndpoint/ns/a": next });
    expect(await applied).toEqual([{ key: "WorkloadEndpoint/ns/a", kind: "WorkloadEndpoint", value: next }]);
    expect(client.get("WorkloadEndpoint/ns/a")).toEqual(next);
    expect(client.stats).toMatchObject({ rejectedFrames: 0, snapshots: 1 });
  });

  it("a lite client (no mirror) does not ask for patches and still gets compressed full values", async () => {
    const server = await makeServer({ hub: hubWith(STATE) });
    const client = makeClient({ servers: [server.url], view: "felix", mirror: false });
    client.start();
    await client.synced();
    expect(server.hellos[0]?.features).toContain("deflate-deltas");
    expect(server.hellos[0]?.features).not.toContain("patch-deltas");
    expect(server.hellos[0]?.features).not.toContain("json-patch-deltas");
    const applied = nextEvent(client, "updates");
    server.apply({ "WorkloadEndpoint/ns/a": pod("12", "v2") });
    expect(await applied).toEqual([
      { key: "WorkloadEndpoint/ns/a", kind: "WorkloadEndpoint", value: pod("12", "v2") },
    ]);
  });

  it.each([
    [
      "a patch on another resourceVersion",
      { k: "WorkloadEndpoint/ns/a", p: { spec: { node: "n2" } }, b: "9" },
    ],
    [
      "a patch for a key it does not hold",
      { k: "WorkloadEndpoint/ns/zz", p: { spec: { node: "n2" } }, b: "10" },
    ],
    [
      "a JSON Patch whose path is not in the value",
      { k: "WorkloadEndpoint/ns/a", j: [{ op: "replace", path: "/spec/nope/x", value: 1 }], b: "10" },
    ],
    [
      "a JSON Patch with an index past the end of an array",
      { k: "WorkloadEndpoint/ns/a", j: [{ op: "remove", path: "/spec/profiles/2" }], b: "10" },
    ],
    [
      "a JSON Patch on another resourceVersion",
      { k: "WorkloadEndpoint/ns/a", j: [{ op: "remove", path: "/spec/profiles/1" }], b: "9" },
    ],
  ])(
    "rejects a frame with %s: nothing of it applied, counted, resynced by snapshot",
    async (_what, patch) => {
      const server = await makeServer({ hub: hubWith(STATE) });
      const { client, rec } = await syncedClient(server);
      const before = rec.updates.flat().length;
      const down = nextEvent(client, "status", (s) => s.state === "disconnected");
      // A valid change first, then the bad patch: the frame is all or nothing.
      const good = encodeEntry({ k: "WorkloadEndpoint/ns/b", v: null });
      server.broadcast(forgedFrame(server, [good, encodeValue(patch)]));
      expect(await down).toMatchObject({ closeCode: 4006 });
      await inSync(client);
      expect(client.stats).toMatchObject({ rejectedFrames: 1, snapshots: 2, resumes: 0 });
      // The resync hello carries no resume token, and the diffed snapshot changed nothing.
      expect(server.hellos[1]?.resume).toBeUndefined();
      expect(rec.updates.flat()).toHaveLength(before);
      expect(client.get("WorkloadEndpoint/ns/b")).toEqual(STATE["WorkloadEndpoint/ns/b"]);
      expect(client.get("WorkloadEndpoint/ns/a")).toEqual(STATE["WorkloadEndpoint/ns/a"]);
    },
  );

  it("rejects a compressed frame that does not inflate, or whose count is wrong", async () => {
    const server = await makeServer({ hub: hubWith(STATE) });
    const { client } = await syncedClient(server);
    const from = server.hub.revision;
    let down = nextEvent(client, "status", (s) => s.state === "disconnected");
    server.broadcast(assembleCompressedDeltas(from, from + 1, 1, Buffer.from("not deflate at all")));
    expect(await down).toMatchObject({ closeCode: 4006 });
    await inSync(client);
    down = nextEvent(client, "status", (s) => s.state === "disconnected");
    const one = [encodeEntry({ k: "WorkloadEndpoint/ns/b", v: null })];
    server.broadcast(assembleCompressedDeltas(from, from + 1, 2, deflateDeltas(assembleEntryArray(one))));
    expect(await down).toMatchObject({ closeCode: 4006 });
    await inSync(client);
    expect(client.stats.rejectedFrames).toBe(2);
    expect(client.get("WorkloadEndpoint/ns/b")).toEqual(STATE["WorkloadEndpoint/ns/b"]);
  });
});
