import type { ResourceDef } from "./resources.js";

const VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"] as const;

export function apiVersions(serverAddress: string): object {
  return {
    kind: "APIVersions",
    versions: ["v1"],
    serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress }],
  };
}

function groupOf(name: string, defs: readonly ResourceDef[]): object {
  const versions = [...new Set(defs.filter((d) => d.group === name).map((d) => d.version))].map(
    (version) => ({
      groupVersion: `${name}/${version}`,
      version,
    }),
  );
  return { name, versions, preferredVersion: versions[0] };
}

/** `/apis`: every group with at least one installed resource. */
export function apiGroupList(installed: readonly ResourceDef[]): object {
  const names = [...new Set(installed.filter((d) => d.group !== "").map((d) => d.group))].sort();
  return { kind: "APIGroupList", apiVersion: "v1", groups: names.map((n) => groupOf(n, installed)) };
}

/** `/apis/<group>`, or undefined when nothing of the group is installed. */
export function apiGroup(name: string, installed: readonly ResourceDef[]): object | undefined {
  if (!installed.some((d) => d.group === name)) return undefined;
  return { kind: "APIGroup", apiVersion: "v1", ...groupOf(name, installed) };
}

/** `/api/v1` or `/apis/<group>/<version>`, or undefined when nothing of it is installed. */
export function apiResourceList(
  group: string,
  version: string,
  installed: readonly ResourceDef[],
): object | undefined {
  const defs = installed.filter((d) => d.group === group && d.version === version);
  if (defs.length === 0) return undefined;
  const resources = defs.flatMap((d) => {
    const main = {
      name: d.plural,
      singularName: d.singular,
      namespaced: d.isNamespaced,
      kind: d.kind,
      verbs: VERBS,
      ...(d.shortNames.length > 0 ? { shortNames: d.shortNames } : {}),
    };
    const status = {
      name: `${d.plural}/status`,
      singularName: "",
      namespaced: d.isNamespaced,
      kind: d.kind,
      verbs: ["get", "patch", "update"],
    };
    return [main, status];
  });
  return {
    kind: "APIResourceList",
    apiVersion: "v1",
    groupVersion: group === "" ? version : `${group}/${version}`,
    resources,
  };
}

export const VERSION_INFO = {
  major: "1",
  minor: "31",
  gitVersion: "v1.31.0-tabby-sim",
  gitCommit: "0000000000000000000000000000000000000000",
  gitTreeState: "clean",
  buildDate: "2026-01-01T00:00:00Z",
  goVersion: "go1.22.0",
  compiler: "gc",
  platform: "linux/amd64",
} as const;
