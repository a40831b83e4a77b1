import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "../server/kube-config.js";
import { stringify } from "yaml";

const NAME = "tabby-sim";
/** The simulator accepts any bearer token; this is the one its kubeconfigs carry. */
export const SIM_TOKEN = "tabby-sim-token";

/** A KubeConfig for a plain-HTTP simulator URL with token auth (client-node needs skipTLSVerify for http:). */
export function kubeConfigFor(url: string, token: string = SIM_TOKEN): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromClusterAndUser({ name: NAME, server: url, skipTLSVerify: true }, { name: NAME, token });
  return kc;
}

/** The same as a kubeconfig file body. */
export function kubeconfigYamlFor(url: string, token: string = SIM_TOKEN): string {
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: NAME, cluster: { server: url, "insecure-skip-tls-verify": true } }],
    users: [{ name: NAME, user: { token } }],
    contexts: [{ name: NAME, context: { cluster: NAME, user: NAME } }],
    "current-context": NAME,
    preferences: {},
  });
}

/** Writes a kubeconfig to `path`, or to a new temporary directory; returns the file path. */
export async function writeKubeconfig(body: string, path?: string): Promise<string> {
  const file = path ?? join(await mkdtemp(join(tmpdir(), "tabby-sim-")), "kubeconfig");
  await writeFile(file, body, { mode: 0o600 });
  return file;
}
