/** Structural equality of JSON-like values (objects, arrays, primitives). Key order does not matter. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  let count = 0;
  for (const k in ao) {
    if (!Object.hasOwn(ao, k)) continue;
    count++;
    if (!Object.hasOwn(bo, k) || !deepEqual(ao[k], bo[k])) return false;
  }
  for (const k in bo) if (Object.hasOwn(bo, k)) count--;
  return count === 0;
}

/**
 * Equality of two resource values ignoring `metadata.resourceVersion`: an update that only moves the
 * resourceVersion (a status-only change, once trimmed) is not a real change for the agents.
 */
export function sameResource(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const am = a.metadata;
  const bm = b.metadata;
  if (typeof am !== "object" || am === null || typeof bm !== "object" || bm === null) return deepEqual(a, b);
  let count = 0;
  for (const k in a) {
    if (!Object.hasOwn(a, k)) continue;
    count++;
    if (!Object.hasOwn(b, k)) return false;
    if (k === "metadata") continue;
    if (!deepEqual(a[k], b[k])) return false;
  }
  for (const k in b) if (Object.hasOwn(b, k)) count--;
  if (count !== 0) return false;
  const { resourceVersion: _ra, ...ra } = am as Record<string, unknown>;
  const { resourceVersion: _rb, ...rb } = bm as Record<string, unknown>;
  return deepEqual(ra, rb);
}
