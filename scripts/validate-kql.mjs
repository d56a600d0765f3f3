#!/usr/bin/env node
// Validates every command text kusto-sim received (its JSON-lines command log:
// {"endpoint","db","csl"} per line) with Microsoft's Kusto parser,
// @kusto/language-service-next. Prints each command with syntax errors and their
// diagnostics, then "N commands checked"; entries kusto-sim's own parser refused (marked
// "refused") are counted but not checked; exits 1 if any command has a syntax error, a log
// line is not valid JSON or has no command text, or nothing at all was checked (an empty
// log means the tests sent nothing through it, not that everything is valid); 2 on usage
// errors.
//
// Usage: node scripts/validate-kql.mjs <command-log.jsonl>...

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
// The package is Bridge.NET output: bridge.js defines the runtime the library needs as
// globals, then the library registers the `Kusto` global.
require('@kusto/language-service-next/bridge.js');
require('@kusto/language-service-next/Kusto.Language.Bridge.js');
const { KustoCode } = globalThis.Kusto.Language;

/** Syntax errors of one command or query text, as "message (at offset)". */
export function syntaxErrors(text) {
  // Parse (not ParseAndAnalyze): without the cluster's schema every table name would be
  // an "unknown name" error; syntax is what CI must pin. Commands get the command grammar.
  const code = KustoCode.Parse(text);
  const diagnostics = code.GetSyntaxDiagnostics();
  const errors = [];
  for (let i = 0; i < diagnostics.Count; i++) {
    const d = diagnostics.getItem(i);
    if (d.Severity === 'Error') errors.push(`${d.Message} (at ${d.Start})`);
  }
  return errors;
}

// `.ingest inline ... <| data`: everything after `<|` is the data, raw text that the grammar
// takes as is. The parser's time grows with its length (seconds for the tests' 2,000-row
// ingestions), so only the first data line is kept: the command's syntax is all there is to
// check.
const INLINE_INGEST = /^\s*\.ingest\s+(async\s+)?inline\b/i;

export function withoutInlineData(csl) {
  if (!INLINE_INGEST.test(csl)) return csl;
  const data = csl.indexOf('<|');
  if (data < 0) return csl;
  const firstLine = csl.slice(data + 2).replace(/^\s*\n/, '').split('\n')[0];
  return `${csl.slice(0, data + 2)}\n${firstLine}`;
}

function main(files) {
  if (files.length === 0) {
    console.error('usage: node scripts/validate-kql.mjs <command-log.jsonl>...');
    return 2;
  }
  let checked = 0;
  let failed = 0;
  let refused = 0;
  for (const file of files) {
    const lines = readFileSync(file, 'utf8').split('\n');
    lines.forEach((line, index) => {
      if (line.trim() === '') return;
      const where = `${file}:${index + 1}`;
      let entry;
      try {
        entry = JSON.parse(line);
      } catch (e) {
        failed++;
        console.log(`${where}: not a JSON command-log line: ${e.message}`);
        return;
      }
      // kusto-sim's own parser refused it (a test sending bad text on purpose): being
      // stricter than Kusto is allowed, so only the texts it accepted must parse here.
      if (typeof entry?.refused === 'string') {
        refused++;
        return;
      }
      if (typeof entry?.csl !== 'string' || entry.csl.trim() === '') {
        failed++;
        console.log(`${where}: command-log entry without command text: ${line}`);
        return;
      }
      checked++;
      const errors = syntaxErrors(withoutInlineData(entry.csl));
      if (errors.length > 0) {
        failed++;
        console.log(`${where} [${entry.endpoint} ${entry.db}]\n  ${entry.csl}`);
        errors.forEach((e) => console.log(`    error: ${e}`));
      }
    });
  }
  console.log(
    `${checked} commands checked, ${failed} with syntax errors` +
      (refused > 0 ? ` (${refused} refused by kusto-sim's parser, not checked)` : ''),
  );
  if (checked === 0) {
    console.log('no command was checked: the command logs are empty, so nothing was validated');
    return 1;
  }
  return failed === 0 ? 0 : 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = main(process.argv.slice(2));
}
