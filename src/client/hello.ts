import type { HelloMessage, ResumeToken } from "../../proto/messages.js";
import { FEATURES, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN } from "../../proto/version.js";
import type { ResolvedClientOptions } from "./options.js";

/** The features every client of this library understands (PROTOCOL.md §5.3). */
export const CLIENT_FEATURES: readonly string[] = [
  FEATURES.deflateSnapshot,
  FEATURES.deflateDeltas,
  FEATURES.move,
];

/**
 * The features of a client with these options: patches need the values they apply to, so only a client
 * that keeps a mirror (or one that does not look at the changes at all) asks for them. Every client lists
 * "replica-resume"; one without a mirror also lists "leave", which gives it the digests a mirror would have.
 */
export function clientFeatures(
  options: Pick<ResolvedClientOptions, "isMirror" | "isDecodingDeltas">,
): string[] {
  const canPatch = options.isMirror || !options.isDecodingDeltas;
  const features = canPatch
    ? [...CLIENT_FEATURES, FEATURES.patchDeltas, FEATURES.jsonPatchDeltas]
    : [...CLIENT_FEATURES];
  // A resume on another replica presents the view's digests (§5.2): a mirror computes them; a client
  // without one asks the server it leaves after a move for them (§5.5).
  features.push(FEATURES.replicaResume);
  if (!options.isMirror) features.push(FEATURES.leave);
  return features;
}

/**
 * The hello that opens every session; `resume` when the client has a complete state from a server,
 * `token` as the token option gave it for this attempt.
 */
export function buildHello(
  options: ResolvedClientOptions,
  resume: ResumeToken | undefined,
  token: string | undefined,
): HelloMessage {
  return {
    t: "hello",
    versions: [PROTOCOL_VERSION_MIN, PROTOCOL_VERSION_MAX],
    view: options.view,
    client: { name: options.clientName, version: options.clientVersion },
    features: clientFeatures(options),
    ...(options.nodeName !== undefined && { node: options.nodeName }),
    ...(resume !== undefined && { resume }),
    ...(token !== undefined && { token }),
  };
}
