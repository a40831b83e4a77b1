/**
 * Generates src/client/types/calico-crds.generated.ts: a TypeScript type for the value of every Calico CRD
 * kind, from the OpenAPI v3 schema of its served version in calico/crds/ (json-schema-to-typescript).
 *
 *   npm run generate:types          # rewrite the file
 *   npm run generate:types -- --check   # exit 1 when the committed file is not what the CRDs give
 *
 * test/unit/client-types.test.ts runs `generateCrdTypes()` and compares it with the committed file.
 */
import { readdir, readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { compile } from "json-schema-to-typescript";
import type { JSONSchema } from "json-schema-to-typescript";
import { format, resolveConfig } from "prettier";
import { parse } from "yaml";

const ROOT = new URL("../", import.meta.url);
export const CRDS_DIR = new URL("calico/crds/", ROOT);
export const OUTPUT_FILE = new URL("src/client/types/calico-crds.generated.ts", ROOT);

interface CrdVersion {
  name: string;
  served?: boolean;
  storage?: boolean;
  schema?: { openAPIV3Schema?: JSONSchema };
}
interface Crd {
  kind?: string;
  spec?: {
    names?: { kind?: string };
    scope?: string;
    versions?: CrdVersion[];
  };
}

/** Kinds whose value keeps the object's `status` (the converter keeps it; see convert/crd.ts). */
const STATUS_KINDS = new Set(["CalicoNodeStatus"]);

/**
 * Spec fields whose v3 value differs in type from the v1 CRD's schema: Calico's versionconverter turns them
 * into the v3 field (see convert/crd.ts), and tabby serves the v3 value.
 */
const V3_SPEC_FIELDS: Readonly<Record<string, Readonly<Record<string, JSONSchema>>>> = {
  BlockAffinity: {
    deleted: {
      type: "boolean",
      description:
        'Deleted: the affinity is being released; treat the block as not affine. The v1 CRD stores a string, the v3 value is true exactly when it is "true".',
    },
  },
};

function withV3Fields(kind: string, spec: JSONSchema): JSONSchema {
  const fields = V3_SPEC_FIELDS[kind];
  if (fields === undefined) return spec;
  const properties = { ...(spec.properties ?? {}), ...fields };
  return { ...spec, properties };
}

/**
 * CRD schemas say "object" both for structs (with `properties`) and for free-form maps. A struct gets no
 * index signature (its fields are known); an object with no properties is a map of unknown values.
 * Kubernetes extension keywords are removed so they do not end up in the output.
 */
function normalize(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(normalize);
  if (schema === null || typeof schema !== "object") return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema as Record<string, unknown>)) {
    if (k.startsWith("x-kubernetes-") || k === "default" || k === "example") continue;
    if (k === "properties" && v !== null && typeof v === "object") {
      out[k] = Object.fromEntries(
        Object.entries(v as Record<string, unknown>).map(([p, s]) => [p, normalize(s)]),
      );
    } else {
      out[k] = normalize(v);
    }
  }
  if (out.type === "object" && out.additionalProperties === undefined) {
    out.additionalProperties = out.properties === undefined;
  }
  return out;
}

interface KindSchemas {
  kind: string;
  namespaced: boolean;
  version: string;
  spec: JSONSchema;
  status: JSONSchema | undefined;
}

async function readCrds(): Promise<KindSchemas[]> {
  const files = (await readdir(CRDS_DIR)).filter((f) => f.endsWith(".yaml")).sort();
  const out: KindSchemas[] = [];
  for (const file of files) {
    const crd = parse(await readFile(new URL(file, CRDS_DIR), "utf8")) as Crd;
    const kind = crd.spec?.names?.kind;
    const version = crd.spec?.versions?.find((v) => v.served === true && v.storage === true);
    const schema = version?.schema?.openAPIV3Schema;
    if (
      crd.kind !== "CustomResourceDefinition" ||
      kind === undefined ||
      version === undefined ||
      schema === undefined
    )
      throw new Error(`${file}: not a CustomResourceDefinition with a served storage version and a schema`);
    const props = (schema.properties ?? {}) as Record<string, JSONSchema>;
    out.push({
      kind,
      namespaced: crd.spec?.scope === "Namespaced",
      version: version.name,
      spec: withV3Fields(kind, props.spec ?? { type: "object" }),
      status: STATUS_KINDS.has(kind) ? props.status : undefined,
    });
  }
  return out.sort((a, b) => a.kind.localeCompare(b.kind));
}

async function compileType(schema: JSONSchema, name: string): Promise<string> {
  const ts = await compile(normalize(schema) as JSONSchema, name, {
    bannerComment: "",
    format: false,
    additionalProperties: false,
    strictIndexSignatures: true,
    unknownAny: true,
    declareExternallyReferenced: true,
    enableConstEnums: false,
    ignoreMinAndMaxItems: true,
    customName: (s) => (s === schema ? name : undefined),
  });
  return ts.trim();
}

/** The generated module's text (formatted with the repository's prettier config). */
export async function generateCrdTypes(): Promise<string> {
  const kinds = await readCrds();
  const parts: string[] = [
    "// Generated by scripts/generate-client-types.ts from calico/crds/*.yaml (json-schema-to-typescript).",
    "// Do not edit: run `npm run generate:types`.",
    "/* eslint-disable */",
    'import type { CalicoResource } from "./resource.js";',
    "",
  ];
  for (const k of kinds) {
    parts.push(await compileType(k.spec, `${k.kind}Spec`));
    if (k.status !== undefined) parts.push(await compileType(k.status, `${k.kind}Status`));
    const scope = k.namespaced ? "namespaced" : "cluster-scoped";
    const doc = `/** A ${k.kind} (crd.projectcalico.org/${k.version}, ${scope}) as tabby serves it: the Calico v3 value. */`;
    parts.push(
      k.status === undefined
        ? `${doc}\nexport type ${k.kind} = CalicoResource<"${k.kind}", ${k.kind}Spec>;`
        : `${doc}\nexport type ${k.kind} = CalicoResource<"${k.kind}", ${k.kind}Spec, ${k.kind}Status>;`,
    );
  }
  parts.push(
    "/** Every Calico CRD kind and the type of its value. */",
    "export interface CalicoCrdKinds {",
    ...kinds.map((k) => `  ${k.kind}: ${k.kind};`),
    "}",
    "/** The CRD kinds the types were generated for. */",
    `export const GENERATED_CRD_KINDS = ${JSON.stringify(kinds.map((k) => k.kind))} as const;`,
  );
  const text = parts.join("\n\n") + "\n";
  const config = (await resolveConfig(fileURLToPath(OUTPUT_FILE))) ?? {};
  return format(text, { ...config, parser: "typescript" });
}

async function main(): Promise<void> {
  const text = await generateCrdTypes();
  if (process.argv.includes("--check")) {
    const current = await readFile(OUTPUT_FILE, "utf8").catch(() => "");
    if (current !== text) {
      console.error(`${fileURLToPath(OUTPUT_FILE)} is stale: run \`npm run generate:types\``);
      process.exitCode = 1;
    }
    return;
  }
  await writeFile(OUTPUT_FILE, text);
  console.log(`wrote ${fileURLToPath(OUTPUT_FILE)}`);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await main();
