#!/usr/bin/env node
// The CLI entry: registers the lean-import hook first, then loads the commands (dynamic import, so that
// the hook applies to everything they import).
import { registerLeanImports } from "./lean-imports.js";

registerLeanImports();
await import("./program.js");
