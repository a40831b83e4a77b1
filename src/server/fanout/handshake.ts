import type { RawData } from "ws";
import { CloseCode } from "../../../proto/close-codes.js";
import { decodeClientMessage } from "../../../proto/codec.js";
import { ProtoError, ProtoErrorCode } from "../../../proto/errors.js";
import { VIEW_NAMES } from "../../../proto/messages.js";
import type { ClientMessage, HelloMessage, ResumeToken, ViewName } from "../../../proto/messages.js";
import { negotiateVersion, PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN } from "../../../proto/version.js";
import { VIEWS } from "../../snapshot/kinds.js";
import type { BadFrameReason, DropReason } from "./metrics.js";

export type FrameReadResult =
  | { readonly ok: true; readonly message: ClientMessage }
  | { readonly ok: false; readonly reason: BadFrameReason; readonly detail: string };

const PROTO_REASONS: Readonly<Record<string, BadFrameReason>> = {
  [ProtoErrorCode.badFrame]: "not-msgpack",
  [ProtoErrorCode.badMessage]: "bad-message",
  [ProtoErrorCode.unknownType]: "unknown-type",
  [ProtoErrorCode.tooLarge]: "too-large",
};

/** Decodes one inbound WebSocket message into a client message, or says why it is a bad frame. */
export function readClientFrame(data: RawData, isBinary: boolean): FrameReadResult {
  if (!isBinary) return { ok: false, reason: "text-frame", detail: "text frames are not allowed" };
  const bytes = Array.isArray(data)
    ? Buffer.concat(data)
    : data instanceof ArrayBuffer
      ? Buffer.from(data)
      : data;
  try {
    return { ok: true, message: decodeClientMessage(bytes) };
  } catch (err) {
    if (err instanceof ProtoError) {
      return { ok: false, reason: PROTO_REASONS[err.code] ?? "bad-message", detail: err.message };
    }
    throw err;
  }
}

export interface HelloAccepted {
  readonly ok: true;
  readonly version: number;
  readonly view: ViewName;
  readonly node: string | undefined;
  /** The features both sides support, in the client's order. */
  readonly features: readonly string[];
  readonly resume: ResumeToken | undefined;
  readonly clientName: string;
}

export interface HelloRejected {
  readonly ok: false;
  readonly code: number;
  readonly reason: DropReason;
  readonly detail: string;
}

/**
 * Decides what to do with a valid hello: the protocol version, view, node requirement and features.
 * Pure; resume eligibility is the server's (it needs the hub).
 */
export function evaluateHello(
  hello: HelloMessage,
  serverFeatures: readonly string[],
): HelloAccepted | HelloRejected {
  const version = negotiateVersion(hello.versions);
  if (version === null) {
    return {
      ok: false,
      code: CloseCode.unsupportedVersion,
      reason: "unsupportedVersion",
      detail: `no common protocol version: client [${hello.versions.join(", ")}], server [${PROTOCOL_VERSION_MIN}, ${PROTOCOL_VERSION_MAX}]`,
    };
  }
  if (!(VIEW_NAMES as readonly string[]).includes(hello.view)) {
    return {
      ok: false,
      code: CloseCode.unknownView,
      reason: "unknownView",
      detail: `unknown view "${hello.view.slice(0, 64)}"`,
    };
  }
  const view = hello.view as ViewName;
  const node = hello.node === "" ? undefined : hello.node;
  if (node === undefined && VIEWS[view].nodeScopedKinds.size > 0) {
    return {
      ok: false,
      code: CloseCode.nodeRequired,
      reason: "nodeRequired",
      detail: `view ${view} has node-scoped kinds: the hello must name its node`,
    };
  }
  const offered = new Set(serverFeatures);
  const features = [...new Set(hello.features ?? [])].filter((f) => offered.has(f));
  return {
    ok: true,
    version,
    view,
    node,
    features,
    resume: hello.resume,
    clientName: `${hello.client.name}/${hello.client.version}`,
  };
}
