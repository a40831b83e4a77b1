import { formatKey } from "../../../snapshot/keys.js";
import type { ConvertResult, KubeObject } from "../types.js";
import { calicoValue, keepChangedAt, labelsOf, nameOf, namespaceOf, trimMetadata } from "./common.js";

export const NAMESPACE_PROFILE_PREFIX = "kns.";
export const SERVICE_ACCOUNT_PROFILE_PREFIX = "ksa.";
export const NAMESPACE_LABEL_PREFIX = "pcns.";
export const SERVICE_ACCOUNT_LABEL_PREFIX = "pcsa.";
export const NAME_LABEL = "projectcalico.org/name";

export function namespaceProfileName(namespace: string): string {
  return NAMESPACE_PROFILE_PREFIX + namespace;
}

export function serviceAccountProfileName(namespace: string, serviceAccount: string): string {
  return `${SERVICE_ACCOUNT_PROFILE_PREFIX}${namespace}.${serviceAccount}`;
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
  const ns = namespaceOf(obj);
  if (name === undefined || ns === undefined) return null;
  return formatKey("Profile", serviceAccountProfileName(ns, name));
}

/**
 * Namespace → `Profile/kns.<ns>`: allow-all rules (Calico's default for namespace profiles) and the
 * namespace's labels to apply to its endpoints, prefixed `pcns.`, plus `pcns.projectcalico.org/name`.
 */
export function convertNamespace(obj: KubeObject): ConvertResult {
  const name = nameOf(obj);
  if (name === undefined) return null;
  const profile = namespaceProfileName(name);
  const metadata = trimMetadata(obj.metadata, {
    name: profile,
    keepLabels: false,
    keepAnnotation: keepChangedAt,
  });
  return {
    key: formatKey("Profile", profile),
    value: calicoValue("Profile", metadata, {
      ingress: [{ action: "Allow" }],
      egress: [{ action: "Allow" }],
      labelsToApply: prefixed(NAMESPACE_LABEL_PREFIX, labelsOf(obj), name),
    }),
  };
}

/** ServiceAccount → `Profile/ksa.<ns>.<sa>`: labels to apply, prefixed `pcsa.`, plus the name label. */
export function convertServiceAccount(obj: KubeObject): ConvertResult {
  const name = nameOf(obj);
  const ns = namespaceOf(obj);
  if (name === undefined || ns === undefined) return null;
  const profile = serviceAccountProfileName(ns, name);
  const metadata = trimMetadata(obj.metadata, {
    name: profile,
    keepLabels: false,
    keepAnnotation: keepChangedAt,
  });
  return {
    key: formatKey("Profile", profile),
    value: calicoValue("Profile", metadata, {
      labelsToApply: prefixed(SERVICE_ACCOUNT_LABEL_PREFIX, labelsOf(obj), name),
    }),
  };
}
