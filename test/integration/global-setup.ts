/**
 * Global setup of the integration tier (runs in the main vitest process). It gives the workers a run
 * directory (`TABBY_INTEGRATION_RUN_DIR`) for their temp dirs and pid files; the teardown kills any etcd
 * or kube-apiserver a worker could not clean up itself (a worker killed with SIGKILL runs no exit hooks)
 * and removes the directory.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";

function commandOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0];
  } catch {
    return undefined; // gone
  }
}

export default function setup(): () => void {
  const runDir = mkdtempSync(path.join(os.tmpdir(), "tabby-integration-"));
  process.env.TABBY_INTEGRATION_RUN_DIR = runDir;
  return () => {
    for (const file of readdirSync(runDir)) {
      if (!file.endsWith(".pid")) continue;
      const pid = Number(file.slice(0, -".pid".length));
      const expected = readFileSync(path.join(runDir, file), "utf8").trim();
      // Only a process that still runs the binary we started (the pid may have been reused).
      if (!Number.isSafeInteger(pid) || commandOf(pid) !== expected) continue;
      console.warn(`[integration teardown] killing leftover ${expected} (pid ${pid})`);
      process.kill(pid, "SIGKILL");
    }
    rmSync(runDir, { recursive: true, force: true });
  };
}
