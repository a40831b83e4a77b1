import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { parseAllDocuments } from "yaml";
import { KubeApiError, kubeRequest } from "./kube-request.js";
import type { KubeEndpoint } from "./kube-request.js";
import { waitFor } from "./wait.js";

const CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
const REPO_ROOT = path.resolve(import.meta.dirname, "../../..");

/**
 * Kubernetes 1.20 rejects the current Calico CRDs (CEL rules, empty-string defaults); this directory has
 * the same CRDs without them (`calico/crds-k8s-1.20` in the repository).
 */
export function calicoCrdsDir(): string {
  const dir = path.join(REPO_ROOT, "calico/crds-k8s-1.20");
  if (!existsSync(dir)) throw new Error(`Calico CRDs for Kubernetes 1.20 not found in ${dir}`);
  return dir;
}

interface CrdManifest {
  kind?: string;
  metadata?: { name?: string };
  spec?: { names?: { plural?: string } };
}

interface CrdStatus {
  status?: { conditions?: { type?: string; status?: string }[] };
}

/**
 * sigs.k8s.io/network-policy-api's ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2), which Calico
 * converts when it is installed. A minimal CRD written for these tests: the spec is kept as written (no
 * schema validation), which is all a round trip through the API server needs.
 */
export const CLUSTER_NETWORK_POLICY_CRD = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: {
    name: "clusternetworkpolicies.policy.networking.k8s.io",
    // *.k8s.io groups are protected: the API server wants the approval annotation the real CRD carries.
    annotations: {
      "api-approved.kubernetes.io": "https://github.com/kubernetes-sigs/network-policy-api/pull/30",
    },
  },
  spec: {
    group: "policy.networking.k8s.io",
    scope: "Cluster",
    names: {
      plural: "clusternetworkpolicies",
      singular: "clusternetworkpolicy",
      kind: "ClusterNetworkPolicy",
      listKind: "ClusterNetworkPolicyList",
      shortNames: ["cnp"],
    },
    versions: [
      {
        name: "v1alpha2",
        served: true,
        storage: true,
        schema: {
          openAPIV3Schema: {
            type: "object",
            properties: { spec: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
          },
        },
      },
    ],
  },
};

/**
 * Creates every Calico CRD, and the ClusterNetworkPolicy CRD (an existing one is kept), and waits until all
 * are Established; their plurals.
 */
export async function installCalicoCrds(endpoint: KubeEndpoint, dir = calicoCrdsDir()): Promise<string[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith(".yaml") || f.endsWith(".yml")).sort();
  const names: string[] = [];
  const plurals: string[] = [];
  const crds: CrdManifest[] = [CLUSTER_NETWORK_POLICY_CRD];
  for (const file of files) {
    const docs = parseAllDocuments(await readFile(path.join(dir, file), "utf8")).map((d) => {
      if (d.errors.length > 0) throw new Error(`${file}: invalid YAML`, { cause: d.errors[0] });
      return d.toJS() as CrdManifest | null;
    });
    for (const doc of docs) {
      if (doc?.kind !== "CustomResourceDefinition") continue;
      if (doc.metadata?.name === undefined || doc.spec?.names?.plural === undefined) {
        throw new Error(`${file}: CRD without name or plural`);
      }
      crds.push(doc);
    }
  }
  if (crds.length === 1) throw new Error(`no CustomResourceDefinition in ${dir}`);
  for (const doc of crds) {
    try {
      await kubeRequest(endpoint, "POST", CRD_PATH, doc);
    } catch (err) {
      if (!(err instanceof KubeApiError && err.status === 409)) throw err;
    }
    names.push(doc.metadata?.name ?? "");
    plurals.push(doc.spec?.names?.plural ?? "");
  }
  for (const name of names) {
    await waitFor(
      async () => {
        const crd = await kubeRequest<CrdStatus>(endpoint, "GET", `${CRD_PATH}/${name}`);
        const established = crd.status?.conditions?.some(
          (c) => c.type === "Established" && c.status === "True",
        );
        return established === true ? true : undefined;
      },
      { what: `CRD ${name} to be Established`, timeoutMs: 60_000 },
    );
  }
  return plurals;
}
