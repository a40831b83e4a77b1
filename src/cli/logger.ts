import pino from "pino";
import type { Logger } from "pino";

/** JSON logs on stderr (stdout stays free for command output such as `tabby dump`). */
export function createLogger(level: string, name = "tabby"): Logger {
  return pino({ name, level }, pino.destination({ fd: 2, sync: false }));
}
