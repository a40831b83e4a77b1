/**
 * Every message on the wire. One msgpack map per WebSocket binary frame; `t` names the type.
 * PROTOCOL.md is the spec; this file is its type-level mirror. Unknown fields are ignored by both sides.
 */
import type { JsonPatchOp } from "./json-patch.js";

/** A view: the set of kinds a client subscribes to (Typha's "syncer type"). */
export type ViewName = "felix" | "bgp" | "tunnel-ip-allocation" | "node-status";
export const VIEW_NAMES: readonly ViewName[] = ["felix", "bgp", "tunnel-ip-allocation", "node-status"];

/** A resource value: a JSON-compatible object (trimmed Kubernetes/Calico object). */
export type ResourceValue = { readonly [field: string]: unknown };

/** One change or snapshot entry: `v` is null for a delete. */
export interface Entry {
  /** `Kind/name` or `Kind/namespace/name`. */
  readonly k: string;
  readonly v: ResourceValue | null;
}

/**
 * A change that patches the value the client holds (feature "patch-deltas"): `p` is an RFC 7386 JSON merge
 * patch, `b` the `metadata.resourceVersion` of the value it applies to.
 */
export interface MergePatchEntry {
  readonly k: string;
  readonly p: ResourceValue;
  readonly b: string;
  /** Absent: a patch entry has no full value. */
  readonly v?: undefined;
  readonly j?: undefined;
}

/**
 * A change that patches the value the client holds with an RFC 6902 JSON Patch `j` (feature
 * "json-patch-deltas"; only `add`, `remove`, `replace`), `b` as in a merge patch entry.
 */
export interface JsonPatchEntry {
  readonly k: string;
  readonly j: readonly JsonPatchOp[];
  readonly b: string;
  readonly v?: undefined;
  readonly p?: undefined;
}

/** A patch entry, of either form. */
export type PatchEntry = MergePatchEntry | JsonPatchEntry;

/** One change in a `deltas` frame: a full value, a delete, or (with "patch-deltas") a patch. */
export type DeltaEntry = Entry | PatchEntry;

export function isPatchEntry(entry: DeltaEntry): entry is PatchEntry {
  const e = entry as { p?: unknown; j?: unknown };
  return e.p !== undefined || e.j !== undefined;
}

export function isJsonPatchEntry(entry: DeltaEntry): entry is JsonPatchEntry {
  return (entry as { j?: unknown }).j !== undefined;
}

export type SyncState = "syncing" | "in-sync" | "stale";

export interface ResumeToken {
  /** The server id from the welcome of the previous session. */
  readonly server: string;
  /** The last revision the client applied (the `to` of its last deltas, or the snapshot revision). */
  readonly revision: number;
  /**
   * What the client's view holds, so that any replica can resume it (feature "replica-resume", §5.2): from
   * a client that keeps a mirror, or the `state` of a `left` (feature "leave").
   */
  readonly state?: ResumeState;
}

/** Digests of a client's mirror (PROTOCOL.md §5.2): enough for any replica to tell what it misses. */
export interface ResumeState {
  /** The `conversion` of the welcome that started the mirror's state. */
  readonly conversion: string;
  /** The view and node the mirror is of. */
  readonly view: string;
  readonly node?: string;
  /** Per kind of the view: `[count, digest]`, the digest as 16 lower-case hex digits. */
  readonly kinds: Readonly<Record<string, readonly [number, string]>>;
}

/** Most kinds in a ResumeState (a view has at most 21). */
export const MAX_RESUME_STATE_KINDS = 64;

// ---- client → server ----

export interface HelloMessage {
  readonly t: "hello";
  /** Inclusive [min, max] protocol versions the client speaks. */
  readonly versions: readonly [number, number];
  readonly view: string;
  /** The node the agent runs on. Required for views with node-scoped kinds (bgp, node-status). */
  readonly node?: string;
  readonly client: { readonly name: string; readonly version: string };
  readonly resume?: ResumeToken;
  /** Optional features the client understands (see FEATURES). */
  readonly features?: readonly string[];
  /** Bearer token, when the server requires one. */
  readonly token?: string;
}

export interface PongMessage {
  readonly t: "pong";
  /** The `ts` of the ping being answered. */
  readonly ts: number;
}

/**
 * Feature "leave": a client that got `move` and is about to leave asks for the state of its view as the
 * server last sent it (`left`), to resume on another replica without a mirror of its own (§5.5).
 */
