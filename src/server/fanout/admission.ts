import type { Socket } from "node:net";

export interface AdmissionOptions {
  /** Connections not yet authenticated (TLS, HTTP upgrade, hello, review) at once; the oldest is evicted beyond. */
  readonly maxPending: number;
  /** Connections not yet authenticated per source address (0: no cap, for a trusted proxy). */
  readonly maxPendingPerSource: number;
}

export interface AdmissionEvents {
  /** A connection was refused at accept: its source already holds maxPendingPerSource. */
  refusedPerSource(): void;
  /** The oldest pending connection was cut to make room for a new one. */
  evicted(): void;
}

/** The id of a TCP connection, the same on the raw socket and on the TLS socket wrapping it. */
export function connectionKey(socket: {
  remoteAddress?: string | undefined;
  remotePort?: number | undefined;
}): string {
  return `${socket.remoteAddress ?? "?"}|${String(socket.remotePort ?? "?")}`;
}

/**
 * Admission of connections before they are authenticated, so that anonymous ones cannot hold the server:
 * a cap on pending connections (from TCP accept until the hello is authenticated) apart from the session
 * limit, a cap per source address, and, when the pending pool is full, the oldest pending connection makes
 * room (an agent that completes its handshake in milliseconds gets through a pool full of idle
 * attempts; the idle ones are the oldest).
 */
export class Admission {
  readonly #o: AdmissionOptions;
  readonly #events: AdmissionEvents;
  /** Pending connections, oldest first (a Map keeps insertion order). */
  readonly #pending = new Map<string, { readonly socket: Socket; readonly source: string }>();
  readonly #perSource = new Map<string, number>();

  constructor(options: AdmissionOptions, events: AdmissionEvents) {
    this.#o = options;
    this.#events = events;
  }

  /** Connections accepted and not yet authenticated. */
  get pending(): number {
    return this.#pending.size;
  }

  /** A new TCP connection: admitted (tracked until settled or closed) or destroyed. */
  admit(socket: Socket): void {
    const source = socket.remoteAddress ?? "?";
    const fromSource = this.#perSource.get(source) ?? 0;
    if (this.#o.maxPendingPerSource > 0 && fromSource >= this.#o.maxPendingPerSource) {
      this.#events.refusedPerSource();
      socket.destroy();
      return;
    }
    while (this.#pending.size >= this.#o.maxPending) {
      const [oldestKey, oldest] = this.#pending.entries().next().value as [
        string,
        { readonly socket: Socket },
      ];
      this.#forget(oldestKey);
      this.#events.evicted();
      oldest.socket.destroy();
    }
    const key = connectionKey(socket);
    this.#pending.set(key, { socket, source });
    this.#perSource.set(source, fromSource + 1);
    socket.once("close", () => this.#forget(key));
  }

  /** The connection authenticated: it no longer counts as pending. */
  settle(key: string): void {
    this.#forget(key);
  }

  #forget(key: string): void {
    const entry = this.#pending.get(key);
    if (entry === undefined) return;
    this.#pending.delete(key);
    const source = entry.source;
    const n = (this.#perSource.get(source) ?? 1) - 1;
    if (n <= 0) this.#perSource.delete(source);
    else this.#perSource.set(source, n);
  }
}
