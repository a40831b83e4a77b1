/**
 * Baseline worker process: agents that list and watch the simulator directly (what tabby replaces).
 * Run as `node --import tsx loadtest/baseline-worker.ts` with an IPC channel; exits when the parent goes.
 */
import { BaselineAgents } from "./baseline-agents.js";
import { serveParent } from "./ipc.js";
import type { BaselineOps } from "./protocol.js";

const agents = new BaselineAgents();

const channel = serveParent<BaselineOps>(
  {
    start: (config) => ({ started: agents.start(config) }),
    progress: () => agents.progress(),
  },
  () => {
    agents.close();
    return Promise.resolve();
  },
);
channel.reportReady({ role: "baseline" });
