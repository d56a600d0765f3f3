// The preload against the Azurite the repo pins: a written folder, started with Azurite on a
// port of its own, lists page by page exactly as written and reads back the bench's bytes;
// the check refuses a listing that differs; LokiJS (Azurite's copy) finds every index of the
// written databases valid; a folder Azurite already uses is never overwritten.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { blobNames, check, write } from './azurite-preload.mjs';

const AZURITE_BLOB = new URL('../node_modules/azurite/dist/src/blob/main.js', import.meta.url);
// The emulator's well-known development key (public; scripts/azurite-env.sh).
const KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

/** Azurite's blob service on `dir`, on a port the system picks; resolves with its endpoint. */
function startAzurite(dir) {
  const args = ['--silent', '--disableTelemetry', '--skipApiVersionCheck', '--blobHost', '127.0.0.1'];
  const child = spawn(process.execPath, [AZURITE_BLOB.pathname, ...args, '--blobPort', '0', '--location', dir]);
  const endpoint = new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const port = /listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1];
      if (port) resolve(`http://127.0.0.1:${port}/devstoreaccount1`);
    });
    child.on('exit', (code) => reject(new Error(`azurite exited (${code}): ${out}`)));
  });
  return { child, endpoint };
}

test('Azurite serves a written folder exactly as written', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'azurite-preload-'));
  write({ dir, container: 'preloaded', blobs: 1234, days: 7 });
  const { child, endpoint } = startAzurite(dir);
  t.after(async () => {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    rmSync(dir, { recursive: true, force: true });
  });
  const connectionString = `AccountName=devstoreaccount1;AccountKey=${KEY};BlobEndpoint=${await endpoint}`;

  const seen = await check({ connectionString, container: 'preloaded', blobs: 1234, days: 7, pageSize: 500 });
  assert.deepEqual(seen, { listed: 1234, pages: 3 });
  // The bench's names for other counts differ, so a listing of these blobs fails the check.
  await assert.rejects(check({ connectionString, container: 'preloaded', blobs: 1235, days: 7 }), /expected/);
  await assert.rejects(check({ connectionString, container: 'preloaded', blobs: 1234, days: 8 }), /expected/);
});

// Azurite's collections keep adaptive indices, trusted as loaded: a wrong one would go
// unnoticed by a listing and misplace every later insert.
test('LokiJS loads the databases as Azurite configures them, every index valid', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'azurite-preload-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  write({ dir, container: 'preloaded', blobs: 500, days: 9 });
  const Loki = createRequire(AZURITE_BLOB)('lokijs');
  for (const file of ['__azurite_db_blob__.json', '__azurite_db_blob_extent__.json']) {
    const db = new Loki(file);
    db.loadJSON(readFileSync(join(dir, file), 'utf8'));
    for (const coll of db.collections) {
      assert.equal(coll.adaptiveBinaryIndices, true, coll.name);
      assert.equal(coll.disableChangesApi, true, coll.name);
      assert.deepEqual(coll.checkAllIndexes(), [], coll.name);
    }
  }
});

test('names are the bench upload names, in listing order', () => {
  const names = blobNames(3, 2);
  assert.deepEqual(names, [
    'backup/Sales/Events/20260101/part-00000000-0f8b2c1e-5d2a-4c3b-9e7f-1a2b3c4d5e6f.parquet',
    'backup/Sales/Events/20260101/part-00000002-0f8b2c1e-5d2a-4c3b-9e7f-1a2b3c4d5e6f.parquet',
    'backup/Sales/Events/20260102/part-00000001-0f8b2c1e-5d2a-4c3b-9e7f-1a2b3c4d5e6f.parquet',
  ]);
  assert.match(blobNames(365, 365).at(-1), /\/20261231\/part-00000364-/);
});

test('refuses a folder that already holds a blob database, and days past 2026', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'azurite-preload-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  write({ dir, container: 'preloaded', blobs: 1, days: 1 });
  assert.throws(() => write({ dir, container: 'preloaded', blobs: 1, days: 1 }), /already holds/);
  assert.throws(() => write({ dir: join(dir, 'other'), container: 'c', blobs: 1, days: 366 }), /1\.\.365/);
});
