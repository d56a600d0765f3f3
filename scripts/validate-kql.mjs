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
// Texts that differ only in what cannot change their syntax (the content of plain string
// literals, the digits of a name like T00042) are parsed once: the tests send thousands of
// commands that differ only in a table name, and each parse costs tens of milliseconds.
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

const IDENT_START = /[A-Za-z_]/;
const IDENT_CHAR = /[A-Za-z0-9_]/;
// A name of letters then 3+ digits; no Kusto keyword has that shape (int64, crc32 have 2).
const NUMBERED_NAME = /^([A-Za-z]+)\d{3,}$/;

/**
 * The text with its syntax-neutral parts made uniform: plain string literals (no escape, no
 * line break inside) become 'x' and numbered names lose their number. Two texts with the
 * same shape have the same syntax errors. A text the scanner cannot follow (an unclosed
 * string) is its own shape, so it is always parsed.
 */
export function syntaxShape(text) {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, i + 1);
      if (end < 0) return text;
      const content = text.slice(i + 1, end);
      if (content.includes('\\') || content.includes('\n')) {
        // Escapes or line breaks: copy the literal as it is, following escaped quotes.
        let j = i + 1;
        while (j < text.length && text[j] !== c) j += text[j] === '\\' ? 2 : 1;
        if (j >= text.length) return text;
        out += text.slice(i, j + 1);
        i = j + 1;
      } else {
        out += `${c}x${c}`;
        i = end + 1;
      }
    } else if (IDENT_START.test(c)) {
      let j = i + 1;
      while (j < text.length && IDENT_CHAR.test(text[j])) j++;
      const word = text.slice(i, j);
      const numbered = NUMBERED_NAME.exec(word);
      out += numbered ? `${numbered[1]}0` : word;
      i = j;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

function main(files) {
  if (files.length === 0) {
    console.error('usage: node scripts/validate-kql.mjs <command-log.jsonl>...');
    return 2;
  }
  let checked = 0;
  let failed = 0;
  let refused = 0;
  // shape -> whether texts of that shape parse cleanly
  const shapes = new Map();
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
      const text = withoutInlineData(entry.csl);
      const shape = syntaxShape(text);
      if (shapes.get(shape) === true) return;
      // Errors are reported from the text itself, so their offsets are its own.
      const errors = syntaxErrors(text);
      shapes.set(shape, errors.length === 0);
      if (errors.length > 0) {
        failed++;
        console.log(`${where} [${entry.endpoint} ${entry.db}]\n  ${entry.csl}`);
        errors.forEach((e) => console.log(`    error: ${e}`));
      }
    });
  }
  console.log(
    `${checked} commands checked, ${failed} with syntax errors (${shapes.size} distinct shapes parsed` +
      (refused > 0 ? `; ${refused} refused by kusto-sim's parser, not checked)` : ')'),
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
