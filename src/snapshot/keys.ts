/**
 * Snapshot keys: `Kind/name` for cluster-scoped objects, `Kind/namespace/name` for namespaced ones.
 * Kubernetes names never contain "/", so the format is unambiguous.
 */

export interface ParsedKey {
  readonly kind: string;
  readonly namespace?: string;
  readonly name: string;
}

export class KeyError extends Error {
  override readonly name = "KeyError";
  readonly code = "ERR_SNAPSHOT_BAD_KEY";
}

function checkPart(part: string, what: string, key: string): void {
  if (part === "" || part.includes("/")) throw new KeyError(`bad ${what} in key "${key}"`);
}

export function formatKey(kind: string, name: string, namespace?: string): string {
  checkPart(kind, "kind", `${kind}/${namespace ?? ""}/${name}`);
  checkPart(name, "name", `${kind}/${namespace ?? ""}/${name}`);
  if (namespace === undefined) return `${kind}/${name}`;
  checkPart(namespace, "namespace", `${kind}/${namespace}/${name}`);
  return `${kind}/${namespace}/${name}`;
}

export function parseKey(key: string): ParsedKey {
  const parts = key.split("/");
  if (parts.length === 2 && parts[0] && parts[1]) return { kind: parts[0], name: parts[1] };
  if (parts.length === 3 && parts[0] && parts[1] && parts[2]) {
    return { kind: parts[0], namespace: parts[1], name: parts[2] };
  }
  throw new KeyError(`bad key "${key}": want Kind/name or Kind/namespace/name`);
}

/** The kind of a key: everything before the first "/". */
export function kindOfKey(key: string): string {
  const slash = key.indexOf("/");
  return slash < 0 ? key : key.slice(0, slash);
}
