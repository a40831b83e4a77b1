import type { ResourceValue } from "../../../../proto/messages.js";
import { formatKey } from "../../../snapshot/keys.js";
import type { ConvertResult, KubeObject } from "../types.js";
import { convertUid } from "./names.js";
import { calicoValue, keepChangedAt, labelsOf, nameOf, namespaceOf, trimMetadata } from "./common.js";

export const NAMESPACE_PROFILE_PREFIX = "kns.";
export const SERVICE_ACCOUNT_PROFILE_PREFIX = "ksa.";
export const NAMESPACE_LABEL_PREFIX = "pcns.";
export const SERVICE_ACCOUNT_LABEL_PREFIX = "pcsa.";
export const NAME_LABEL = "projectcalico.org/name";

/** The profile Calico's Kubernetes datastore always lists (libcalico-go lib/resources/static.go). */
export const DEFAULT_ALLOW_PROFILE_NAME = "projectcalico-default-allow";

/**
 * `Profile/projectcalico-default-allow`: allow-all ingress and egress, at revision 1. libcalico-go's profile
 * client adds it to every list of profiles (Felix receives it through Typha), so that host endpoints can
 * name it to allow traffic in the absence of policy; no Kubernetes object backs it.
 */
export function defaultAllowProfile(): { key: string; value: ResourceValue } {
  return {
    key: formatKey("Profile", DEFAULT_ALLOW_PROFILE_NAME),
    value: calicoValue(
      "Profile",
      { name: DEFAULT_ALLOW_PROFILE_NAME, resourceVersion: "1" },
      { ingress: [{ action: "Allow" }], egress: [{ action: "Allow" }] },
    ),
  };
}

export function namespaceProfileName(namespace: string): string {
  return NAMESPACE_PROFILE_PREFIX + namespace;
}

/** `ksa.<ns>.<sa>`; a ServiceAccount without a namespace counts as in `default`, as Calico names it. */
export function serviceAccountProfileName(namespace: string, serviceAccount: string): string {
  return `${SERVICE_ACCOUNT_PROFILE_PREFIX}${namespace === "" ? "default" : namespace}.${serviceAccount}`;
}

/** The reason a Profile cannot be built: Calico derives its uid and fails on a source uid that is no UUID. */
function uidRejection(obj: KubeObject): { code: "ERR_CONVERT_REJECTED"; reason: string } {
  return { code: "ERR_CONVERT_REJECTED", reason: `uid "${String(obj.metadata?.uid ?? "")}" is not a UUID` };
}

function prefixed(prefix: string, labels: Record<string, string>, name: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) out[prefix + k] = v;
  out[prefix + NAME_LABEL] = name;
  return out;
}

export function namespaceProfileKey(obj: KubeObject): string | null {
  const name = nameOf(obj);
  return name === undefined ? null : formatKey("Profile", namespaceProfileName(name));
}

export function serviceAccountProfileKey(obj: KubeObject): string | null {
  const name = nameOf(obj);
  if (name === undefined) return null;
  return formatKey("Profile", serviceAccountProfileName(namespaceOf(obj) ?? "", name));
}

/**
 * Namespace → `Profile/kns.<ns>`: allow-all rules (Calico's default for namespace profiles) and the
 * namespace's labels to apply to its endpoints, prefixed `pcns.`, plus `pcns.projectcalico.org/name`. The
 * uid is derived from the namespace's as Calico derives it (convertUid); one that is no UUID is rejected.
 */
export function convertNamespace(obj: KubeObject): ConvertResult {
  const name = nameOf(obj);
  if (name === undefined) return null;
  const profile = namespaceProfileName(name);
  const key = formatKey("Profile", profile);
  const uid = convertUid(typeof obj.metadata?.uid === "string" ? obj.metadata.uid : "");
  if (uid === undefined) return { key, value: null, rejected: uidRejection(obj) };
  const metadata = trimMetadata(obj.metadata, {
    name: profile,
    uid,
    keepLabels: false,
    keepAnnotation: keepChangedAt,
  });
  return {
    key,
    value: calicoValue("Profile", metadata, {
      ingress: [{ action: "Allow" }],
      egress: [{ action: "Allow" }],
      labelsToApply: prefixed(NAMESPACE_LABEL_PREFIX, labelsOf(obj), name),
    }),
  };
}

/**
 * ServiceAccount → `Profile/ksa.<ns>.<sa>` (namespace `default` when the object has none): labels to
 * apply, prefixed `pcsa.`, plus the name label. The uid is derived as Calico derives it (convertUid).
 */
export function convertServiceAccount(obj: KubeObject): ConvertResult {
  const name = nameOf(obj);
  if (name === undefined) return null;
  const profile = serviceAccountProfileName(namespaceOf(obj) ?? "", name);
  const key = formatKey("Profile", profile);
  const uid = convertUid(typeof obj.metadata?.uid === "string" ? obj.metadata.uid : "");
  if (uid === undefined) return { key, value: null, rejected: uidRejection(obj) };
  const metadata = trimMetadata(obj.metadata, {
    name: profile,
    uid,
    keepLabels: false,
    keepAnnotation: keepChangedAt,
  });
  return {
    key,
    value: calicoValue("Profile", metadata, {
      labelsToApply: prefixed(SERVICE_ACCOUNT_LABEL_PREFIX, labelsOf(obj), name),
    }),
  };
}
