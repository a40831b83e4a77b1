import { Packr } from "msgpackr";
import type { Options } from "msgpackr";
import { ProtoError, ProtoErrorCode } from "./errors.js";
import { MAX_JSON_PATCH_OPS, MAX_JSON_PATCH_PATH } from "./json-patch.js";
import { setOwn } from "./merge-patch.js";
import { MAX_RESUME_STATE_KINDS, VIEW_NAMES } from "./messages.js";
import type {
  ClientMessage,
  DeltaEntry,
  Entry,
  ResourceValue,
  ResumeState,
  ResumeToken,
  ServerMessage,
  ViewName,
} from "./messages.js";

/**
 * msgpack with plain maps only: frames are broadcast to clients that joined at different times, so no
 * stream-shared record structures (`useRecords: false`), and any msgpack decoder can read them.
 * `int64AsType: "auto"`: a 64-bit integer (0xcf, 0xd3, as Go and Rust encoders write small numbers)
 * decodes to a number when it fits one exactly, else to a BigInt, which validation refuses: every
 * integer form whose value is in range is accepted.
 */
const OPTIONS: Options = {
  useRecords: false,
  mapsAsObjects: true,
  variableMapSize: true,
  moreTypes: false,
  // msgpackr 1.12 implements "auto" but its typings do not list it yet.
  int64AsType: "auto" as string as NonNullable<Options["int64AsType"]>,
};
const packr = new Packr(OPTIONS);

/**
 * msgpackr reads a map key `__proto__` as `__proto_` (so that it cannot set a prototype), which would change
 * a value that holds one: Kubernetes accepts any key in a free-form map, such as a Calico rule's
 * `metadata.annotations`. A frame whose bytes hold that name anywhere is read again with maps as Maps,
 * turned into objects that hold `__proto__` as an own key, as JSON.parse makes it. Rare, so the usual path
 * pays one byte search (~2 GB/s), and none for a frame whose maps are all read already: an envelope around
 * compressed bytes (`z`), whose search would be in those bytes (the skimming agents' every frame).
 */
const mapPackr = new Packr({ ...OPTIONS, mapsAsObjects: false });
const PROTO_KEY = Buffer.from("__proto__");

/** Whether a map below `value`'s top level, or a top-level key read as `__proto_`, may hide a `__proto__`. */
function mayHideProtoKey(value: unknown): boolean {
  if (Array.isArray(value)) return value.length > 0;
  if (value === null || typeof value !== "object" || ArrayBuffer.isView(value)) return false;
  if (Object.hasOwn(value, "__proto_")) return true;
  for (const member of Object.values(value)) {
    if (Array.isArray(member) ? member.length > 0 : isNested(member)) return true;
  }
  return false;
}

function isNested(value: unknown): boolean {
  return value !== null && typeof value === "object" && !ArrayBuffer.isView(value);
}

function objectsOf(value: unknown): unknown {
  if (value instanceof Map) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of value as Map<unknown, unknown>) setOwn(out, String(k), objectsOf(v));
    return out;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = objectsOf(value[i]);
  }
  return value;
}

/** Frames larger than this are refused by `decode*` (the server's socket limit is separate and smaller). */
export const MAX_DECODE_BYTES = 256 * 1024 * 1024;

/**
 * Encodes one message. The result is a fresh Buffer that the caller owns (msgpackr's own result is a view
 * into a shared slab; retaining those would pin the slab).
 */
export function encodeMessage(message: ServerMessage | ClientMessage): Buffer {
  return Buffer.from(packr.pack(message));
}

/**
 * Packs a value into msgpackr's shared scratch buffer: the result is only valid until the next pack.
 * Copy it before keeping it.
 */
export function packValue(value: unknown): Uint8Array {
  return packr.pack(value);
}

/** Encodes any msgpack value (used for entries and entry arrays that frames are assembled from). */
export function encodeValue(value: unknown): Buffer {
  return Buffer.from(packr.pack(value));
}

/** Decodes one msgpack value, or throws ProtoError(badFrame). Never throws anything else. */
export function decodeValue(frame: Uint8Array): unknown {
  if (frame.byteLength > MAX_DECODE_BYTES) {
    throw new ProtoError(ProtoErrorCode.tooLarge, `frame of ${frame.byteLength} bytes exceeds the limit`);
  }
  if (frame.byteLength === 0) throw new ProtoError(ProtoErrorCode.badFrame, "empty frame");
  try {
    const value: unknown = packr.unpack(frame);
    if (!mayHideProtoKey(value)) return value;
    const bytes = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
    return bytes.indexOf(PROTO_KEY) < 0 ? value : objectsOf(mapPackr.unpack(frame));
  } catch (err) {
    throw new ProtoError(ProtoErrorCode.badFrame, "frame is not one valid msgpack value", { cause: err });
  }
}

