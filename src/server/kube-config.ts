/**
 * client-node's KubeConfig, imported from its own module rather than the package index: the index also
 * loads the generated API clients (tabby uses none of them). Run through the CLI, src/cli/lean-imports.ts
 * also keeps config.js itself from loading them (see there).
 */
export { KubeConfig } from "@kubernetes/client-node/dist/config.js";
