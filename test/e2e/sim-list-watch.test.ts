import { describe, expect, it, onTestFinished } from "vitest";
import { http, itemNames, itemNamespaces, openWatch, podBody, startTestSim } from "./sim-test-utils.js";

describe("simulator list", () => {
  it("pages with limit/continue at the list resourceVersion, across a change", async () => {
    const sim = await startTestSim();
    for (let i = 0; i < 5; i++) sim.create("pods", podBody(`p${i}`));
    const first = await http("GET", `${sim.url}/api/v1/pods?limit=2`);
    expect(first.status).toBe(200);
    expect(first.body.kind).toBe("PodList");
    expect(itemNames(first.body)).toEqual(["p0", "p1"]);
    const listRv = first.body.metadata.resourceVersion as string;
    expect(listRv).toBe(sim.resourceVersion);
    expect(typeof first.body.metadata.continue).toBe("string");

    // Changes after the first page: the rest of the list still shows the state at listRv.
    sim.patch("pods", "default", "p2", { metadata: { labels: { changed: "yes" } } });
    sim.remove("pods", "default", "p3");
    sim.create("pods", podBody("p9"));
    const names: string[] = [];
    let cont = first.body.metadata.continue as string | undefined;
    while (cont !== undefined) {
      const page = await http("GET", `${sim.url}/api/v1/pods?limit=2&continue=${encodeURIComponent(cont)}`);
      expect(page.status).toBe(200);
      expect(page.body.metadata.resourceVersion).toBe(listRv);
      const items = (page.body as { items: { metadata: { name: string; labels: Record<string, string> } }[] })
        .items;
      for (const p of items) {
        names.push(p.metadata.name);
        if (p.metadata.name === "p2") expect(p.metadata.labels.changed).toBeUndefined();
      }
      cont = page.body.metadata.continue;
    }
    expect(names).toEqual(["p2", "p3", "p4"]);

    // A fresh list sees the changes.
    const now = await http("GET", `${sim.url}/api/v1/pods`);
    expect(itemNames(now.body)).toEqual(["p0", "p1", "p2", "p4", "p9"]);
  });

  it("lists one namespace on the namespaced path, and answers 410 for a continue older than the history", async () => {
    const sim = await startTestSim();
    for (const ns of ["a", "b"]) for (let i = 0; i < 3; i++) sim.create("pods", podBody(`p${i}`, ns));
    const onlyB = await http("GET", `${sim.url}/api/v1/namespaces/b/pods`);
    expect(itemNamespaces(onlyB.body)).toEqual(["b", "b", "b"]);

    const first = await http("GET", `${sim.url}/api/v1/pods?limit=1`);
    for (let i = 0; i < 5; i++) sim.patch("pods", "a", "p1", { metadata: { labels: { n: String(i) } } });
    sim.faults.setHistoryLimit(2);
    const expired = await http(
      "GET",
      `${sim.url}/api/v1/pods?limit=1&continue=${first.body.metadata.continue as string}`,
    );
    expect(expired.status).toBe(410);
    expect(expired.body).toMatchObject({ kind: "Status", reason: "Expired", code: 410 });

    const bad = await http("GET", `${sim.url}/api/v1/pods?limit=1&continue=garbage`);
    expect(bad.status).toBe(400);
  });
});