// ---- validation ----

type Obj = Record<string, unknown>;

function isPlainObject(value: unknown): value is Obj {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function bad(type: string, field: string, expected: string): never {
  throw new ProtoError(ProtoErrorCode.badMessage, `${type}: field "${field}" must be ${expected}`);
}

function str(m: Obj, type: string, field: string, maxLength = 1024, label = field): string {
  const v = m[field];
  if (typeof v !== "string" || v.length > maxLength)
    bad(type, label, `a string of at most ${maxLength} chars`);
  return v;
}

function optStr(m: Obj, type: string, field: string, maxLength = 1024): string | undefined {
  return m[field] === undefined || m[field] === null ? undefined : str(m, type, field, maxLength);
}

function uint(m: Obj, type: string, field: string, label = field): number {
  const v = m[field];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) bad(type, label, "a non-negative integer");
  return v;
}

function num(m: Obj, type: string, field: string): number {
  const v = m[field];
  if (typeof v !== "number" || !Number.isFinite(v)) bad(type, field, "a finite number");
  return v;
}

function strArray(m: Obj, type: string, field: string, maxItems = 64): string[] | undefined {
  const v = m[field];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.length > maxItems || !v.every((x) => typeof x === "string" && x.length <= 256)) {
    bad(type, field, `an array of at most ${maxItems} short strings`);
  }
  return v as string[];
}

function entries(m: Obj, type: string, field: string): Entry[] {
  const v = m[field];
  if (!Array.isArray(v)) bad(type, field, "an array of entries");
  for (const e of v as unknown[]) {
    if (!isPlainObject(e) || typeof e.k !== "string" || !(e.v === null || isPlainObject(e.v))) {
      bad(type, field, "an array of {k: string, v: map | null}");
    }
  }
  return v as Entry[];
}

/** Like `entries`, but an entry may also be a patch `{k, p: map, b: string}` (feature "patch-deltas"). */
function deltaEntries(m: Obj, type: string, field: string): DeltaEntry[] {
  const v = m[field];
  if (!Array.isArray(v)) bad(type, field, "an array of entries");
  for (const e of v as unknown[]) {
    if (!isPlainObject(e) || typeof e.k !== "string") bad(type, field, "an array of entries");
    if (e.j !== undefined && e.j !== null) {
      if (typeof e.b !== "string" || e.b.length > 256 || (e.p !== undefined && e.p !== null)) {
        bad(type, field, "a JSON Patch entry {k: string, j: [op], b: string} (no p)");
      }
      jsonPatchOps(e.j, type, field);
    } else if (e.p !== undefined && e.p !== null) {
      if (!isPlainObject(e.p) || typeof e.b !== "string" || e.b.length > 256) {
        bad(type, field, "an array of {k: string, v: map | null} or {k: string, p: map, b: string}");
      }
    } else if (!(e.v === null || isPlainObject(e.v))) {
      bad(type, field, "an array of {k: string, v: map | null} or {k: string, p: map, b: string}");
    }
  }
  return v as DeltaEntry[];
}

const JSON_PATCH_OPS = new Set(["add", "remove", "replace"]);

/** The `j` of a JSON Patch entry (PROTOCOL.md §6.7): only add, remove and replace, paths below the root. */
function jsonPatchOps(v: unknown, type: string, field: string): void {
  if (!Array.isArray(v) || v.length > MAX_JSON_PATCH_OPS) {
    bad(type, field, `a JSON Patch of at most ${MAX_JSON_PATCH_OPS} operations`);
  }
  for (const op of v as unknown[]) {
    if (
      !isPlainObject(op) ||
      typeof op.op !== "string" ||
      !JSON_PATCH_OPS.has(op.op) ||
      typeof op.path !== "string" ||
      op.path.length > MAX_JSON_PATCH_PATH ||
      !op.path.startsWith("/") ||
      (op.op !== "remove" && !Object.hasOwn(op, "value"))
    ) {
      bad(type, field, "JSON Patch operations {op: add | remove | replace, path: /..., value}");
    }
  }
}

