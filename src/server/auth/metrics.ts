import { Counter } from "prom-client";
import type { Registry } from "prom-client";
import { AUTH_REFUSAL_REASONS } from "./types.js";
import type { AuthRefusalReason, PeerIdentity } from "./types.js";

/** Authentication outcomes: refusals by reason, acceptances by method, certificate reloads by result. */
export class AuthMetrics {
  readonly #refused: Counter<"reason">;
  readonly #accepted: Counter<"method">;
  readonly #reloads: Counter<"result">;
  readonly #admission: Counter<"reason">;
  readonly counts = {
    refused: {} as Partial<Record<AuthRefusalReason, number>>,
    accepted: 0,
  };

  constructor(registry: Registry) {
    this.#refused = new Counter({
      name: "tabby_auth_refused_total",
      help: "Clients refused by authentication or authorization (close 4004, or 4012 when the API cannot review), by reason",
      labelNames: ["reason"],
      registers: [registry],
    });
    for (const reason of AUTH_REFUSAL_REASONS) this.#refused.inc({ reason }, 0);
    this.#accepted = new Counter({
      name: "tabby_auth_accepted_total",
      help: "Clients authenticated, by method (certificate, token, anonymous)",
      labelNames: ["method"],
      registers: [registry],
    });
    for (const method of ["certificate", "token", "anonymous"]) this.#accepted.inc({ method }, 0);
    this.#reloads = new Counter({
      name: "tabby_tls_reloads_total",
      help: "Reloads of the TLS certificate files, by result (ok, error)",
      labelNames: ["result"],
      registers: [registry],
    });
    this.#reloads.inc({ result: "ok" }, 0);
    this.#admission = new Counter({
      name: "tabby_admission_refused_total",
      help: "Connections cut before authentication: per-source (its source holds the per-source cap), evicted (the oldest pending one, to make room)",
      labelNames: ["reason"],
      registers: [registry],
    });
    this.#admission.inc({ reason: "per-source" }, 0);
    this.#admission.inc({ reason: "evicted" }, 0);
    this.#reloads.inc({ result: "error" }, 0);
  }

  refused(reason: AuthRefusalReason): void {
    this.#refused.inc({ reason });
    this.counts.refused[reason] = (this.counts.refused[reason] ?? 0) + 1;
  }

  accepted(identity: PeerIdentity): void {
    this.#accepted.inc({ method: identity.method });
    this.counts.accepted++;
  }

  admissionRefused(reason: "per-source" | "evicted"): void {
    this.#admission.inc({ reason });
  }

  reloaded(isOk: boolean): void {
    this.#reloads.inc({ result: isOk ? "ok" : "error" });
  }
}
