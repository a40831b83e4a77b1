import { SimError, SimErrorCode } from "./errors.js";
import { isJsonObject, type JsonObject } from "./types.js";

/** Freezes an object graph in place (stored objects are shared by the store, lists and watch events). */
export function deepFreeze<T>(v: T): T {
  if (typeof v === "object" && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const child of Object.values(v)) deepFreeze(child);
  }
  return v;
}

/** Structural equality of JSON values. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ao = a as JsonObject;
  const bo = b as JsonObject;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
  if (ak.length !== bk.length) return false;
  for (const k of ak) if (!jsonEqual(ao[k], bo[k])) return false;
  return true;
}

/** Equality of two objects' top-level fields, skipping the listed ones. */
export function equalExcept(a: JsonObject, b: JsonObject, skip: ReadonlySet<string>): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) if (!skip.has(k) && !jsonEqual(a[k], b[k])) return false;
  return true;
}

/** RFC 7386 JSON merge patch (returns a new value; `target` is not modified). */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isJsonObject(patch)) return patch;
  const out: JsonObject = isJsonObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** RFC 6902 JSON patch: add, remove, replace, test, move, copy. Throws ERR_SIM_INVALID on a bad operation. */
export function jsonPatch(target: JsonObject, ops: unknown): JsonObject {
  if (!Array.isArray(ops)) throw invalid("a JSON patch must be an array of operations");
  let doc: unknown = structuredClone(target);
  for (const op of ops) {
    if (!isJsonObject(op) || typeof op.op !== "string" || typeof op.path !== "string") {
      throw invalid("bad JSON patch operation");
    }
    switch (op.op) {
      case "add":
      case "replace":
        doc = setAt(doc, op.path, structuredClone(op.value), op.op);
        break;
      case "remove":
        getAt(doc, op.path);
        doc = setAt(doc, op.path, undefined, "remove");
        break;
      case "test":
        if (!jsonEqual(getAt(doc, op.path), op.value)) throw invalid(`JSON patch test failed at ${op.path}`);
        break;
      case "move":
      case "copy": {
        if (typeof op.from !== "string") throw invalid("JSON patch move/copy needs from");
        const v = structuredClone(getAt(doc, op.from));
        if (op.op === "move") doc = setAt(doc, op.from, undefined, "remove");
        doc = setAt(doc, op.path, v, "add");
        break;
      }
      default:
        throw invalid(`unsupported JSON patch operation ${op.op}`);
    }
  }
  if (!isJsonObject(doc)) throw invalid("JSON patch result is not an object");
  return doc;
}

function pointer(path: string): string[] {
  if (path === "") return [];
  if (!path.startsWith("/")) throw invalid(`bad JSON pointer ${path}`);
  return path
    .slice(1)
    .split("/")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function getAt(doc: unknown, path: string): unknown {
  let cur = doc;
  for (const seg of pointer(path)) {
    if (Array.isArray(cur)) cur = cur[Number(seg)];
    else if (isJsonObject(cur)) cur = cur[seg];
    else cur = undefined;
    if (cur === undefined) throw invalid(`JSON patch path ${path} does not exist`);
  }
  return cur;
}

function setAt(doc: unknown, path: string, value: unknown, mode: "add" | "replace" | "remove"): unknown {
  const segs = pointer(path);
  const last = segs.pop();
  if (last === undefined) return value;
  const parent = getAt(doc, segs.length === 0 ? "" : `/${segs.map(escape).join("/")}`);
  if (Array.isArray(parent)) {
    const i = last === "-" ? parent.length : Number(last);
    if (!Number.isInteger(i) || i < 0 || i > parent.length) throw invalid(`bad array index in ${path}`);
    if (mode === "add") parent.splice(i, 0, value);
    else if (i >= parent.length) throw invalid(`JSON patch path ${path} does not exist`);
    else if (mode === "replace") parent[i] = value;
    else parent.splice(i, 1);
  } else if (isJsonObject(parent)) {
    if (mode !== "add" && !(last in parent)) throw invalid(`JSON patch path ${path} does not exist`);
    if (mode === "remove") delete parent[last];
    else parent[last] = value;
  } else {
    throw invalid(`JSON patch path ${path} has no parent`);
  }
  return doc;
}

function escape(seg: string): string {
  return seg.replace(/~/g, "~0").replace(/\//g, "~1");
}

function invalid(message: string): SimError {
  return new SimError(SimErrorCode.invalid, message);
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Object names: DNS subdomains of at most 253 characters. */
export function isValidName(name: string): boolean {
  return name.length <= 253 && DNS_SUBDOMAIN.test(name);
}

/** Namespace names: DNS labels of at most 63 characters. */
export function isValidNamespace(name: string): boolean {
  return name.length <= 63 && DNS_LABEL.test(name);
}

/** RFC 3339 with second precision, as Kubernetes writes timestamps. */
export function kubeTimestamp(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== lastSecond) {
    lastSecond = second;
    lastTimestamp = new Date(second * 1000).toISOString().replace(".000Z", "Z");
  }
  return lastTimestamp;
}
let lastSecond = -1;
let lastTimestamp = "";
