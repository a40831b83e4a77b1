import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Request/response over a child process's IPC channel ("advanced" serialization). The parent sends
 * `{ id, op, args }`; the child answers `{ id, ok, result | error }`. A child reports `{ type: "ready" }`
 * once, when it can take requests.
 */

/** An operation table: for each op, the argument and the result types. */
export type OpTable = Record<string, { args: unknown; result: unknown }>;

interface RequestMessage {
  readonly id: number;
  readonly op: string;
  readonly args: unknown;
}

interface ResponseMessage {
  readonly id: number;
  readonly ok: boolean;
  readonly result?: unknown;
  readonly error?: { readonly code: string; readonly message: string };
}

export class LoadtestIpcError extends Error {
  override readonly name = "LoadtestIpcError";
  readonly code: "ERR_LOADTEST_IPC_TIMEOUT" | "ERR_LOADTEST_IPC_EXITED" | "ERR_LOADTEST_IPC_REMOTE";
  constructor(code: LoadtestIpcError["code"], message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

const HERE = dirname(fileURLToPath(import.meta.url));

/** A child process of the load test (simulator, agent worker, baseline worker) and its request channel. */
export class ChildPeer<Ops extends OpTable> {
  readonly role: string;
  readonly process: ChildProcess;
  readonly ready: Promise<Record<string, unknown>>;
  #nextId = 1;
  readonly #pending = new Map<
    number,
    { resolve(v: unknown): void; reject(e: unknown): void; timer: NodeJS.Timeout }
  >();
  #stderrTail = "";
  readonly #exited: Promise<void>;

  /** Spawns `node --import tsx loadtest/<entry>` (or the compiled .js next to this file). */
  constructor(
    role: string,
    entry: string,
    args: readonly string[],
    options: { readyTimeoutMs: number; execArgv?: readonly string[] },
  ) {
    this.role = role;
    const isSource = fileURLToPath(import.meta.url).endsWith(".ts");
    const file = join(HERE, isSource ? entry : entry.replace(/\.ts$/, ".js"));
    const execArgv = [...(options.execArgv ?? []), ...(isSource ? ["--import", "tsx"] : [])];
    this.process = spawn(process.execPath, [...execArgv, file, ...args], {
      stdio: ["ignore", "ignore", "pipe", "ipc"],
      serialization: "advanced",
    });
    this.process.stderr?.on("data", (d: Buffer) => {
      this.#stderrTail = (this.#stderrTail + d.toString()).slice(-4000);
    });
    this.#exited = new Promise((resolve) => this.process.once("exit", () => resolve()));
    this.process.on("message", (m: unknown) => this.#onMessage(m));
    this.process.once("exit", (code, signal) => {
      for (const [id, p] of this.#pending) {
        clearTimeout(p.timer);
        p.reject(
          new LoadtestIpcError(
            "ERR_LOADTEST_IPC_EXITED",
            `${role} exited (${signal ?? code}) during a request: ${this.#stderrTail}`,
          ),
        );
        this.#pending.delete(id);
      }
    });
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new LoadtestIpcError(
            "ERR_LOADTEST_IPC_TIMEOUT",
            `${role} not ready within ${options.readyTimeoutMs} ms: ${this.#stderrTail}`,
          ),
        );
      }, options.readyTimeoutMs);
      const onMessage = (m: unknown): void => {
        if (typeof m === "object" && m !== null && (m as { type?: unknown }).type === "ready") {
          clearTimeout(timer);
          this.process.off("message", onMessage);
          resolve(m as Record<string, unknown>);
        }
      };
      this.process.on("message", onMessage);
      this.process.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(
          new LoadtestIpcError(
            "ERR_LOADTEST_IPC_EXITED",
            `${role} exited (${signal ?? code}) before it was ready: ${this.#stderrTail}`,
          ),
        );
      });
    });
    // A rejection nobody awaits yet must not crash the parent; callers await `ready`.
    this.ready.catch(() => undefined);
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  get isAlive(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  get stderrTail(): string {
    return this.#stderrTail;
  }

  request<K extends keyof Ops & string>(
    op: K,
    args: Ops[K]["args"],
    timeoutMs = 30_000,
  ): Promise<Ops[K]["result"]> {
    if (!this.isAlive || !this.process.connected) {
      return Promise.reject(
        new LoadtestIpcError("ERR_LOADTEST_IPC_EXITED", `${this.role} is gone: ${this.#stderrTail}`),
      );
    }
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(
          new LoadtestIpcError(
            "ERR_LOADTEST_IPC_TIMEOUT",
            `${this.role} did not answer "${op}" in ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      const message: RequestMessage = { id, op, args };
      this.process.send(message, (err) => {
        if (err === null) return;
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(new LoadtestIpcError("ERR_LOADTEST_IPC_EXITED", `${this.role}: send failed`, { cause: err }));
      });
    });
  }

  /** SIGKILLs the child (by its PID) unless it has exited; resolves when it has. */
  async kill(): Promise<void> {
    if (this.isAlive) this.process.kill("SIGKILL");
    await this.#exited;
  }

  /** Lets the child exit by itself within `graceMs` (it exits when its IPC channel closes), else kills it. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.isAlive) return;
    if (this.process.connected) this.process.disconnect();
    const timer = setTimeout(() => {
      if (this.isAlive) this.process.kill("SIGKILL");
    }, graceMs);
    await this.#exited;
    clearTimeout(timer);
  }

  #onMessage(m: unknown): void {
    if (typeof m !== "object" || m === null || typeof (m as { id?: unknown }).id !== "number") return;
    const r = m as ResponseMessage;
    const p = this.#pending.get(r.id);
    if (p === undefined) return;
    this.#pending.delete(r.id);
    clearTimeout(p.timer);
    if (r.ok) p.resolve(r.result);
    else
      p.reject(
        new LoadtestIpcError(
          "ERR_LOADTEST_IPC_REMOTE",
          `${this.role}: ${r.error?.code ?? "error"}: ${r.error?.message ?? ""}`,
        ),
      );
  }
}

type Handlers<Ops extends OpTable> = {
  [K in keyof Ops]: (args: Ops[K]["args"]) => Ops[K]["result"] | Promise<Ops[K]["result"]>;
};

/**
 * Child side: answers requests with `handlers`, reports ready, and runs `onDisconnect` (then exits) when
 * the parent goes away, so that no child outlives the load test.
 */
export function serveParent<Ops extends OpTable>(
  handlers: Handlers<Ops>,
  onDisconnect: () => Promise<void>,
): { reportReady(details: Record<string, unknown>): void } {
  const send = process.send?.bind(process);
  if (send === undefined) throw new Error("this process must be spawned with an IPC channel");
  process.on("message", (m: unknown) => {
    if (typeof m !== "object" || m === null) return;
    const { id, op, args } = m as RequestMessage;
    const handler = (handlers as Record<string, ((a: unknown) => unknown) | undefined>)[op];
    const reply = (r: ResponseMessage): void => {
      if (process.connected) send(r);
    };
    if (handler === undefined) {
      reply({ id, ok: false, error: { code: "ERR_LOADTEST_UNKNOWN_OP", message: op } });
      return;
    }
    Promise.resolve()
      .then(() => handler(args))
      .then(
        (result) => reply({ id, ok: true, result }),
        (err: unknown) =>
          reply({
            id,
            ok: false,
            error: {
              code: (err as { code?: string }).code ?? "ERR_LOADTEST_CHILD",
              message: err instanceof Error ? (err.stack ?? err.message) : String(err),
            },
          }),
      );
  });
  process.on("disconnect", () => {
    onDisconnect().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  });
  return {
    reportReady: (details) => send({ type: "ready", pid: process.pid, ...details }),
  };
}
