import { createConnection, createServer } from "node:net";
import type { AddressInfo, Server, Socket } from "node:net";

interface Pair {
  readonly client: Socket;
  readonly upstream: Socket;
}

/**
 * A TCP proxy between agents and one tabby server, with faults: every byte is delayed by `delayMs`
 * (in order), connections can be cut at once, or cut after passing part of the next chunk (a truncated
 * frame), and forwarding can be stalled (sockets open, nothing moves). The target port can change (a
 * server restarted on a new port); new connections go there.
 */
export class ChaosProxy {
  readonly #server: Server;
  readonly #pairs = new Set<Pair>();
  #targetPort: number;
  #delayMs = 0;
  #isStalled = false;
  #truncateNext = false;
  /** Chunks held while stalled, released in order. */
  #held: (() => void)[] = [];
  #port = 0;

  constructor(targetPort: number) {
    this.#targetPort = targetPort;
    this.#server = createServer((client) => this.#accept(client));
  }

  get port(): number {
    return this.#port;
  }

  get connections(): number {
    return this.#pairs.size;
  }

  set targetPort(port: number) {
    this.#targetPort = port;
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(0, "127.0.0.1", () => resolve());
    });
    this.#port = (this.#server.address() as AddressInfo).port;
  }

  setDelay(ms: number): void {
    this.#delayMs = Math.max(0, ms);
  }

  stall(on: boolean): void {
    this.#isStalled = on;
    if (!on) for (const release of this.#held.splice(0)) release();
  }

  /** The next chunk in either direction is cut in half and its connection destroyed. */
  truncateNext(): void {
    this.#truncateNext = true;
  }

  cutAll(): void {
    for (const p of this.#pairs) {
      p.client.destroy();
      p.upstream.destroy();
    }
  }

  async close(): Promise<void> {
    this.stall(false);
    this.cutAll();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    const upstream = createConnection({ host: "127.0.0.1", port: this.#targetPort });
    const pair: Pair = { client, upstream };
    this.#pairs.add(pair);
    const end = (): void => {
      this.#pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    this.#pipe(client, upstream, end);
    this.#pipe(upstream, client, end);
  }

  /** Forwards `from` → `to` in order: each chunk waits until its due time and while the proxy is stalled. */
  #pipe(from: Socket, to: Socket, end: () => void): void {
    const queue: { dueMs: number; chunk: Buffer }[] = [];
    let timer: NodeJS.Timeout | undefined;
    const pump = (): void => {
      timer = undefined;
      while (queue.length > 0 && !to.destroyed) {
        if (this.#isStalled) {
          this.#held.push(pump);
          return;
        }
        const head = queue[0]!;
        const waitMs = head.dueMs - Date.now();
        if (waitMs > 0) {
          timer = setTimeout(pump, waitMs);
          return;
        }
        queue.shift();
        if (this.#truncateNext && head.chunk.byteLength > 1) {
          this.#truncateNext = false;
          to.write(head.chunk.subarray(0, head.chunk.byteLength >> 1), () => end());
          return;
        }
        to.write(head.chunk);
      }
    };
    from.on("data", (chunk: Buffer) => {
      queue.push({ dueMs: Date.now() + this.#delayMs, chunk });
      if (timer === undefined && queue.length === 1) pump();
    });
    from.once("close", () => {
      if (timer !== undefined) clearTimeout(timer);
      queue.length = 0;
    });
  }
}
