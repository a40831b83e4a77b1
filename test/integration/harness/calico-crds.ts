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

/** Creates every Calico CRD (an existing one is kept) and waits until all are Established. */
export async function installCalicoCrds(endpoint: KubeEndpoint, dir = calicoCrdsDir()): Promise<string[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith(".yaml") || f.endsWith(".yml")).sort();
  const names: string[] = [];
  const plurals: string[] = [];
  for (const file of files) {
    const docs = parseAllDocuments(await readFile(path.join(dir, file), "utf8")).map((d) => {
      if (d.errors.length > 0) throw new Error(`${file}: invalid YAML`, { cause: d.errors[0] });
      return d.toJS() as CrdManifest | null;
    });
    for (const doc of docs) {
      if (doc?.kind !== "CustomResourceDefinition") continue;
      const name = doc.metadata?.name;
      const plural = doc.spec?.names?.plural;
      if (name === undefined || plural === undefined) throw new Error(`${file}: CRD without name or plural`);
      try {
        await kubeRequest(endpoint, "POST", CRD_PATH, doc);
      } catch (err) {
        if (!(err instanceof KubeApiError && err.status === 409)) throw err;
      }
      names.push(name);
      plurals.push(plural);
    }
  }
  if (names.length === 0) throw new Error(`no CustomResourceDefinition in ${dir}`);
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
