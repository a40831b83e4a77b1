/**
 * The server of the reconnect leak bench (bench/reconnect-leak.ts), as a child process: `runServer` on
 * loopback with the kubeconfig given as argv[2], answering `footprint` requests over IPC with its file
 * descriptors, sockets and memory, after a full GC (run with --expose-gc).
 */
import { readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import pino from "pino";
import { serveParent } from "../loadtest/ipc.js";
import { loadServeConfig } from "../src/server/config.js";
import { runServer } from "../src/server/main.js";

export interface ServerFootprint {
  readonly fds: number;
  readonly sockets: number;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  readonly externalBytes: number;
  /** Connections the server holds (past the handshake, and handshaking). */
  readonly connections: number;
  /** Connections accepted since start. */
  readonly accepted: number;
}

export type LeakServerOps = {
  footprint: { args: null; result: ServerFootprint };
};

const gc = (globalThis as { gc?: () => void }).gc;
const kubeconfig = process.argv[2];
if (gc === undefined || kubeconfig === undefined) {
  throw new Error("usage: node --expose-gc leak-server.ts KUBECONFIG");
}

async function countFds(): Promise<{ fds: number; sockets: number }> {
  const dir = "/proc/self/fd";
  const fds = await readdir(dir);
  let sockets = 0;
  for (const fd of fds) {
    try {
      if ((await readlink(join(dir, fd))).startsWith("socket:")) sockets++;
    } catch {
      // Closed between readdir and readlink (the readdir's own fd, for one): not counted.
    }
  }
  return { fds: fds.length, sockets };
}

const config = loadServeConfig(
  {
    kubeconfig,
    host: "127.0.0.1",
    httpHost: "127.0.0.1",
    port: "0",
    healthPort: "0",
    metricsPort: "0",
    insecureAllowAnonymous: "true",
    // Every agent connects from 127.0.0.1.
    maxHandshakingPerSource: "0",
  },
  {},
);
const server = await runServer(config, { logger: pino({ level: "warn" }) });
const parent = serveParent<LeakServerOps>(
  {
    footprint: async () => {
      // Two GCs with a pause between: V8 frees array buffers in a concurrent sweep after the first.
      gc();
      await new Promise((resolve) => setTimeout(resolve, 200));
      gc();
      const m = process.memoryUsage();
      const counts = await countFds();
      const status = server.fanout.status();
      return {
        ...counts,
        rssBytes: m.rss,
        heapUsedBytes: m.heapUsed,
        externalBytes: m.external,
        connections: status.connections.active + status.connections.handshaking,
        accepted: status.counters.accepted,
      };
    },
  },
  () => server.destroy(),
);
parent.reportReady({ port: server.port });
