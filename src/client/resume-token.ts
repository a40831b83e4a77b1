import type { ResumeState, ResumeToken, ViewName } from "../../proto/messages.js";
import { VIEWS } from "../snapshot/kinds.js";
import { digestHex, DigestAccumulator, valueHash } from "../snapshot/state-digest.js";
import type { Mirror } from "./mirror.js";

/**
 * The digests of a mirror, one per kind of its view (PROTOCOL.md §5.2): what lets any replica, not only the
 * server that built the mirror, resume it exactly. Computed when a session starts (one pass over the
 * mirror, ~1 µs per value), never on the hot path. Its size is bounded by the view's kinds, not by the
 * mirror: about 1 KB for `felix` (21 kinds).
 */
export function mirrorState(
  mirror: Mirror,
  view: ViewName,
  node: string | undefined,
  conversion: string,
): ResumeState {
  const kinds: Record<string, readonly [number, string]> = {};
  for (const kind of VIEWS[view].kinds) {
    const acc = new DigestAccumulator();
    for (const key of mirror.keys(kind)) {
      const value = mirror.get(key);
      if (value !== undefined) acc.add(valueHash(key, value));
    }
    kinds[kind] = [acc.count, digestHex(acc)];
  }
  return { conversion, view, ...(node !== undefined && { node }), kinds };
}

/**
 * The resume token of the next hello: `{server, revision}` of the last complete state, plus the mirror's
 * `state` when the client keeps a mirror and the server that built it named its conversion.
 */
export function resumeToken(server: string, revision: number, state: ResumeState | undefined): ResumeToken {
  return { server, revision, ...(state !== undefined && { state }) };
}
