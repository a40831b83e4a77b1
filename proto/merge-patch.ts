/**
 * RFC 7386 JSON merge patches between resource values, as the `p` of a patch entry (feature
 * "patch-deltas"). A merge patch cannot set a field to null (null means "remove"), so a value that holds
 * a null or undefined where it differs from its base gets no patch: the sender sends the full value.
 */

type Obj = Record<string, unknown>;

/**
 * Sets an own data property, also for the key `__proto__`: plain assignment to an object that does not hold
 * that key as its own would set the object's prototype instead (JSON.parse, and the codec, make it a key).
 */
export function setOwn(obj: Obj, key: string, value: unknown): void {
  if (key !== "__proto__") obj[key] = value;
  else Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
}

function isPlainObject(value: unknown): value is Obj {
  return value !== null && typeof value === "object" && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

/** True when the value (recursively) holds no null or undefined: it reads the same as a merge patch. */
function isPatchSafe(value: unknown): boolean {
  if (value === null || value === undefined) return false;
  if (Array.isArray(value)) return value.every((v) => v !== undefined);
  if (!isPlainObject(value)) return true;
  for (const k in value) if (Object.hasOwn(value, k) && !isPatchSafe(value[k])) return false;
  return true;
}

/** Deep equality of JSON-like values (a Buffer or other non-plain object equals only itself). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameValue(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b) || !isPlainObject(a) || !isPlainObject(b)) return false;
  let count = 0;
  for (const k in a) {
    if (!Object.hasOwn(a, k)) continue;
    count++;
    if (!Object.hasOwn(b, k) || !sameValue(a[k], b[k])) return false;
  }
  for (const k in b) if (Object.hasOwn(b, k)) count--;
  return count === 0;
}

const CANNOT = Symbol("cannot");

function diff(base: Obj, next: Obj): Obj | typeof CANNOT {
  const patch: Obj = {};
  for (const k in base) {
    if (Object.hasOwn(base, k) && !Object.hasOwn(next, k)) {
      if (base[k] === undefined) return CANNOT; // "absent" and "undefined" would read alike
      setOwn(patch, k, null);
    }
  }
  for (const k in next) {
    if (!Object.hasOwn(next, k)) continue;
    const n = next[k];
    const hasBase = Object.hasOwn(base, k);
    const b = base[k];
    if (hasBase && sameValue(b, n)) continue;
    if (hasBase && isPlainObject(b) && isPlainObject(n)) {
      const sub = diff(b, n);
      if (sub === CANNOT) return CANNOT;
      setOwn(patch, k, sub);
      continue;
    }
    if (!isPatchSafe(n)) return CANNOT;
    setOwn(patch, k, n);
  }
  return patch;
}

/**
 * The merge patch that turns `base` into `next`, or undefined when no merge patch can say it exactly
 * (a null or undefined where they differ). `applyMergePatch(base, createMergePatch(base, next))` equals
 * `next` whenever a patch is returned.
 */
export function createMergePatch(base: Obj, next: Obj): Obj | undefined {
  const patch = diff(base, next);
  return patch === CANNOT ? undefined : patch;
}

/**
 * Applies a merge patch (RFC 7386) without touching `target`: the objects on the patched paths are
 * copied, everything else is shared with `target`.
 */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return patch;
  const result: Obj = isPlainObject(target) ? { ...target } : {};
  for (const k in patch) {
    if (!Object.hasOwn(patch, k)) continue;
    const p = patch[k];
    if (p === null) delete result[k];
    else setOwn(result, k, applyMergePatch(Object.hasOwn(result, k) ? result[k] : undefined, p));
  }
  return result;
}

/**
 * The `metadata.resourceVersion` of a value: what a patch entry's `b` names. Undefined when the value has
 * none (such a value gets no patches).
 */
export function resourceVersionOf(value: unknown): string | undefined {
  if (!isPlainObject(value)) return undefined;
  const meta = value.metadata;
  if (!isPlainObject(meta)) return undefined;
  const rv = meta.resourceVersion;
  return typeof rv === "string" ? rv : undefined;
}
