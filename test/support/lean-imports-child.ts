// Run by test/unit/lean-imports.test.ts in a child process: registers the hook as the CLI does, then
// loads tabby's KubeConfig and reports what works.
import { registerLeanImports } from "../../src/cli/lean-imports.js";

registerLeanImports();
const { KubeConfig } = await import("../../src/server/kube-config.js");
const kc = new KubeConfig();
kc.loadFromString(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: secret-token}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`);
const options: { headers?: Record<string, string> } = {};
await kc.applyToHTTPSOptions(options);
let makeApiClient = "no error";
try {
  kc.makeApiClient(class {});
} catch (err) {
  makeApiClient = err instanceof Error ? err.message : String(err);
}
process.stdout.write(
  JSON.stringify({
    server: kc.getCurrentCluster()?.server,
    headers: options.headers,
    makeApiClient,
    rssBytes: process.memoryUsage().rss,
  }),
);
