import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** What a tabby child process (sim, serve) reports to its parent over IPC once it is listening. */
export interface ReadyMessage {
  readonly type: "ready";
  readonly role: string;
  readonly pid: number;
  readonly [field: string]: unknown;
}

/** Tells the parent (if this process was spawned with an IPC channel) that it is ready. */
export function reportReady(role: string, details: Record<string, unknown>): void {
  if (typeof process.send === "function" && process.connected) {
    process.send({ type: "ready", role, pid: process.pid, ...details });
  }
}

const HERE = fileURLToPath(import.meta.url);
/** The CLI entry next to this file: main.ts when running from source (tsx), main.js when compiled. */
const CLI_ENTRY = join(dirname(HERE), HERE.endsWith(".ts") ? "main.ts" : "main.js");

export interface TabbyChild {
  readonly process: ChildProcess;
  readonly ready: ReadyMessage;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the child has exited. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Runs `tabby <args>` as a child process (through tsx when running from source) and waits for its ready
 * message. Rejects if it exits or stays silent for `timeoutMs`.
 */
export function spawnTabby(
  args: readonly string[],
  options: {
    timeoutMs?: number;
    env?: NodeJS.ProcessEnv;
    execArgv?: readonly string[];
    /** Also append the child's stderr (its JSON log) to this file; default: only its tail is kept. */
    logFile?: string;
  } = {},
): Promise<TabbyChild> {
  const execArgv = [...(options.execArgv ?? []), ...(CLI_ENTRY.endsWith(".ts") ? ["--import", "tsx"] : [])];
  const child = spawn(process.execPath, [...execArgv, CLI_ENTRY, ...args], {
    stdio: ["ignore", "ignore", "pipe", "ipc"],
    env: options.env ?? process.env,
  });
  const log = options.logFile === undefined ? undefined : createWriteStream(options.logFile, { flags: "a" });
  log?.on("error", () => undefined); // a log that cannot be written is not the child's failure
  let stderrTail = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderrTail = (stderrTail + d.toString()).slice(-4000);
    log?.write(d);
  });
  child.stderr?.once("end", () => log?.end());
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async (graceMs = 10_000): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  };
  return new Promise<TabbyChild>((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop(1000);
      reject(
        new Error(
          `tabby ${args[0] ?? ""} did not report ready within ${options.timeoutMs ?? 60_000} ms: ${stderrTail}`,
        ),
      );
    }, options.timeoutMs ?? 60_000);
    child.on("message", (m: unknown) => {
      if (typeof m === "object" && m !== null && (m as { type?: unknown }).type === "ready") {
        clearTimeout(timer);
        resolve({ process: child, ready: m as ReadyMessage, stop });
      }
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(
        new Error(`tabby ${args[0] ?? ""} exited (${signal ?? code}) before it was ready: ${stderrTail}`),
      );
    });
  });
}
