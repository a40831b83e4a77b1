import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import path from "node:path";

/**
 * Child processes of the integration harness (etcd, kube-apiserver). Every process started here is
 * tracked until it exits; if the test process exits or is told to stop (SIGINT, SIGTERM, SIGHUP) while
 * some are alive, they are killed (SIGKILL) first, so a failing or interrupted test run never leaves one
 * behind. When the integration global setup set `TABBY_INTEGRATION_RUN_DIR`, each live process also has
 * a pid file there, which the global teardown reaps should the test worker itself have been killed.
 */

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** Most bytes of combined stdout/stderr kept per process (for error messages). */
const OUTPUT_TAIL_BYTES = 64 * 1024;

const live = new Set<ManagedProcess>();
let areHooksInstalled = false;

export class ManagedProcess {
  readonly name: string;
  readonly pid: number;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;
  #exit: ExitInfo | undefined;
  #output = "";
  readonly #child: ChildProcess;
  readonly #pidFile: string | undefined;

  constructor(name: string, command: string, args: readonly string[], cwd: string) {
    installExitHooks();
    this.name = name;
    const child = spawn(command, args, { cwd, stdio: ["ignore", "pipe", "pipe"], detached: false });
    this.#child = child;
    if (child.pid === undefined) {
      // spawn failed synchronously (ENOENT etc.); the 'error' event carries the reason.
      this.pid = -1;
    } else {
      this.pid = child.pid;
      live.add(this);
    }
    const append = (chunk: Buffer): void => {
      this.#output += chunk.toString("utf8");
      if (this.#output.length > OUTPUT_TAIL_BYTES * 2) this.#output = this.#output.slice(-OUTPUT_TAIL_BYTES);
    };
    child.stdout?.on("data", append);
    child.stderr?.on("data", append);
    this.exited = new Promise<ExitInfo>((resolve) => {
      child.once("error", (err) => {
        this.#output += `\n[spawn error] ${err.message}\n`;
        this.#markExited({ code: null, signal: null });
        resolve({ code: null, signal: null });
      });
      child.once("exit", (code, signal) => {
        this.#markExited({ code, signal });
        resolve({ code, signal });
      });
    });
    const runDir = process.env.TABBY_INTEGRATION_RUN_DIR;
    if (runDir !== undefined && runDir !== "" && this.pid > 0) {
      this.#pidFile = path.join(runDir, `${this.pid}.pid`);
      writeFileSync(this.#pidFile, `${command}\n`);
    }
  }

  get isRunning(): boolean {
    return this.#exit === undefined;
  }

  get exitInfo(): ExitInfo | undefined {
    return this.#exit;
  }

  /** The last ~64 KiB of what the process wrote to stdout and stderr. */
  outputTail(maxBytes = 4096): string {
    return this.#output.slice(-maxBytes);
  }

  /**
   * Sends `signal` and waits for the exit; after `timeoutMs` sends SIGKILL. Resolves once the process is
   * gone. Idempotent.
   */
  async stop(signal: NodeJS.Signals = "SIGTERM", timeoutMs = 10_000): Promise<ExitInfo> {
    if (this.#exit !== undefined) return this.#exit;
    this.#child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const forced = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    const first = await Promise.race([this.exited, forced]);
    clearTimeout(timer);
    if (first === "timeout") {
      this.#child.kill("SIGKILL");
      return this.exited;
    }
    return first;
  }

  /** SIGKILL now, synchronously (exit hooks). */
  killNow(): void {
    if (this.#exit === undefined) this.#child.kill("SIGKILL");
  }

  #markExited(info: ExitInfo): void {
    if (this.#exit !== undefined) return;
    this.#exit = info;
    live.delete(this);
    if (this.#pidFile !== undefined) rmSync(this.#pidFile, { force: true });
  }
}

function killAllNow(): void {
  for (const p of live) p.killNow();
}

function installExitHooks(): void {
  if (areHooksInstalled) return;
  areHooksInstalled = true;
  process.once("exit", killAllNow);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = (): void => {
      killAllNow();
      // Keep the default behaviour (terminate) unless someone else handles the signal.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.once(signal, onSignal);
  }
}
