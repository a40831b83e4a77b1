/** Test helpers that read `deltas` frames in any encoding (plain, `z`, patches) the way a client must. */
import { decodeDeltaEntries, decodeServerMessage } from "../../proto/codec.js";
import { inflateDeltas } from "../../proto/delta-compression.js";
import { applyPatchEntry } from "../../proto/json-patch.js";
import { resourceVersionOf } from "../../proto/merge-patch.js";
import { isPatchEntry } from "../../proto/messages.js";
import type { DeltaEntry, DeltasMessage, ResourceValue } from "../../proto/messages.js";

/** The changes of a decoded `deltas` message, inflating `z` when present. */
export function changesOf(message: DeltasMessage): readonly DeltaEntry[] {
  return message.z === undefined ? message.changes : decodeDeltaEntries(inflateDeltas(message.z, 1 << 28));
}

/** Decodes one `deltas` frame and returns it with its changes inflated. */
export function decodeDeltasFrame(frame: Uint8Array): DeltasMessage {
  const message = decodeServerMessage(frame);
  if (message.t !== "deltas") throw new Error(`expected a deltas frame, got ${message.t}`);
  return { t: "deltas", from: message.from, to: message.to, changes: changesOf(message) };
}

/**
 * Applies changes to a key → value map as a mirror must: full values replace, null deletes, a patch applies
 * to the held value whose resourceVersion is its base (and throws when there is no such value).
 */
export function applyChanges(state: Map<string, ResourceValue>, changes: readonly DeltaEntry[]): void {
  for (const c of changes) {
    if (isPatchEntry(c)) {
      const held = state.get(c.k);
      const rv = resourceVersionOf(held);
      if (held === undefined || rv !== c.b) {
        throw new Error(`patch for ${c.k} at ${c.b} but the state holds ${String(rv)}`);
      }
      state.set(c.k, applyPatchEntry(held, c));
    } else if (c.v === null) {
      state.delete(c.k);
    } else {
      state.set(c.k, c.v);
    }
  }
}
