#!/usr/bin/env node
import { Command } from "commander";
import { chaosCommand } from "./chaos.js";
import { demoCommand } from "./demo.js";
import { dumpCommand } from "./dump.js";
import { loadtestCommand } from "./loadtest.js";
import { serveCommand } from "./serve.js";
import { simCommand } from "./sim.js";
import { statusCommand } from "./status.js";

const program = new Command("tabby")
  .description("A Typha-style fan-out cache for Calico.")
  .version("0.1.0")
  .addCommand(serveCommand())
  .addCommand(dumpCommand())
  .addCommand(statusCommand())
  .addCommand(simCommand())
  .addCommand(demoCommand())
  .addCommand(loadtestCommand())
  .addCommand(chaosCommand())
  .showHelpAfterError();

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`tabby: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
