import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { SimError, SimErrorCode } from "./errors.js";
import { resourceDef, type ResourceDef } from "./resources.js";
import { isJsonObject, type JsonObject } from "./types.js";

/**
 * `calico/crds` in the repository root (the nearest directory above this file that holds a package.json,
 * so it works from `src/sim/` and from `dist/src/sim/`).
 */
export function defaultCrdsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return resolve(dir, "calico/crds");
}

const cache = new Map<string, Promise<readonly ResourceDef[]>>();

/**
 * Reads every CustomResourceDefinition in the `*.yaml`/`*.yml` files of a directory (group, served version,
 * plural, singular, kind, scope). Parsed once per directory per process: the manifests are read-only data.
 */
export function loadCrds(dir: string): Promise<readonly ResourceDef[]> {
  let p = cache.get(dir);
  if (p === undefined) {
    p = readCrds(dir);
    cache.set(dir, p);
    p.catch(() => cache.delete(dir)); // a failed read is reported to the caller, and retried next time
  }
  return p;
}

async function readCrds(dir: string): Promise<readonly ResourceDef[]> {
  let files: string[];
  try {
    files = (await readdir(dir)).filter((f) => f.endsWith(".yaml") || f.endsWith(".yml")).sort();
  } catch (err) {
    throw new SimError(SimErrorCode.crdManifest, `cannot read CRD directory ${dir}`, { cause: err });
  }
  const defs: ResourceDef[] = [];
  for (const f of files) {
    const path = join(dir, f);
    const text = await readFile(path, "utf8");
    for (const doc of parseAllDocuments(text)) {
      if (doc.errors.length > 0) {
        throw new SimError(SimErrorCode.crdManifest, `${path}: invalid YAML`, { cause: doc.errors[0] });
      }
      const obj: unknown = doc.toJS();
      if (isJsonObject(obj) && obj.kind === "CustomResourceDefinition") defs.push(crdToDef(obj, path));
    }
  }
  return defs;
}

/** The ResourceDef of one CustomResourceDefinition object (apiextensions.k8s.io/v1). */
export function crdToDef(crd: JsonObject, source: string): ResourceDef {
  const fail = (field: string): never => {
    throw new SimError(SimErrorCode.crdManifest, `${source}: CRD lacks ${field}`);
  };
  const spec = isJsonObject(crd.spec) ? crd.spec : fail("spec");
  const names = isJsonObject(spec.names) ? spec.names : fail("spec.names");
  const group = typeof spec.group === "string" ? spec.group : fail("spec.group");
  const plural = typeof names.plural === "string" ? names.plural : fail("spec.names.plural");
  const kind = typeof names.kind === "string" ? names.kind : fail("spec.names.kind");
  const scope = spec.scope === "Namespaced" || spec.scope === "Cluster" ? spec.scope : fail("spec.scope");
  const versions = Array.isArray(spec.versions) ? spec.versions.filter(isJsonObject) : [];
  const served = versions.filter((v) => v.served !== false && typeof v.name === "string");
  const version = served.find((v) => v.storage === true) ?? served[0] ?? fail("a served spec.versions entry");
  const shortNames = Array.isArray(names.shortNames)
    ? names.shortNames.filter((s): s is string => typeof s === "string")
    : [];
  return resourceDef({
    group,
    version: version.name as string,
    plural,
    kind,
    isNamespaced: scope === "Namespaced",
    isCrd: true,
    singular: typeof names.singular === "string" ? names.singular : kind.toLowerCase(),
    shortNames,
  });
}
