import { EventEmitter } from "node:events";
import type { TabbyClientError } from "./errors.js";
import type { ClientStatus } from "./status.js";
import type { TypedUpdate } from "./types/index.js";

/** The client's events and the argument each listener gets. */
export interface ClientEventMap {
  /** Narrow an entry by its `kind` to get its typed value (see TypedUpdate). */
  updates: readonly TypedUpdate[];
  status: ClientStatus;
  error: TabbyClientError;
}
export type ClientEventName = keyof ClientEventMap;

type Listener = (...args: unknown[]) => void;

/**
 * The client's event listeners. Unlike EventEmitter.emit, `emit` calls each listener on its own: one that
 * throws neither breaks the session nor keeps the others from being called; the errors are returned.
 */
export class ClientEvents {
  readonly #emitter = new EventEmitter();

  on<E extends ClientEventName>(event: E, listener: (arg: ClientEventMap[E]) => void): void {
    this.#emitter.on(event, listener as Listener);
  }

  once<E extends ClientEventName>(event: E, listener: (arg: ClientEventMap[E]) => void): void {
    this.#emitter.once(event, listener as Listener);
  }

  off<E extends ClientEventName>(event: E, listener: (arg: ClientEventMap[E]) => void): void {
    this.#emitter.off(event, listener as Listener);
  }

  listenerCount(event: ClientEventName): number {
    return this.#emitter.listenerCount(event);
  }

  /** Calls every listener of `event`; returns what the listeners threw. */
  emit<E extends ClientEventName>(event: E, arg: ClientEventMap[E]): unknown[] {
    const thrown: unknown[] = [];
    // rawListeners: `once` wrappers remove themselves when called.
    for (const listener of this.#emitter.rawListeners(event) as Listener[]) {
      try {
        listener(arg);
      } catch (err) {
        thrown.push(err);
      }
    }
    return thrown;
  }
}
