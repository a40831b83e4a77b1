/**
 * The ceiling broadcaster's process (see ceiling-broadcaster.ts): its own process, so that its CPU and
 * memory are measured apart, like the server's. Run as `node --import tsx loadtest/ceiling-process.ts`
 * with an IPC channel; it reports its port and server id when ready.
 */
import { CeilingBroadcaster } from "./ceiling-broadcaster.js";
import { serveParent } from "./ipc.js";
import type { CeilingOps, CeilingReady } from "./protocol.js";

const broadcaster = await CeilingBroadcaster.start();

const channel = serveParent<CeilingOps>(
  {
    replay: ({ frames, changesPerSecond, durationSeconds }) =>
      broadcaster.replay(frames, changesPerSecond, durationSeconds),
    stats: () => broadcaster.stats(),
    snapshot: ({ snapshot }) => broadcaster.snapshot(snapshot),
  },
  () => broadcaster.close(),
);

const ready: CeilingReady = { port: broadcaster.port, serverId: broadcaster.serverId };
channel.reportReady({ role: "ceiling", ...ready });