/**
 * A kind's name in a resume state: letters and digits, as every Calico kind is. This also keeps keys such as
 * `__proto__` out of the validated map (msgpackr reads that key as `__proto_`, and `out[name] = …` would set
 * the prototype).
 */
const KIND_NAME = /^[A-Za-z][A-Za-z0-9]{0,63}$/;

/** The `state` of a resume token (§5.2), validated; undefined when absent. */
function resumeState(v: unknown, t = "hello", path = "resume.state"): ResumeState | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isPlainObject(v)) bad(t, path, "a map {conversion, view, node?, kinds}");
  const conversion = str(v, t, "conversion", 128, `${path}.conversion`);
  const view = str(v, t, "view", 64, `${path}.view`);
  const node = optStr(v, t, "node", 253);
  const kinds = v.kinds;
  if (!isPlainObject(kinds)) bad(t, `${path}.kinds`, "a map kind → [count, digest]");
  const names = Object.keys(kinds);
  if (names.length > MAX_RESUME_STATE_KINDS) {
    bad(t, `${path}.kinds`, `at most ${MAX_RESUME_STATE_KINDS} kinds`);
  }
  const out: Record<string, readonly [number, string]> = {};
  for (const name of names) {
    const d = kinds[name];
    if (
      !KIND_NAME.test(name) ||
      !Array.isArray(d) ||
      d.length !== 2 ||
      typeof d[0] !== "number" ||
      !Number.isSafeInteger(d[0]) ||
      d[0] < 0 ||
      typeof d[1] !== "string" ||
      !/^[0-9a-f]{16}$/.test(d[1])
    ) {
      bad(
        t,
        `${path}.kinds`,
        "kind (a name of ≤ 64 letters and digits) → [count: uint, digest: 16 hex digits]",
      );
    }
    out[name] = [d[0], d[1]];
  }
  return { conversion, view, ...(node !== undefined && { node }), kinds: out };
}

/** Validates a decoded value as a message sent by a client. Throws ProtoError on anything else. */
export function validateClientMessage(value: unknown): ClientMessage {
  if (!isPlainObject(value)) throw new ProtoError(ProtoErrorCode.badMessage, "a message must be a map");
  const t = value.t;
  switch (t) {
    case "hello": {
      const versions = value.versions;
      if (
        !Array.isArray(versions) ||
        versions.length !== 2 ||
        !versions.every((x) => typeof x === "number" && Number.isSafeInteger(x) && x >= 0) ||
        (versions[0] as number) > (versions[1] as number)
      ) {
        bad(t, "versions", "[min, max] non-negative integers with min <= max");
      }
      const view = str(value, t, "view", 64);
      const node = optStr(value, t, "node", 253);
      const client = value.client;
      if (!isPlainObject(client)) bad(t, "client", "a map {name, version}");
      const name = str(client, t, "name", 128, "client.name");
      const version = str(client, t, "version", 128, "client.version");
      let resume: ResumeToken | undefined;
      if (value.resume !== undefined && value.resume !== null) {
        if (!isPlainObject(value.resume)) bad(t, "resume", "a map {server, revision}");
        const state = resumeState(value.resume.state);
        resume = {
          server: str(value.resume, t, "server", 128, "resume.server"),
          revision: uint(value.resume, t, "revision", "resume.revision"),
          ...(state !== undefined && { state }),
        };
      }
      const features = strArray(value, t, "features");
      const token = optStr(value, t, "token", 8192);
      return {
        t,
        versions: [versions[0] as number, versions[1] as number],
        view,
        client: { name, version },
        ...(node !== undefined && { node }),
        ...(resume !== undefined && { resume }),
        ...(features !== undefined && { features }),
        ...(token !== undefined && { token }),
      };
    }
    case "pong":
      return { t, ts: num(value, t, "ts") };
    case "leave":
      return { t };
    default:
      if (typeof t === "string")
        throw new ProtoError(ProtoErrorCode.unknownType, `unknown message type "${t.slice(0, 32)}"`);
      throw new ProtoError(ProtoErrorCode.badMessage, 'a message needs a string field "t"');
  }
}

