/**
 * Agent worker process: holds many TabbyClient connections for the load test and answers the parent's
 * requests (see protocol.ts WorkerOps). Exits when the parent goes away.
 * Run as `node --import tsx loadtest/agent-worker.ts` with an IPC channel.
 */
import { AgentPool } from "./agent-pool.js";
import { serveParent } from "./ipc.js";
import type { WorkerOps } from "./protocol.js";

const pool = new AgentPool();

const channel = serveParent<WorkerOps>(
  {
    start: ({ servers, agents, backoffMaxMs }) => ({ started: pool.start(servers, agents, backoffMaxMs) }),
    progress: ({ expectServerId, minRevision }) => pool.progress(expectServerId, minRevision),
    window: ({ isRecording, isRecordingFrames }) => ({
      windowStartMs: pool.window(isRecording, isRecordingFrames),
    }),
    restart: ({ servers }) => pool.restart(servers),
    collect: () => pool.collect(),
    expect: ({ digest }) => ({ fullAgents: pool.expect(digest) }),
    verify: () => pool.verify(),
  },
  () => pool.close(),
);
channel.reportReady({ role: "agents" });
