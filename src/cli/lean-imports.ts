import { register } from "node:module";

/**
 * `@kubernetes/client-node`'s config.js imports its generated API clients (gen/index.js, ~2,000 modules)
 * for one method, `makeApiClient`, which tabby never calls: importing it costs ~70 MB of RSS. This
 * module-resolution hook answers that one import, from that one file, with a two-export stand-in whose
 * use throws a clear error; every other import resolves as usual. KubeConfig itself (kubeconfig files,
 * in-cluster config, exec and OIDC credentials) is the real one. Measured in docs/BENCHMARKS.md.
 */
const STAND_IN = `
const message = "tabby does not load client-node's generated API clients (src/cli/lean-imports.ts)";
export class ServerConfiguration { constructor() { throw new Error(message); } }
export function createConfiguration() { throw new Error(message); }
`;

const HOOKS = `
const STAND_IN = ${JSON.stringify(`data:text/javascript,${encodeURIComponent(STAND_IN)}`)};
export async function resolve(specifier, context, next) {
  if (specifier === "./gen/index.js" && context.parentURL?.endsWith("/@kubernetes/client-node/dist/config.js")) {
    return { url: STAND_IN, format: "module", shortCircuit: true };
  }
  return next(specifier, context);
}
`;

let isRegistered = false;

/** Registers the hook (once). Modules imported before this call are not affected: import the rest after. */
export function registerLeanImports(): void {
  if (isRegistered || process.env.TABBY_FULL_CLIENT_NODE === "1") return;
  isRegistered = true;
  register(`data:text/javascript,${encodeURIComponent(HOOKS)}`);
}
