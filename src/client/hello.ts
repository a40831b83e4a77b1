import type { HelloMessage, ResumeToken } from "../../proto/messages.js";
import { FEATURES, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN } from "../../proto/version.js";
import type { ResolvedClientOptions } from "./options.js";

/** The features this client understands (PROTOCOL.md §5.3). */
export const CLIENT_FEATURES: readonly string[] = [FEATURES.deflateSnapshot, FEATURES.move];

/** The hello that opens every session; `resume` when the client has a complete state from a server. */
export function buildHello(options: ResolvedClientOptions, resume: ResumeToken | undefined): HelloMessage {
  return {
    t: "hello",
    versions: [PROTOCOL_VERSION_MIN, PROTOCOL_VERSION_MAX],
    view: options.view,
    client: { name: options.clientName, version: options.clientVersion },
    features: CLIENT_FEATURES,
    ...(options.nodeName !== undefined && { node: options.nodeName }),
    ...(resume !== undefined && { resume }),
    ...(options.token !== undefined && { token: options.token }),
  };
}
