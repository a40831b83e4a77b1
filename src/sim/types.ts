/**
 * Object shapes of the Kubernetes API simulator. Stored objects are deep-frozen: clone before editing
 * (`structuredClone` gives a mutable copy).
 */

export interface ObjectMeta {
  readonly name: string;
  readonly namespace?: string;
  readonly uid: string;
  readonly resourceVersion: string;
  readonly creationTimestamp: string;
  readonly generation?: number;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly [field: string]: unknown;
}

/** A stored Kubernetes object (any kind). */
export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: ObjectMeta;
  readonly [field: string]: unknown;
}

/** A JSON object as received from a caller or the network, before validation. */
export type JsonObject = { [field: string]: unknown };

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED";

export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