export interface LeaveMessage {
  readonly t: "leave";
}

export type ClientMessage = HelloMessage | PongMessage | LeaveMessage;

// ---- server → client ----

export interface WelcomeMessage {
  readonly t: "welcome";
  readonly version: number;
  /** Random per server process start; part of the resume token. */
  readonly server: string;
  readonly view: ViewName;
  /** `resume`: deltas from the client's revision follow. `snapshot`: snap-begin … snap-end follow. */
  readonly mode: "resume" | "snapshot";
  /** The server's head revision when the session started. */
  readonly revision: number;
  /** The features the server will use on this session (a subset of the client's). */
  readonly features: readonly string[];
  /**
   * With "replica-resume": how this server converts upstream objects (code and options). Part of the resume
   * state: a replica with another conversion never resumes it.
   */
  readonly conversion?: string;
}

export interface SnapshotBeginMessage {
  readonly t: "snap-begin";
  /** The snapshot is the view exactly at this revision. */
  readonly revision: number;
  /** Number of entries in the whole snapshot. */
  readonly count: number;
  /** Number of snap-chunk frames that follow. */
  readonly chunks: number;
}

export interface SnapshotChunkMessage {
  readonly t: "snap-chunk";
  /** 0-based, consecutive. */
  readonly index: number;
  /** The entries, or absent when `z` is present. */
  readonly entries?: readonly Entry[];
  /** Raw-deflate of a msgpack array of entries (only when the client listed "deflate-snapshot"). */
  readonly z?: Uint8Array;
}

export interface SnapshotEndMessage {
  readonly t: "snap-end";
  readonly revision: number;
  /**
   * The server's head when it sent snap-end, when later than `revision` (a reused snapshot): the catch-up
   * that follows reaches at least it. Absent: the snapshot is at the head (or an older server).
   */
  readonly head?: number;
}

export interface DeltasMessage {
  readonly t: "deltas";
  /** The head revision before these changes. */
  readonly from: number;
  /** The head revision after these changes: the client's new revision. */
  readonly to: number;
  /**
   * In order; at most one entry per key. `v: null` deletes. On the wire it is absent when `z` is present;
   * decoded, it holds the inflated changes (or nothing for a receiver that did not inflate them).
   */
  readonly changes: readonly DeltaEntry[];
  /** Raw deflate (preset dictionary) of the msgpack array of changes; only with "deflate-deltas". */
  readonly z?: Uint8Array;
  /** The number of changes in `z` (so that a receiver can count them without inflating). */
  readonly n?: number;
}

export interface StatusMessage {
  readonly t: "status";
  readonly state: SyncState;
  /** Epoch milliseconds since when the view has been in this state. */
  readonly since: number;
  /** Why (for stale: which kinds, and the last error). */
  readonly reason?: string;
  /** For stale: the kinds whose upstream watch is failing. */
  readonly kinds?: readonly string[];
}

export interface PingMessage {
  readonly t: "ping";
  /** Sender's clock, epoch ms; echoed in the pong. */
  readonly ts: number;
}

export interface MoveMessage {
  readonly t: "move";
  /** Why the server asks the client to move (e.g. "rebalance"). */
  readonly reason: string;
  /** Wait this long (jittered by the server already) before reconnecting elsewhere. */
  readonly delayMs: number;
  /** Optional address of a less loaded replica. */
  readonly hint?: string;
}

/**
 * The answer to `leave` (feature "leave"): the server sends nothing more of the view on this session; the
 * client holds the view exactly as at `revision`. `state`, when present, is that view's digests (as a mirror
 * would compute them, §5.2): the client presents it in its next resume token. Absent when the server cannot
 * vouch for it (the session was behind).
 */
export interface LeftMessage {
  readonly t: "left";
  readonly revision: number;
  readonly state?: ResumeState;
}

export interface ErrorMessage {
  readonly t: "error";
  /** The close code that follows. */
  readonly code: number;
  readonly reason: string;
}

export type ServerMessage =
  | WelcomeMessage
  | SnapshotBeginMessage
  | SnapshotChunkMessage
  | SnapshotEndMessage
  | DeltasMessage
  | StatusMessage
  | PingMessage
  | MoveMessage
  | LeftMessage
  | ErrorMessage;

export type ServerMessageType = ServerMessage["t"];
export type ClientMessageType = ClientMessage["t"];
export type MessageType = ServerMessageType | ClientMessageType;
