/**
 * Resume on any replica (PROTOCOL.md §5.2): a client presents digests of its mirror, one per kind of its
 * view; this server finds, per kind, a revision of its own at which that kind held exactly that state, and
 * sends every change of the kind after it. The result is this server's view exactly, whatever server built
 * the mirror, or a refusal (then a snapshot, which the client diffs). Pure.
 */
import type { ResumeState, ViewName } from "../../proto/messages.js";
import type { ChangeLog } from "./change-log.js";
import { DeltaFrames } from "./delta-frames.js";
import type { DigestHistory } from "./digest-history.js";
import { kindOfKey } from "./keys.js";
import { VIEWS } from "./kinds.js";
import { domainOf, parseDigestHex } from "./state-digest.js";
import type { Hash64 } from "./state-digest.js";

/** What a client says of its mirror (the `state` of its resume token; digests as in state-digest.ts). */
export type ReplicaState = ResumeState;

/** Why a state cannot be resumed here: a bounded metric label. */
export type ReplicaRefusal =
  /** The mirror was built with another conversion (code or options): equal digests would prove nothing. */
  | "conversion"
  /** The token is of another view or node than the hello's. */
  | "view"
  /** The token's kinds are not exactly the view's, or a digest is malformed. */
  | "kinds"
  /**
   * This server never held the mirror's state of some kind within its history: it is behind the mirror,
   * relisted through it, or its values carry other resourceVersions (a status-only update it skipped).
   */
  | "unknown-state"
  /** It held that state, but its log no longer covers the changes since. */
  | "compacted"
  /** The catch-up would be longer than a snapshot is worth (maxCatchUpFraction). */
  | "too-long";

export const REPLICA_REFUSALS: readonly ReplicaRefusal[] = [
  "conversion",
  "view",
  "kinds",
  "unknown-state",
  "compacted",
  "too-long",
];

export type ReplicaResumeDecision =
  | {
      readonly ok: true;
      /** The catch-up: from `base`, the last frame to the head; never empty. */
      readonly frames: DeltaFrames[];
      /** Changes in the catch-up. */
      readonly changes: number;
    }
  | { readonly ok: false; readonly reason: ReplicaRefusal; readonly detail: string };

export interface ReplicaResumeInput {
  readonly view: ViewName;
  readonly node: string | undefined;
  readonly state: ReplicaState;
  readonly conversionId: string;
  readonly log: ChangeLog;
  readonly digests: DigestHistory;
  /** The flushed head. */
  readonly head: number;
  /**
   * The `from` of the catch-up frames: the client's revision when the token is this server's own (its
   * revisions are comparable), else 0. At most the head.
   */
  readonly base: number;
  /** Most log entries a catch-up may take. */
  readonly maxEntries: number;
  readonly maxChangesPerFrame: number;
}

const MAX_COUNT = 2 ** 32;

/** The decision for one resume (see the file comment). Exact or refused: never a guess. */
export function decideReplicaResume(input: ReplicaResumeInput): ReplicaResumeDecision {
  const { view, node, state, log, digests } = input;
  if (state.conversion !== input.conversionId) {
    return refuse("conversion", `conversion ${state.conversion.slice(0, 64)} is not ${input.conversionId}`);
  }
  if (state.view !== view || state.node !== node) {
    return refuse("view", `the state is of view ${state.view.slice(0, 64)} on ${state.node ?? "no node"}`);
  }
  const kinds = VIEWS[view].kinds;
  const offered = Object.keys(state.kinds);
  if (offered.length !== kinds.size || offered.some((k) => !kinds.has(k as never))) {
    return refuse("kinds", `the state's kinds are not the ${view} view's`);
  }
  /** Per kind whose state differs from the current one: the revision at which this server held it. */
  const cuts = new Map<string, number>();
  let lowest = Number.POSITIVE_INFINITY;
  /** Every kind whose state this server never held (all are named: one kind, or all of them behind). */
  const unknown: string[] = [];
  for (const kind of kinds) {
    const problem = checkDigest(kind, state.kinds[kind], node);
    if ("ok" in problem) {
      // The first failing check decides; after an unknown kind, only further unknown kinds are named.
      if (unknown.length === 0) return problem;
      continue;
    }
    const { domain, count, hash } = problem;
    const current = digests.current(domain);
    if (current.count === count && current.hi === hash.hi && current.lo === hash.lo) continue;
    // Every domain was empty at revision 0, before anything was recorded (a forgotten span: compacted).
    const isEmpty = count === 0 && hash.hi === 0 && hash.lo === 0;
    const span = digests.spanOf(domain, count, hash) ?? (isEmpty ? { enter: 0, leave: 0 } : undefined);
    if (span === undefined) {
      unknown.push(kind);
      continue;
    }
    // Once a kind is unknown the answer is unknown-state: the rest only names the other unknown kinds.
    if (unknown.length > 0) continue;
    // The earliest revision the log can start from at which the kind held that state: every change of
    // the kind after it is in the log, and the change that left the state is one of them.
    const revision = Math.max(span.enter, log.floor);
    if (revision >= span.leave || !log.canResume(revision)) {
      return refuse(
        "compacted",
        `${kind}: held from revision ${span.enter} to ${span.leave}, the log's floor is ${log.floor}`,
      );
    }
    cuts.set(kind, revision);
    lowest = Math.min(lowest, revision);
  }
  if (unknown.length > 0) {
    const more = unknown.length > 6 ? ` and ${unknown.length - 6} more` : "";
    return refuse(
      "unknown-state",
      `states this server never held: ${unknown.slice(0, 6).join(", ")}${more} (of ${kinds.size} kinds)`,
    );
  }
  const base = Math.min(input.base, input.head);
  if (cuts.size === 0) return { ok: true, frames: [new DeltaFrames(base, input.head, [])], changes: 0 };
  const found = log.sinceCuts(lowest, node, (key) => cuts.get(kindOfKey(key)) ?? Number.POSITIVE_INFINITY);
  if (found === undefined) return refuse("compacted", `revision ${lowest} is below the log's floor`);
  if (found.matched > input.maxEntries) {
    return refuse("too-long", `${found.matched} changes to catch up, more than ${input.maxEntries}`);
  }
  const { changes } = found;
  const per = input.maxChangesPerFrame;
  const frames: DeltaFrames[] = [];
  for (let i = 0; i < changes.length; i += per) {
    const isLast = i + per >= changes.length;
    frames.push(new DeltaFrames(base, isLast ? input.head : base, changes.slice(i, i + per)));
  }
  if (frames.length === 0) frames.push(new DeltaFrames(base, input.head, []));
  return { ok: true, frames, changes: changes.length };
}

/** A kind's digest, checked: its domain and parsed digest, or the refusal it calls for. */
function checkDigest(
  kind: string,
  digest: readonly [number, string] | undefined,
  node: string | undefined,
): ReplicaResumeDecision | { domain: string; count: number; hash: Hash64 } {
  if (digest === undefined) return refuse("kinds", `no digest for ${kind}`);
  const [count, hex] = digest;
  const hash = parseDigestHex(hex);
  if (!Number.isSafeInteger(count) || count < 0 || count > MAX_COUNT || hash === undefined) {
    return refuse("kinds", `malformed digest for ${kind}`);
  }
  const domain = domainOf(kind, node);
  if (domain === undefined) return refuse("view", `${kind} is node-scoped: the state needs a node`);
  return { domain, count, hash };
}

function refuse(reason: ReplicaRefusal, detail: string): ReplicaResumeDecision {
  return { ok: false, reason, detail };
}
