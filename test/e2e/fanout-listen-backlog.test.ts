/**
 * The agent port's accept queue (`listenBacklog`), with real sockets: while the server's thread is busy
 * (here: blocked), the kernel completes connections up to the backlog and drops the rest, which then wait
 * for a SYN retransmit (a second or more). A connect storm of a replica's share of 1000 agents must fit.
 */
import { Worker } from "node:worker_threads";
import { describe, expect, it, onTestFinished } from "vitest";
import { startFanout } from "./fanout-harness.js";

/** The connecting side: a worker thread, so that it runs while this thread is blocked. */
const CONNECTOR = `
const { workerData, parentPort } = require("node:worker_threads");
const net = require("node:net");
const { port, count, windowMs, shared } = workerData;
const flags = new Int32Array(shared);
// Wait until the server's thread is about to block.
Atomics.wait(flags, 1, 0, 10000);
const sockets = [];
let connected = 0;
for (let i = 0; i < count; i++) {
  const s = net.connect({ port, host: "127.0.0.1" }, () => connected++);
  s.on("error", () => {});
  sockets.push(s);
}
setTimeout(() => {
  parentPort.postMessage(connected);
  for (const s of sockets) s.destroy();
  Atomics.store(flags, 0, 1);
  Atomics.notify(flags, 0);
}, windowMs);
`;

/** How many of `count` TCP connects complete within `windowMs` while the server's thread accepts none. */
async function connectsWhileBlocked(port: number, count: number, windowMs: number): Promise<number> {
  const shared = new SharedArrayBuffer(8);
  const flags = new Int32Array(shared);
  const worker = new Worker(CONNECTOR, { eval: true, workerData: { port, count, windowMs, shared } });
  onTestFinished(() => void worker.terminate());
  const result = new Promise<number>((resolve, reject) => {
    worker.once("message", (n: number) => resolve(n));
    worker.once("error", reject);
  });
  await new Promise<void>((resolve) => worker.once("online", () => resolve()));
  Atomics.store(flags, 1, 1);
  Atomics.notify(flags, 1);
  // This thread (the server's) now accepts nothing until the worker is done.
  Atomics.wait(flags, 0, 0, 10_000);
  return result;
}

describe("listen backlog", () => {
  it("by default takes a burst of connections while the server is busy", async () => {
    const h = await startFanout();
    expect(await connectsWhileBlocked(h.port, 64, 400)).toBe(64);
  });

  it("is the listener's accept queue: beyond it, connections wait for a SYN retransmit", async () => {
    const h = await startFanout({ options: { listenBacklog: 8 } });
    const connected = await connectsWhileBlocked(h.port, 64, 400);
    // Linux completes backlog + 1 connections; the others are still waiting when the window ends.
    expect(connected).toBeGreaterThanOrEqual(8);
    expect(connected).toBeLessThanOrEqual(10);
  });
});
