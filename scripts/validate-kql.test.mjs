// The validator must accept what the product sends and reject broken commands, so it
// can't silently pass everything. Run: node --test scripts/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const script = new URL('./validate-kql.mjs', import.meta.url).pathname;

function run(entries) {
  const dir = mkdtempSync(join(tmpdir(), 'validate-kql-'));
  const file = join(dir, 'commands.jsonl');
  writeFileSync(file, entries.map((e) => JSON.stringify(e)).join('\n') + '\n');
  return spawnSync(process.execPath, [script, file], { encoding: 'utf8' });
}

const good = [
  { endpoint: 'mgmt', db: 'db', csl: ".create-or-alter external table ['bk_T'] (['a']:datetime, ['b']:long) kind=storage partition by (['Day']:datetime = startofday(['a'])) pathformat = (datetime_pattern(\"yyyyMMdd\", ['Day'])) dataformat = parquet (h@'http://127.0.0.1:10000/devstoreaccount1/c/p;managed_identity=system') with (folder='adxbackup', fileExtension='.parquet')" },
  { endpoint: 'mgmt', db: 'db', csl: ".create-or-alter continuous-export ['ce_T'] over (['T']) to table ['bk_T'] with (intervalBetweenRuns=5m, forcedLatency=1m, sizeLimit=104857600) <| ['T']" },
  { endpoint: 'mgmt', db: 'db', csl: ".show continuous-export ['ce_T'] exported-artifacts | where Timestamp > datetime(2026-01-01T00:00:00.0000000Z)" },
  { endpoint: 'query', db: 'db', csl: "['T'] | where cursor_before_or_at('123') | summarize count() by bin(ingestion_time(), 1h)" },
];

test('known-good commands pass', () => {
  const r = run(good);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /4 commands checked, 0 with syntax errors/);
});

test('a syntax error fails and is printed with its diagnostics', () => {
  const r = run([...good, { endpoint: 'mgmt', db: 'db', csl: '.create tabel T (a:long)' }, { endpoint: 'query', db: 'db', csl: 'T | where a ==' }]);
  assert.equal(r.status, 1);
  assert.match(r.stdout, /\.create tabel T/);
  assert.match(r.stdout, /error: /);
  assert.match(r.stdout, /6 commands checked, 2 with syntax errors/);
});

test('no files is a usage error', () => {
  const r = spawnSync(process.execPath, [script], { encoding: 'utf8' });
  assert.equal(r.status, 2);
});

test('an empty command log fails: zero commands checked is not a pass', () => {
  const r = run([]);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /0 commands checked/);
  assert.match(r.stdout, /nothing was validated/);
});

test('an entry without command text fails instead of parsing as an empty, valid query', () => {
  for (const entry of [{ endpoint: 'mgmt', db: 'db' }, { endpoint: 'mgmt', db: 'db', csl: '' }, { endpoint: 'mgmt', db: 'db', csl: 42 }, null]) {
    const r = run([...good, entry]);
    assert.equal(r.status, 1, `${JSON.stringify(entry)}: ${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /entry without command text/);
    assert.match(r.stdout, /4 commands checked, 1 with syntax errors/);
  }
});

test('texts kusto-sim refused are counted, not checked; accepted ones still are', () => {
  const refused = { endpoint: 'mgmt', db: 'db', csl: ".show tables | where Name == 'a\\q'", refused: 'Syntax error: unknown escape' };
  const r = run([...good, refused, { endpoint: 'mgmt', db: 'db', csl: '.create tabel T (a:long)' }]);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /5 commands checked, 1 with syntax errors \(\d+ distinct shapes parsed; 1 refused by kusto-sim's parser, not checked\)/);
  const onlyRefused = run([refused]);
  assert.equal(onlyRefused.status, 1, 'a log of refused texts only checked nothing');
});

test('inline ingestion data is cut to its first line; the command itself is still checked', async () => {
  const { withoutInlineData } = await import('./validate-kql.mjs');
  const rows = Array.from({ length: 2000 }, (_, i) => `2026-01-01T00:00:00Z,${i},"row ${i}"`).join('\n');
  assert.equal(withoutInlineData(`.ingest inline into table T <|\n${rows}`), '.ingest inline into table T <|\n2026-01-01T00:00:00Z,0,"row 0"');
  assert.equal(withoutInlineData(".show tables"), ".show tables");
  const r = run([...good, { endpoint: 'mgmt', db: 'db', csl: `.ingest inline intoo table T <|\n${rows}` }]);
  assert.equal(r.status, 1, 'a broken command head still fails');
  assert.match(r.stdout, /5 commands checked, 1 with syntax errors/);
});

test('texts differing only in names and plain strings are parsed once, and still counted', async () => {
  const { syntaxShape } = await import('./validate-kql.mjs');
  const table = (i) => ({ endpoint: 'mgmt', db: 'db', csl: `.show table ['T${String(i).padStart(5, '0')}'] details | where Name == 'T${i}'` });
  const r = run(Array.from({ length: 50 }, (_, i) => table(i)));
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /50 commands checked, 0 with syntax errors \(1 distinct shapes parsed\)/);
  assert.equal(syntaxShape(".create table T00042 (a:int64, b:long)"), ".create table T0 (a:int64, b:long)");
  assert.equal(syntaxShape("T | where s == 'it\\'s' and t == \"q\""), "T | where s == 'it\\'s' and t == \"x\"");
  assert.equal(syntaxShape("T | where s == 'open"), "T | where s == 'open", 'an unclosed string keeps its text');
});

test('a broken text never hides behind a good one of a similar look', () => {
  const goodEscape = { endpoint: 'query', db: 'db', csl: "T | where a == 'x\\'y'" };
  const cases = [
    "T | where a == 'x'y'", // the quote the good text escaped, unescaped
    ".create tabel T00001 (a:long)", // a misspelt keyword beside a numbered name
    "T | where a == 'x' and", // a dangling operator after a plain string
  ];
  for (const bad of cases) {
    const r = run([goodEscape, ...good, { endpoint: 'query', db: 'db', csl: bad }]);
    assert.equal(r.status, 1, `${bad}: ${r.stdout}`);
    assert.match(r.stdout, /6 commands checked, 1 with syntax errors/);
  }
});
