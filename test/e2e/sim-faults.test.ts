import { describe, expect, it, onTestFinished } from "vitest";
import { http, itemNames, openWatch, podBody, startTestSim } from "./sim-test-utils.js";

describe("simulator faults", () => {
  it("dropWatches ends every open watch cleanly; a re-watch from the last RV misses nothing", async () => {
    const sim = await startTestSim();
    const a = openWatch(`${sim.url}/api/v1/pods?resourceVersion=${sim.resourceVersion}`);
    const b = openWatch(`${sim.url}/api/v1/nodes?resourceVersion=${sim.resourceVersion}`);
    await Promise.all([a.status, b.status]);
    sim.create("pods", podBody("p1"));
    await a.count(1);
    expect(sim.openWatches).toBe(2);
    sim.faults.dropWatches();
    await Promise.all([a.ended, b.ended]);
    expect(sim.openWatches).toBe(0);
    sim.create("pods", podBody("p2"));
    const again = openWatch(
      `${sim.url}/api/v1/pods?resourceVersion=${a.events[0]!.object.metadata.resourceVersion!}`,
    );
    onTestFinished(() => again.close());
    const e = await again.next(() => true);
    expect(e.object.metadata.name).toBe("p2");
  });

  it("stallWatches keeps watches open but silent (no events, no bookmarks), then delivers what queued", async () => {
    const sim = await startTestSim();
    const w = openWatch(
      `${sim.url}/api/v1/pods?resourceVersion=${sim.resourceVersion}&allowWatchBookmarks=true`,
    );
    onTestFinished(() => w.close());
    await w.status;
    sim.faults.stallWatches(true);
    sim.create("pods", podBody("p1"));
    sim.sendBookmarks();
    // A watch opened during the stall gets nothing either, not even its initial events.
    const late = openWatch(`${sim.url}/api/v1/pods`);
    onTestFinished(() => late.close());
    expect(await late.status).toBe(200);
    // Wait for a marker on an unaffected channel (a plain GET) so the stall had a chance to leak.
    expect((await http("GET", `${sim.url}/api/v1/pods`)).body.items).toHaveLength(1);
    expect(w.events).toEqual([]);
    expect(late.events).toEqual([]);
    expect(sim.openWatches).toBe(2);
    sim.faults.stallWatches(false);
    const e = await w.next((x) => x.type === "ADDED");
    expect(e.object.metadata.name).toBe("p1");
    await late.next((x) => x.type === "ADDED");
    expect(w.events.some((x) => x.type === "BOOKMARK")).toBe(false); // bookmarks are not queued
  });

  it("failRequests answers 500 or 429 (with Retry-After) for a while, for all or some resources", async () => {
    let now = 1_000_000;
    const sim = await startTestSim({ clock: () => now });
    sim.faults.failRequests(500, 1000);
    const failed = await http("GET", `${sim.url}/api/v1/pods`);
    expect(failed.status).toBe(500);
    expect(failed.body).toMatchObject({ kind: "Status", reason: "InternalError", code: 500 });
    expect((await http("GET", `${sim.url}/apis`)).status).toBe(500);
    now += 1001;
    expect((await http("GET", `${sim.url}/api/v1/pods`)).status).toBe(200);

    sim.faults.failRequests(429, 1000, { resources: ["nodes", "networkpolicies.crd.projectcalico.org"] });
    const limited = await http("GET", `${sim.url}/api/v1/nodes`);
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("1");
    expect(limited.body).toMatchObject({ reason: "TooManyRequests", code: 429 });
    expect((await http("GET", `${sim.url}/apis/crd.projectcalico.org/v1/networkpolicies`)).status).toBe(429);
    expect((await http("GET", `${sim.url}/apis/networking.k8s.io/v1/networkpolicies`)).status).toBe(200);
    const w = openWatch(`${sim.url}/api/v1/nodes`);
    expect(await w.status).toBe(429);
    expect((await http("GET", `${sim.url}/api/v1/pods`)).status).toBe(200);
    expect(sim.stats.injectedFailures).toBe(5);
    expect(sim.requestCounts["watch nodes"]).toBe(1);
    expect(() => sim.faults.failRequests(500, 10, { resources: ["nope"] })).toThrow(
      expect.objectContaining({ code: "ERR_SIM_RESOURCE_NOT_FOUND" }),
    );
  });

  it("setHistoryLimit compacts: a watch from a resourceVersion before the kept history gets 410", async () => {
    const sim = await startTestSim();
    const rv = sim.resourceVersion;
    for (let i = 0; i < 10; i++) sim.create("pods", podBody(`p${i}`));
    const ok = openWatch(`${sim.url}/api/v1/pods?resourceVersion=${rv}`);
    onTestFinished(() => ok.close());
    await ok.count(10);
    sim.faults.setHistoryLimit(4);
    const old = openWatch(`${sim.url}/api/v1/pods?resourceVersion=${rv}`);
    expect(await old.status).toBe(410);
    const recentRv = Number(sim.resourceVersion) - 4;
    const recent = openWatch(`${sim.url}/api/v1/pods?resourceVersion=${recentRv}`);
    onTestFinished(() => recent.close());
    await recent.count(4);
  });

  it("expireWatches sends an in-stream ERROR event with a 410 Status, then ends each watch", async () => {
    const sim = await startTestSim();
    const w = openWatch(
      `${sim.url}/apis/crd.projectcalico.org/v1/ippools?resourceVersion=${sim.resourceVersion}`,
    );
    expect(await w.status).toBe(200);
    sim.faults.expireWatches();
    const e = await w.next((x) => x.type === "ERROR");
    expect(e.object).toMatchObject({
      kind: "Status",
      apiVersion: "v1",
      status: "Failure",
      reason: "Expired",
      code: 410,
    });
    await w.ended;
    expect(sim.openWatches).toBe(0);
  });

  it("restart closes the listener and every connection, listens again on the same port, and keeps state", async () => {
    const sim = await startTestSim();
    sim.create("pods", podBody("keep"));
    const rv = sim.resourceVersion;
    const port = sim.port;
    const w = openWatch(`${sim.url}/api/v1/pods?resourceVersion=${rv}`);
    await w.status;
    await sim.restart();
    await w.ended;
    expect(sim.port).toBe(port);
    expect(sim.openWatches).toBe(0);
    const list = await http("GET", `${sim.url}/api/v1/pods`);
    expect(itemNames(list.body)).toEqual(["keep"]);
    expect(list.body.metadata.resourceVersion).toBe(rv);
    sim.create("pods", podBody("after"));
    const resumed = openWatch(`${sim.url}/api/v1/pods?resourceVersion=${rv}`);
    onTestFinished(() => resumed.close());
    expect((await resumed.next(() => true)).object.metadata.name).toBe("after");
  });

  it("ends a watch whose client does not read once too much is queued", async () => {
    const sim = await startTestSim({ maxWatchBufferedBytes: 64 * 1024 });
    const w = openWatch(`${sim.url}/api/v1/pods?resourceVersion=${sim.resourceVersion}`);
    await w.status;
    sim.faults.stallWatches(true);
    const big = "x".repeat(1024);
    for (let i = 0; i < 100; i++) sim.create("pods", { ...podBody(`p${i}`), data: big });
    await w.ended;
    expect(sim.stats.watchesOverflowed).toBe(1);
    expect(sim.openWatches).toBe(0);
  });
});

describe("simulator start", () => {
  it("fails to start on a port in use, leaving nothing behind", async () => {
    const sim = await startTestSim();
    await expect(startTestSim({ port: sim.port })).rejects.toMatchObject({ code: "EADDRINUSE" });
  });
});
