/**
 * A throwaway PKI for TLS tests: a CA and certificates signed by it, generated with the openssl CLI in a
 * temporary directory (removed when the test finishes). No private key is ever committed.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { onTestFinished } from "vitest";

const execFileAsync = promisify(execFile);

export interface KeyPair {
  readonly certPath: string;
  readonly keyPath: string;
  readonly cert: string;
  readonly key: string;
}

export interface CertSpec {
  readonly cn: string;
  /** subjectAltName entries, e.g. ["IP:127.0.0.1", "DNS:localhost", "URI:spiffe://cluster.local/ns/x/sa/y"]. */
  readonly san?: readonly string[];
  /** Days of validity. Default 2. */
  readonly days?: number;
  /** "server" or "client" extended key usage (default both). */
  readonly usage?: "server" | "client";
}

export interface TestPki {
  readonly dir: string;
  readonly ca: KeyPair;
  /** Signs a new key pair with this CA; files named after `name`. */
  issue(name: string, spec: CertSpec): Promise<KeyPair>;
}

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  try {
    await execFileAsync("openssl", args, { cwd, timeout: 30_000 });
  } catch (err) {
    throw new Error(`openssl ${args[0] ?? ""} failed (is openssl installed?)`, { cause: err });
  }
}

async function readPair(certPath: string, keyPath: string): Promise<KeyPair> {
  return {
    certPath,
    keyPath,
    cert: await readFile(certPath, "utf8"),
    key: await readFile(keyPath, "utf8"),
  };
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"] as const;

/** A new CA (`name` in its CN) in a temporary directory that is removed when the test finishes. */
export async function createTestPki(name = "tabby-test-ca"): Promise<TestPki> {
  const dir = await mkdtemp(path.join(tmpdir(), "tabby-pki-"));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return createPkiIn(dir, name);
}

/** As createTestPki, in a directory the caller owns (integration tests, beforeAll). */
export async function createPkiIn(dir: string, name = "tabby-test-ca"): Promise<TestPki> {
  const caCert = path.join(dir, "ca.crt");
  const caKey = path.join(dir, "ca.key");
  await openssl(
    [
      "req",
      "-x509",
      ...EC,
      "-days",
      "2",
      "-subj",
      `/CN=${name}`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
      "-keyout",
      caKey,
      "-out",
      caCert,
    ],
    dir,
  );
  const ca = await readPair(caCert, caKey);
  let serial = 1;
  return {
    dir,
    ca,
    async issue(fileName: string, spec: CertSpec): Promise<KeyPair> {
      const keyPath = path.join(dir, `${fileName}.key`);
      const csrPath = path.join(dir, `${fileName}.csr`);
      const certPath = path.join(dir, `${fileName}.crt`);
      const extPath = path.join(dir, `${fileName}.ext`);
      await openssl(
        ["req", "-new", ...EC, "-subj", `/CN=${spec.cn}`, "-keyout", keyPath, "-out", csrPath],
        dir,
      );
      const usage =
        spec.usage === "server"
          ? "serverAuth"
          : spec.usage === "client"
            ? "clientAuth"
            : "serverAuth,clientAuth";
      const ext = [
        "basicConstraints=CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        `extendedKeyUsage=${usage}`,
        ...(spec.san !== undefined && spec.san.length > 0 ? [`subjectAltName=${spec.san.join(",")}`] : []),
      ];
      await writeFile(extPath, `${ext.join("\n")}\n`);
      await openssl(
        [
          "x509",
          "-req",
          "-in",
          csrPath,
          "-CA",
          caCert,
          "-CAkey",
          caKey,
          "-set_serial",
          String(serial++),
          "-days",
          String(spec.days ?? 2),
          "-extfile",
          extPath,
          "-out",
          certPath,
        ],
        dir,
      );
      return readPair(certPath, keyPath);
    },
  };
}
