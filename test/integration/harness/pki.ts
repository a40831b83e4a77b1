import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

/** The files kube-apiserver needs for TLS, token authentication and service-account tokens. */
export interface ApiServerCredentials {
  /** Self-signed serving certificate (also the CA clients trust). */
  readonly certPath: string;
  readonly keyPath: string;
  /** Service-account token signing key pair. */
  readonly serviceAccountKeyPath: string;
  readonly serviceAccountPublicKeyPath: string;
  /** Static token file: one admin user in group system:masters. */
  readonly tokenFilePath: string;
  readonly adminToken: string;
}

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  try {
    await execFileAsync("openssl", args, { cwd, timeout: 30_000 });
  } catch (err) {
    throw new Error(`openssl ${args[0] ?? ""} failed (is openssl installed?)`, { cause: err });
  }
}

/** Writes fresh credentials into `dir` (openssl; a few hundred ms). */
export async function generateCredentials(dir: string): Promise<ApiServerCredentials> {
  const certPath = path.join(dir, "serving.crt");
  const keyPath = path.join(dir, "serving.key");
  const serviceAccountKeyPath = path.join(dir, "service-account.key");
  const serviceAccountPublicKeyPath = path.join(dir, "service-account.pub");
  const tokenFilePath = path.join(dir, "tokens.csv");
  await openssl(
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "2",
      "-subj",
      "/CN=tabby-integration-kube-apiserver",
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "-keyout",
      keyPath,
      "-out",
      certPath,
    ],
    dir,
  );
  await openssl(["genrsa", "-out", serviceAccountKeyPath, "2048"], dir);
  await openssl(["rsa", "-in", serviceAccountKeyPath, "-pubout", "-out", serviceAccountPublicKeyPath], dir);
  const adminToken = randomBytes(24).toString("hex");
  // token,user,uid,"group1,group2"
  await writeFile(tokenFilePath, `${adminToken},tabby-admin,tabby-admin,"system:masters"\n`, { mode: 0o600 });
  return {
    certPath,
    keyPath,
    serviceAccountKeyPath,
    serviceAccountPublicKeyPath,
    tokenFilePath,
    adminToken,
  };
}
