#!/usr/bin/env node
// Runs the compiled CLI (npm run build). During development, `npx tsx src/cli/main.ts` does the same.
import("../dist/src/cli/main.js").catch((err) => {
  console.error(`tabby: cannot load the compiled CLI (run \`npm run build\` first): ${err.message}`);
  process.exit(1);
});
