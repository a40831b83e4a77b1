/**
 * RFC 6902 JSON Patches between resource values, as the `j` of a patch entry (feature
 * "json-patch-deltas", PROTOCOL.md §6.7). Only `add`, `remove` and `replace` are produced and accepted.
 * Unlike a merge patch, a JSON Patch reaches into arrays: an EndpointSlice whose one endpoint turns ready
 * is one `replace` of that endpoint's conditions, not the whole endpoints array again.
 */
import { applyMergePatch, sameValue, setOwn } from "./merge-patch.js";
import type { PatchEntry, ResourceValue } from "./messages.js";

export type JsonPatchOp =
  | { readonly op: "add"; readonly path: string; readonly value: unknown }
  | { readonly op: "remove"; readonly path: string }
  | { readonly op: "replace"; readonly path: string; readonly value: unknown };

/** Most operations one patch may hold (a decoder refuses more). */
export const MAX_JSON_PATCH_OPS = 10_000;
/** Longest `path` of an operation, in characters. */
export const MAX_JSON_PATCH_PATH = 4096;

type Obj = Record<string, unknown>;

function isPlainObject(value: unknown): value is Obj {
  return value !== null && typeof value === "object" && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

/** A JSON Pointer (RFC 6901) reference token: `~` as `~0`, `/` as `~1`. */
function escapeToken(key: string): string {
  return key.includes("~") || key.includes("/") ? key.replace(/~/g, "~0").replace(/\//g, "~1") : key;
}

/** True when the value holds no `undefined` anywhere (it would not survive the wire as itself). */
function isWireSafe(value: unknown): boolean {
  if (value === undefined) return false;
  if (Array.isArray(value)) return value.every(isWireSafe);
  if (!isPlainObject(value)) return true;
  for (const k in value) if (Object.hasOwn(value, k) && !isWireSafe(value[k])) return false;
  return true;
}

class Cannot extends Error {}

function diff(base: unknown, next: unknown, path: string, ops: JsonPatchOp[]): void {
  if (sameValue(base, next)) return;
  if (isPlainObject(base) && isPlainObject(next)) {
    for (const k in base) {
      if (Object.hasOwn(base, k) && !Object.hasOwn(next, k))
        ops.push({ op: "remove", path: `${path}/${escapeToken(k)}` });
    }
    for (const k in next) {
      if (!Object.hasOwn(next, k)) continue;
      const at = `${path}/${escapeToken(k)}`;
      if (!Object.hasOwn(base, k)) {
        if (!isWireSafe(next[k])) throw new Cannot();
        ops.push({ op: "add", path: at, value: next[k] });
      } else {
        diff(base[k], next[k], at, ops);
      }
    }
    return;
  }
  if (Array.isArray(base) && Array.isArray(next)) {
    // The common prefix and suffix stay; the middle is diffed element by element, and what one side has
    // more of is added (in order) or removed (at the same index, each removal shifting the next one there).
    const shorter = Math.min(base.length, next.length);
    let prefix = 0;
    while (prefix < shorter && sameValue(base[prefix], next[prefix])) prefix++;
    let suffix = 0;
    while (
      suffix < shorter - prefix &&
      sameValue(base[base.length - 1 - suffix], next[next.length - 1 - suffix])
    ) {
      suffix++;
    }
    const baseMiddle = base.length - prefix - suffix;
    const nextMiddle = next.length - prefix - suffix;
    const common = Math.min(baseMiddle, nextMiddle);
    for (let i = prefix; i < prefix + common; i++) diff(base[i], next[i], `${path}/${i}`, ops);
    for (let i = prefix + common; i < prefix + nextMiddle; i++) {
      if (!isWireSafe(next[i])) throw new Cannot();
      ops.push({ op: "add", path: `${path}/${i}`, value: next[i] });
    }
    for (let i = common; i < baseMiddle; i++) ops.push({ op: "remove", path: `${path}/${prefix + common}` });
    return;
  }
  if (!isWireSafe(next)) throw new Cannot();
  ops.push({ op: "replace", path, value: next });
}

/**
 * The JSON Patch that turns `base` into `next` (both objects), or undefined when there is none that says
 * it exactly (an `undefined` in `next` where they differ). `applyJsonPatch(base, createJsonPatch(base,
 * next))` equals `next` whenever a patch is returned. Never a root operation: an empty patch when equal.
 */
export function createJsonPatch(base: Obj, next: Obj): JsonPatchOp[] | undefined {
  const ops: JsonPatchOp[] = [];
  try {
    diff(base, next, "", ops);
  } catch (err) {
    if (err instanceof Cannot) return undefined;
    throw err;
  }
  return ops;
}

/** A patch that does not apply to the value it was given (a bad path, a missing member, a bad index). */
export class JsonPatchError extends Error {
  override readonly name = "JsonPatchError";
}

function parsePath(path: string): string[] {
  if (path.length === 0 || path[0] !== "/") {
    throw new JsonPatchError(`path ${JSON.stringify(path)}: not a JSON Pointer below the root`);
  }
  return path
    .slice(1)
    .split("/")
    .map((t) => {
      if (/~[^01]|~$/.test(t)) throw new JsonPatchError(`path ${JSON.stringify(path)}: a bad ~ escape`);
      return t.replace(/~1/g, "/").replace(/~0/g, "~");
    });
}

/** An array index token: digits without a leading zero (RFC 6901 §4). */
function arrayIndex(token: string, path: string): number {
  if (!/^(0|[1-9][0-9]{0,8})$/.test(token)) {
    throw new JsonPatchError(`path ${JSON.stringify(path)}: ${JSON.stringify(token)} is not an array index`);
  }
  return Number(token);
}

function shallowCopy(container: unknown): Obj | unknown[] {
  return Array.isArray(container) ? [...(container as unknown[])] : { ...(container as Obj) };
}

/** `container` itself when this patch application made it, else a shallow copy that it now owns. */
function owned(container: unknown, copies: WeakSet<object>): Obj | unknown[] {
  if (copies.has(container as object)) return container as Obj | unknown[];
  const copy = shallowCopy(container);
  copies.add(copy);
  return copy;
}

function applyOp(root: Obj, op: JsonPatchOp, copies: WeakSet<object>): Obj {
  const tokens = parsePath(op.path);
  const copy = owned(root, copies) as Obj;
  // Walk to the parent, copying each container on the way (the input is never modified); a container
  // an earlier operation of this patch copied is modified in place (a long patch copies each one once).
  let parent: Obj | unknown[] = copy;
  for (let i = 0; i < tokens.length - 1; i++) {
    const token = tokens[i] as string;
    let child: unknown;
    if (Array.isArray(parent)) {
      const index = arrayIndex(token, op.path);
      if (index >= parent.length)
        throw new JsonPatchError(`path ${JSON.stringify(op.path)}: index ${index} out of range`);
      child = parent[index];
    } else {
      if (!Object.hasOwn(parent, token))
        throw new JsonPatchError(`path ${JSON.stringify(op.path)}: no member ${JSON.stringify(token)}`);
      child = parent[token];
    }
    if (child === null || typeof child !== "object" || ArrayBuffer.isView(child)) {
      throw new JsonPatchError(
        `path ${JSON.stringify(op.path)}: ${JSON.stringify(token)} is not an object or array`,
      );
    }
    const childCopy = owned(child, copies);
    if (Array.isArray(parent)) parent[Number(token)] = childCopy;
    else setOwn(parent, token, childCopy);
    parent = childCopy;
  }
  const last = tokens[tokens.length - 1] as string;
  if (Array.isArray(parent)) {
    if (op.op === "add") {
      const index = last === "-" ? parent.length : arrayIndex(last, op.path);
      if (index > parent.length)
        throw new JsonPatchError(`path ${JSON.stringify(op.path)}: index ${index} out of range`);
      parent.splice(index, 0, op.value);
    } else {
      const index = arrayIndex(last, op.path);
      if (index >= parent.length)
        throw new JsonPatchError(`path ${JSON.stringify(op.path)}: index ${index} out of range`);
      if (op.op === "remove") parent.splice(index, 1);
      else parent[index] = op.value;
    }
  } else if (op.op === "add") {
    setOwn(parent, last, op.value);
  } else {
    if (!Object.hasOwn(parent, last))
      throw new JsonPatchError(`path ${JSON.stringify(op.path)}: no member ${JSON.stringify(last)}`);
    if (op.op === "remove") delete parent[last];
    else setOwn(parent, last, op.value);
  }
  return copy;
}

/**
 * Applies a JSON Patch (`add`, `remove`, `replace`) to an object without touching it: the containers on
 * the patched paths are copied, everything else is shared with `target`. Throws JsonPatchError when an
 * operation does not apply; `target` is unchanged then too.
 */
export function applyJsonPatch(target: Obj, ops: readonly JsonPatchOp[]): Obj {
  const copies = new WeakSet<object>();
  let result = target;
  for (const op of ops) result = applyOp(result, op, copies);
  return result;
}

/** The value a patch entry (of either form) makes of `held`, the value at the entry's base. */
export function applyPatchEntry(held: ResourceValue, entry: PatchEntry): ResourceValue {
  return entry.j !== undefined
    ? applyJsonPatch(held, entry.j)
    : (applyMergePatch(held, entry.p) as ResourceValue);
}
