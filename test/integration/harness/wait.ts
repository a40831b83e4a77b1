import net from "node:net";
import { setTimeout as delay } from "node:timers/promises";

export class WaitTimeoutError extends Error {
  override readonly name = "WaitTimeoutError";
  readonly code = "ERR_WAIT_TIMEOUT";
}

export interface WaitOptions {
  /** What is awaited, for the error message. */
  readonly what: string;
  readonly timeoutMs: number;
  /** Pause between checks. Default 100 ms. */
  readonly intervalMs?: number;
  /** Called when the wait gives up; its text is appended to the error (e.g. a process's output). */
  readonly describeFailure?: () => string;
}

/**
 * Checks `probe` until it returns a value other than undefined, or throws when it gives up. A probe that
 * throws a `FatalWaitError` ends the wait at once (a process died). Other probe errors are remembered
 * and reported if the wait times out (a server that is still starting refuses connections).
 */
export async function waitFor<T>(probe: () => Promise<T | undefined>, options: WaitOptions): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      if (err instanceof FatalWaitError) throw err;
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const detail = options.describeFailure?.() ?? "";
      throw new WaitTimeoutError(
        `timed out after ${options.timeoutMs} ms waiting for ${options.what}${detail === "" ? "" : `\n${detail}`}`,
        lastError === undefined ? undefined : { cause: lastError },
      );
    }
    await delay(options.intervalMs ?? 100);
  }
}

/** Thrown by a probe to stop waiting now. */
export class FatalWaitError extends Error {
  override readonly name = "FatalWaitError";
  readonly code = "ERR_WAIT_FATAL";
}

/**
 * `count` distinct free TCP ports on 127.0.0.1 (bound together, then released). Another process may take
 * one before it is used: callers retry on "address already in use".
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = net.createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => resolve());
      });
    }
    return servers.map((s) => {
      const address = s.address();
      if (address === null || typeof address === "string") throw new Error("no TCP address");
      return address.port;
    });
  } finally {
    await Promise.all(
      servers.map(
        (s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve())),
      ),
    );
  }
}
