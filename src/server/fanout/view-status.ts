import { encodeMessage } from "../../../proto/codec.js";
import { VIEW_NAMES } from "../../../proto/messages.js";
import type { StatusMessage, ViewName } from "../../../proto/messages.js";
import { viewsOfKind } from "../../snapshot/kinds.js";
import { viewStatus } from "../../snapshot/sync-state.js";
import type { KindState, ViewStatus } from "../../snapshot/sync-state.js";

/** A view's current status, its status frame (encoded once, shared by every session) and its sequence number. */
export interface ViewStatusFrame {
  readonly status: ViewStatus;
  readonly frame: Buffer;
  /** Increases with every change of any view's status; a session holds the last one it was sent. */
  readonly seq: number;
}

/** The upstream state of every kind, and the status of every view derived from it. */
export class ViewStatusBoard {
  readonly #kinds = new Map<string, KindState>();
  readonly #current = new Map<ViewName, ViewStatusFrame>();
  #seq = 0;

  constructor() {
    for (const view of VIEW_NAMES) this.#refresh(view);
  }

  get kinds(): ReadonlyMap<string, KindState> {
    return this.#kinds;
  }

  current(view: ViewName): ViewStatusFrame {
    return this.#current.get(view) as ViewStatusFrame;
  }

  /** Records a kind's state; returns the views whose status changed. */
  setKindState(kind: string, state: KindState): ViewName[] {
    this.#kinds.set(kind, state);
    return viewsOfKind(kind).filter((view) => this.#refresh(view));
  }

  /** Why the server is not ready (a view not in sync, a stale kind), or undefined when it is. */
  notReadyReason(): string | undefined {
    for (const view of VIEW_NAMES) {
      const s = this.current(view).status;
      if (s.state !== "in-sync") {
        return `view ${view} is ${s.state}${s.kinds === undefined ? "" : ` (${s.kinds.join(", ")})`}`;
      }
    }
    for (const [kind, s] of this.#kinds) {
      if (s.state === "stale") return `kind ${kind} is stale${s.reason === undefined ? "" : `: ${s.reason}`}`;
    }
    return undefined;
  }

  #refresh(view: ViewName): boolean {
    const status = viewStatus(view, this.#kinds);
    const prev = this.#current.get(view);
    if (prev !== undefined && sameStatus(prev.status, status)) return false;
    const message: StatusMessage = {
      t: "status",
      state: status.state,
      since: status.since,
      ...(status.reason !== undefined && { reason: status.reason }),
      ...(status.kinds !== undefined && { kinds: status.kinds }),
    };
    this.#current.set(view, { status, frame: encodeMessage(message), seq: ++this.#seq });
    return true;
  }
}

function sameStatus(a: ViewStatus, b: ViewStatus): boolean {
  return (
    a.state === b.state &&
    a.since === b.since &&
    a.reason === b.reason &&
    (a.kinds ?? []).join("\0") === (b.kinds ?? []).join("\0")
  );
}
