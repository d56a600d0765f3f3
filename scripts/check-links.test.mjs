// The link check must pass on this repository and fail on each kind of escape, so it can't
// silently pass everything. Each fixture is a throwaway git repository. Run: node --test scripts/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { anchorsOf, slug } from './check-links.mjs';

const script = fileURLToPath(new URL('./check-links.mjs', import.meta.url));
const repoRoot = join(dirname(script), '..');

/** A git repository holding `files` (all tracked), inside a parent folder; returns its path. */
function repo(files, { untracked = {}, outside = {} } = {}) {
  const parent = mkdtempSync(join(tmpdir(), 'check-links-'));
  const root = join(parent, 'repo');
  const write = (base, entries) => {
    for (const [path, text] of Object.entries(entries)) {
      mkdirSync(dirname(join(base, path)), { recursive: true });
      writeFileSync(join(base, path), text);
    }
  };
  mkdirSync(root);
  write(root, files);
  write(parent, outside);
  execFileSync('git', ['init', '-q'], { cwd: root });
  execFileSync('git', ['add', '-A'], { cwd: root });
  write(root, untracked);
  return root;
}

function check(root) {
  return spawnSync(process.execPath, [script, root], { encoding: 'utf8' });
}

const DOCS = {
  'docs/kusto.md': '# Kusto facts\n\n## Errors\n\nText.\n\n## V1 results\n\nSee §errors.\n',
  'docs/design.md': '# Design\n\nSee [the Kusto facts](kusto.md#v1-results) and [the root](../README.md).\n',
};

const GOOD = {
  ...DOCS,
  'README.md': [
    '# Project',
    '',
    'Architecture: [docs/design.md](docs/design.md), folder [docs](docs/), [errors](docs/kusto.md#errors).',
    'External: [Kusto](https://learn.microsoft.com/kusto/) and [mail](mailto:a@example.com); [top](#project).',
    '[ref]: docs/kusto.md#errors',
    '```',
    '[not a link](missing.md)',
    '```',
    'Inline code is not a link: `[x](missing.md)`.',
  ].join('\n'),
  'src/a.rs': '//! Kusto reads bools as 0/1 (docs/kusto.md §v1-results, §errors).\n',
};

test('this repository passes, and something was checked', () => {
  const r = check(repoRoot);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const m = /(\d+) files checked \((\d+) markdown\), 0 problem/.exec(r.stdout);
  assert.ok(m, r.stdout);
  assert.ok(Number(m[1]) > 10 && Number(m[2]) >= 3, r.stdout);
});

test('a fixture with only good links and citations passes', () => {
  const r = check(repo(GOOD));
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /4 files checked \(3 markdown\), 0 problem/);
});

test('a broken link fails, naming file and line', () => {
  const r = check(repo({ ...GOOD, 'docs/guide.md': '# Guide\n\nSee\n[the plan](plan.md).\n' }));
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stdout, /^docs\/guide\.md:4: link plan\.md: docs\/plan\.md does not exist$/m);
});

test('a link out of the repository fails even when its target exists', () => {
  const r = check(repo({ ...GOOD, 'notes.md': '# Notes\n[brief](../brief.md)\n' }, { outside: { 'brief.md': '# Brief\n' } }));
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stdout, /^notes\.md:2: link \.\.\/brief\.md: points outside the repository$/m);
});

test('a link to a file git does not track fails', () => {
  const r = check(repo({ ...GOOD, 'notes.md': '# Notes\n[draft](draft.md)\n' }, { untracked: { 'draft.md': '# Draft\n' } }));
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stdout, /^notes\.md:2: link draft\.md: draft\.md exists but is not tracked by git$/m);
});

test('a link to a missing heading fails', () => {
  const r = check(repo({ ...GOOD, 'notes.md': '# Notes\n\n[x](docs/kusto.md#retries) [y](#nowhere)\n' }));
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stdout, /^notes\.md:3: link docs\/kusto\.md#retries: docs\/kusto\.md has no heading #retries$/m);
  assert.match(r.stdout, /^notes\.md:3: link #nowhere: notes\.md has no heading #nowhere$/m);
});

test('mentions of the material outside the repository fail in any tracked file', () => {
  const r = check(repo({
    ...GOOD,
    'src/b.rs': '// as measured (see ../shared/notes)\n',
    'scripts/run.sh': '# flags from reference/functions-host.md\n',
    'Cargo.toml': '# see DESIGN.md\n',
  }));
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stdout, /^src\/b\.rs:1: mentions \.\.\/shared/m);
  assert.match(r.stdout, /^scripts\/run\.sh:1: mentions reference\/functions-host\.md/m);
  assert.match(r.stdout, /^Cargo\.toml:1: mentions DESIGN\.md/m);
});

test('a section citation must name a tracked doc and one of its headings', () => {
  const r = check(repo({
    ...GOOD,
    'src/c.rs': [
      '// the host capture (functions-host.md §A1)',
      '// V1 tables (docs/kusto.md §v1-results, §v9)',
      '/// §1.5, the reference example',
    ].join('\n'),
  }));
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stdout, /^src\/c\.rs:1: cites functions-host\.md §A1, which is not a tracked file/m);
  assert.match(r.stdout, /^src\/c\.rs:2: cites docs\/kusto\.md §v9, which has no such heading$/m);
  assert.doesNotMatch(r.stdout, /§v1-results/);
  assert.match(r.stdout, /^src\/c\.rs:3: bare section citation §1\.5/m);
});

test('an empty repository fails: nothing checked is not a pass', () => {
  const r = check(repo({}));
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stdout, /0 files checked/);
});

test('anchors follow GitHub: lower case, punctuation dropped, repeats numbered', () => {
  assert.equal(slug('Queue trigger: retries & poison'), 'queue-trigger-retries--poison');
  assert.equal(slug('`$state` and `__DEFAULT_PARTITION__`'), 'state-and-__default_partition__');
  const anchors = anchorsOf('# A\n## Notes\n## Notes\n```\n## Not a heading\n```\n<a id="kept"></a>\n');
  assert.deepEqual([...anchors].sort(), ['a', 'kept', 'notes', 'notes-1']);
});