describe("simulator watch", () => {
  it("without a resourceVersion starts with ADDED events of the current state, then streams changes", async () => {
    const sim = await startTestSim();
    sim.create("pods", podBody("a"));
    sim.create("pods", podBody("b", "other"));
    const w = openWatch(`${sim.url}/api/v1/pods`);
    onTestFinished(() => w.close());
    expect(await w.status).toBe(200);
    await w.count(2);
    expect(w.events.map((e) => [e.type, e.object.metadata.name])).toEqual([
      ["ADDED", "a"],
      ["ADDED", "b"],
    ]);
    sim.patch("pods", "default", "a", { metadata: { labels: { x: "1" } } });
    sim.remove("pods", "other", "b");
    await w.count(4);
    expect(w.events.slice(2).map((e) => e.type)).toEqual(["MODIFIED", "DELETED"]);
    const deleted = w.events[3]!;
    expect(Number(deleted.object.metadata.resourceVersion)).toBe(Number(sim.resourceVersion));
  });

  it("from a resourceVersion sends every retained change after it, filtered by namespace", async () => {
    const sim = await startTestSim();
    sim.create("pods", podBody("a"));
    const rv = sim.resourceVersion;
    sim.create("pods", podBody("b"));
    sim.create("pods", podBody("c", "other"));
    sim.patch("pods", "default", "a", { metadata: { labels: { x: "1" } } });
    const all = openWatch(`${sim.url}/api/v1/pods?resourceVersion=${rv}`);
    const ns = openWatch(`${sim.url}/api/v1/namespaces/other/pods?resourceVersion=${rv}`);
    onTestFinished(() => (all.close(), ns.close()));
    await all.count(3);
    expect(all.events.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual([
      "ADDED b",
      "ADDED c",
      "MODIFIED a",
    ]);
    await ns.count(1);
    sim.create("pods", podBody("d", "other"));
    await ns.count(2);
    expect(ns.events.map((e) => e.object.metadata.name)).toEqual(["c", "d"]);
    const rvs = all.events.map((e) => Number(e.object.metadata.resourceVersion));
    expect([...rvs].sort((x, y) => x - y)).toEqual(rvs);
    expect(rvs[0]).toBeGreaterThan(Number(rv));
  });

  it("answers HTTP 410 with an Expired Status for a resourceVersion older than the history", async () => {
    const sim = await startTestSim({ historyLimit: 3 });
    const rv = sim.resourceVersion;
    for (let i = 0; i < 5; i++) sim.create("pods", podBody(`p${i}`));
    const w = openWatch(`${sim.url}/api/v1/pods?resourceVersion=${rv}`);
    expect(await w.status).toBe(410);
    expect(await w.errorBody).toMatchObject({
      kind: "Status",
      apiVersion: "v1",
      status: "Failure",
      reason: "Expired",
      code: 410,
    });
    // Other resources have no history to miss: the same RV is fine there.
    const nodes = openWatch(`${sim.url}/api/v1/nodes?resourceVersion=${rv}`);
    onTestFinished(() => nodes.close());
    expect(await nodes.status).toBe(200);
  });

  it("sends BOOKMARKs to watches that asked, on demand and periodically", async () => {
    const sim = await startTestSim({ bookmarkIntervalMs: 50 });
    const rv = sim.resourceVersion;
    const withBm = openWatch(
      `${sim.url}/apis/crd.projectcalico.org/v1/ippools?resourceVersion=${rv}&allowWatchBookmarks=true`,
    );
    const without = openWatch(`${sim.url}/apis/crd.projectcalico.org/v1/ippools?resourceVersion=${rv}`);
    onTestFinished(() => (withBm.close(), without.close()));
    await Promise.all([withBm.status, without.status]);
    sim.create("nodes", { metadata: { name: "n1" } }); // advances the global resourceVersion
    const bm = await withBm.next((e) => e.type === "BOOKMARK");
    expect(bm.object).toEqual({
      kind: "IPPool",
      apiVersion: "crd.projectcalico.org/v1",
      metadata: { resourceVersion: expect.any(String) },
    });
    const count = withBm.events.length;
    await withBm.next((e) => e.type === "BOOKMARK", 5000, count); // the next periodic one
    sim.sendBookmarks();
    sim.create("ippools", { metadata: { name: "p" }, spec: { cidr: "10.0.0.0/16" } });
    await without.next((e) => e.type === "ADDED");
    expect(without.events.some((e) => e.type === "BOOKMARK")).toBe(false);
    expect(sim.stats.bookmarksSent).toBeGreaterThanOrEqual(2);
  });

  it("ends the response after timeoutSeconds", async () => {
    const sim = await startTestSim();
    const started = Date.now();
    const w = openWatch(`${sim.url}/api/v1/pods?timeoutSeconds=1`);
    expect(await w.status).toBe(200);
    expect(sim.openWatches).toBe(1);
    await w.ended;
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(sim.openWatches).toBe(0);
    expect(sim.requestCounts["watch pods"]).toBe(1);
  });
});