/** Validates a decoded value as a message sent by a server. Throws ProtoError on anything else. */
export function validateServerMessage(value: unknown): ServerMessage {
  if (!isPlainObject(value)) throw new ProtoError(ProtoErrorCode.badMessage, "a message must be a map");
  const t = value.t;
  switch (t) {
    case "welcome": {
      const mode = value.mode;
      if (mode !== "resume" && mode !== "snapshot") bad(t, "mode", '"resume" or "snapshot"');
      const view = str(value, t, "view", 64);
      if (!(VIEW_NAMES as readonly string[]).includes(view))
        bad(t, "view", `one of ${VIEW_NAMES.join(", ")}`);
      const conversion = optStr(value, t, "conversion", 128);
      return {
        t,
        version: uint(value, t, "version"),
        server: str(value, t, "server", 128),
        view: view as ViewName,
        mode,
        revision: uint(value, t, "revision"),
        features: strArray(value, t, "features") ?? [],
        ...(conversion !== undefined && { conversion }),
      };
    }
    case "snap-begin":
      return {
        t,
        revision: uint(value, t, "revision"),
        count: uint(value, t, "count"),
        chunks: uint(value, t, "chunks"),
      };
    case "snap-chunk": {
      const index = uint(value, t, "index");
      if (value.z !== undefined && value.z !== null) {
        if (!(value.z instanceof Uint8Array)) bad(t, "z", "binary");
        return { t, index, z: value.z };
      }
      return { t, index, entries: entries(value, t, "entries") };
    }
    case "snap-end": {
      const revision = uint(value, t, "revision");
      if (value.head === undefined || value.head === null) return { t, revision };
      const head = uint(value, t, "head");
      if (head < revision) bad(t, "head", "at least revision");
      return { t, revision, head };
    }
    case "deltas": {
      const from = uint(value, t, "from");
      const to = uint(value, t, "to");
      if (to < from) bad(t, "to", "at least from");
      if (value.z !== undefined && value.z !== null) {
        if (!(value.z instanceof Uint8Array)) bad(t, "z", "binary");
        const n = value.n === undefined || value.n === null ? undefined : uint(value, t, "n");
        return { t, from, to, changes: [], z: value.z, ...(n !== undefined && { n }) };
      }
      return { t, from, to, changes: deltaEntries(value, t, "changes") };
    }
    case "status": {
      const state = value.state;
      if (state !== "syncing" && state !== "in-sync" && state !== "stale") {
        bad(t, "state", '"syncing", "in-sync" or "stale"');
      }
      const reason = optStr(value, t, "reason", 4096);
      const kinds = strArray(value, t, "kinds");
      return {
        t,
        state,
        since: num(value, t, "since"),
        ...(reason !== undefined && { reason }),
        ...(kinds !== undefined && { kinds }),
      };
    }
    case "ping":
      return { t, ts: num(value, t, "ts") };
    case "move": {
      const hint = optStr(value, t, "hint", 512);
      return {
        t,
        reason: str(value, t, "reason", 256),
        delayMs: uint(value, t, "delayMs"),
        ...(hint !== undefined && { hint }),
      };
    }
    case "left": {
      const state = resumeState(value.state, t, "state");
      return { t, revision: uint(value, t, "revision"), ...(state !== undefined && { state }) };
    }
    case "error":
      return { t, code: uint(value, t, "code"), reason: str(value, t, "reason", 4096) };
    default:
      if (typeof t === "string")
        throw new ProtoError(ProtoErrorCode.unknownType, `unknown message type "${t.slice(0, 32)}"`);
      throw new ProtoError(ProtoErrorCode.badMessage, 'a message needs a string field "t"');
  }
}

/** Decodes and validates a frame received by the server. Throws only ProtoError. */
export function decodeClientMessage(frame: Uint8Array): ClientMessage {
  return validateClientMessage(decodeValue(frame));
}

/** Decodes and validates a frame received by a client. Throws only ProtoError. */
export function decodeServerMessage(frame: Uint8Array): ServerMessage {
  return validateServerMessage(decodeValue(frame));
}

/** Decodes the inflated `z` of a `deltas` frame into its changes. Throws only ProtoError. */
export function decodeDeltaEntries(payload: Uint8Array): DeltaEntry[] {
  return deltaEntries({ z: decodeValue(payload) }, "deltas", "z");
}

/** Decodes the payload of a compressed snapshot chunk (after inflating it) into entries. */
export function decodeEntryArray(payload: Uint8Array): Entry[] {
  return entries({ z: decodeValue(payload) }, "snap-chunk", "z");
}

export type { ResourceValue };
