// Writes an Azurite data folder holding one container of N small blobs named as
// benches/listing_plan.rs uploads them, so the --from-listing benchmark can run at 100,000
// blobs: uploading them one by one to LokiJS Azurite takes hours (every write scans the whole
// account; 40,000 took 28 minutes), writing its files directly takes seconds. Then checks,
// through Azurite's REST API, that a started Azurite serves exactly those blobs.
//
//   node scripts/azurite-preload.mjs write <dir> <container> <blobs> <days>
//   node scripts/azurite-preload.mjs check <container> <blobs> <days>
//       (check reads AZURITE_CONNECTION_STRING: lists the bench's table folder, compares
//       names and sizes with what `write` wrote, reads the first, a middle and the last blob)
//
// The folder is what `azurite --location <dir>` (no --inMemoryPersistence) loads at start-up.
// Read from Azurite 3.35.0 and LokiJS 1.5.12 (package-lock.json pins both), and checked
// against a folder Azurite itself saved after the bench uploaded 20 blobs:
//
// - <dir>/__azurite_db_blob__.json: the blob metadata, a LokiJS database saved as one JSON
//   document (serializationMethod "normal"). LokiBlobMetadataStore.init()
//   (azurite/dist/src/blob/persistence/LokiBlobMetadataStore.js) loads it when the file
//   exists and adds only the collections it lacks, so this file carries two:
//   `$CONTAINERS_COLLECTION$` (one document per container: accountName, name, properties
//   {etag, lastModified, leaseStatus, leaseState, hasImmutabilityPolicy, hasLegalHold}) and
//   `$BLOBS_COLLECTION$` (one document per blob: accountName, containerName, name, snapshot
//   "", isCommitted, deleted, properties as Azurite sets them on a block blob upload, and
//   persistency {id, offset, count}: where the bytes lie in an extent file).
// - LokiJS restores each collection from the fields Loki.prototype.loadJSONObject reads
//   (lokijs/src/lokijs.js): `data` as is, `maxId`, and its `binaryIndices` as saved, trusted
//   without a rebuild because Azurite's collections are adaptive (`adaptiveBinaryIndices`,
//   false when absent from the file). So the indices Azurite declares (accountName,
//   containerName, name, snapshot for blobs; accountName, name for containers) must be right:
//   each lists the document positions sorted by that field. Documents are written sorted by
//   blob name, which makes every index the identity. `disableChangesApi` and friends must be
//   written too: absent, LokiJS would turn the changes API on for the collection.
// - <dir>/__azurite_db_blob_extent__.json: LokiJS database of LokiExtentMetadataStore
//   (azurite/dist/src/common/persistence/LokiExtentMetadataStore.js), one `$EXTENTS_COLLECTION$`
//   document per extent file: id, locationId "Default", path, size. FSExtentStore.readExtent
//   (azurite/dist/src/common/persistence/FSExtentStore.js) looks a blob's persistency.id up
//   there and reads <dir>/__blobstorage__/<id> from offset to offset+count-1.
// - One extent file holds every blob's bytes, each at its own offset, as Azurite itself packs
//   uploads into shared extents. New writes never append to it: FSExtentStore opens fresh
//   extents (new ids) at each start. Azurite's garbage collector
//   (azurite/dist/src/blob/gc/BlobGCManager.js) deletes extents no blob refers to, at start-up
//   and every 10 minutes; this one is referred to by every blob.
//
// LokiJS reads the file into one string, so a folder Azurite can load stays under V8's string
// limit (~512 MB, about 500,000 of these blobs).
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What the bench uploads into every blob (benches/listing_plan.rs). */
export const BODY = Buffer.from('PAR1 not read by planning PAR1');
const ACCOUNT = 'devstoreaccount1';
const BLOB_DB = '__azurite_db_blob__.json';
const EXTENT_DB = '__azurite_db_blob_extent__.json';
const EXTENT_DIR = '__blobstorage__';
/** The table folder the bench lists: Layout::new("backup").table_data_dir(Sales, Events). */
const TABLE_DIR = 'backup/Sales/Events/';

/**
 * The bench's blob names, sorted as Azurite lists them: blob i lies in day folder
 * 2026 day-of-year 1 + i % days of the table folder.
 */
export function blobNames(blobs, days) {
  const names = [];
  for (let i = 0; i < blobs; i++) {
    const day = new Date(Date.UTC(2026, 0, 1 + (i % days)));
    const folder = day.toISOString().slice(0, 10).replaceAll('-', '');
    const part = String(i).padStart(8, '0');
    names.push(`${TABLE_DIR}${folder}/part-${part}-0f8b2c1e-5d2a-4c3b-9e7f-1a2b3c4d5e6f.parquet`);
  }
  // LokiJS orders non-numeric strings with `<`, as the default sort does.
  return names.sort();
}

/** A collection as LokiJS saves one of Azurite's, with only the fields its loader reads. */
function collection(name, data, indices) {
  const identity = data.map((_, k) => k);
  return {
    name,
    data,
    maxId: data.length,
    binaryIndices: Object.fromEntries(
      indices.map((field) => [field, { name: field, dirty: false, values: identity }]),
    ),
    adaptiveBinaryIndices: true,
    disableChangesApi: true,
    disableDeltaChangesApi: true,
    disableMeta: false,
    disableFreeze: true,
    transactional: false,
    asyncListeners: false,
    cloneObjects: false,
    cloneMethod: 'parse-stringify',
    autoupdate: false,
    changes: [],
    dirtyIds: [],
    transforms: {},
    uniqueNames: [],
    DynamicViews: [],
  };
}

function database(file, collections) {
  return JSON.stringify({ filename: file, collections, databaseVersion: 1.5, engineVersion: 1.5, throttledSaves: true });
}

/** An ETag in Azurite's shape (`"0x` and 15+ upper-case hex digits), distinct per blob. */
function etag(ms, k) {
  return `"0x${(BigInt(ms) * 70000n + BigInt(k)).toString(16).toUpperCase()}"`;
}

/** Writes the folder; refuses one that already holds Azurite's blob database. */
export function write({ dir, container, blobs, days, now = Date.now() }) {
  // The bench names day folders by day of year 2026 and refuses a 366th.
  if (!(days >= 1 && days <= 365)) throw new Error(`days must lie in 1..365, not ${days}`);
  const root = resolve(dir);
  if (existsSync(join(root, BLOB_DB))) throw new Error(`${root} already holds an Azurite blob database`);
  mkdirSync(join(root, EXTENT_DIR), { recursive: true });
  const extent = randomUUID();
  writeFileSync(join(root, EXTENT_DIR, extent), Buffer.alloc(blobs * BODY.length, BODY));

  const time = new Date(now).toISOString();
  const meta = () => ({ revision: 0, created: now, version: 0 });
  const md5 = { type: 'Buffer', data: [...createHash('md5').update(BODY).digest()] };
  const containerDoc = {
    accountName: ACCOUNT,
    name: container,
    properties: {
      etag: etag(now, 0),
      lastModified: time,
      leaseStatus: 'unlocked',
      leaseState: 'available',
      hasImmutabilityPolicy: false,
      hasLegalHold: false,
    },
    meta: meta(),
    $loki: 1,
  };
  const blobDocs = blobNames(blobs, days).map((name, k) => ({
    deleted: false,
    accountName: ACCOUNT,
    containerName: container,
    name,
    properties: {
      creationTime: time,
      lastModified: time,
      etag: etag(now, k + 1),
      contentLength: BODY.length,
      contentType: 'application/octet-stream',
      contentMD5: md5,
      blobType: 'BlockBlob',
      leaseStatus: 'unlocked',
      leaseState: 'available',
      serverEncrypted: true,
      accessTier: 'Hot',
      accessTierInferred: true,
      accessTierChangeTime: time,
    },
    snapshot: '',
    isCommitted: true,
    persistency: { id: extent, offset: k * BODY.length, count: BODY.length },
    meta: meta(),
    $loki: k + 1,
  }));
  writeFileSync(
    join(root, BLOB_DB),
    database(join(root, BLOB_DB), [
      collection('$CONTAINERS_COLLECTION$', [containerDoc], ['accountName', 'name']),
      collection('$BLOBS_COLLECTION$', blobDocs, ['accountName', 'containerName', 'name', 'snapshot']),
    ]),
  );
  const extentDoc = {
    id: extent,
    locationId: 'Default',
    path: extent,
    size: blobs * BODY.length,
    lastModifiedInMS: now,
    meta: meta(),
    $loki: 1,
  };
  writeFileSync(
    join(root, EXTENT_DB),
    database(join(root, EXTENT_DB), [collection('$EXTENTS_COLLECTION$', [extentDoc], ['id'])]),
  );
}

/** A client of one account's blob endpoint, signing with Shared Key as Azurite checks it. */
function client(connectionString) {
  const parts = Object.fromEntries(
    connectionString
      .split(';')
      .filter(Boolean)
      .map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]),
  );
  const key = Buffer.from(parts.AccountKey, 'base64');
  return async (path, query = {}) => {
    const url = new URL(`${parts.BlobEndpoint.replace(/\/$/, '')}/${path}`);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    const headers = { 'x-ms-date': new Date().toUTCString(), 'x-ms-version': '2021-08-06' };
    const resource = [`/${parts.AccountName}${url.pathname}`]
      .concat(Object.keys(query).sort().map((k) => `${k}:${query[k]}`))
      .join('\n');
    const signed = ['GET', ...Array(11).fill(''), ...Object.keys(headers).sort().map((h) => `${h}:${headers[h]}`), resource].join('\n');
    const signature = createHmac('sha256', key).update(signed, 'utf8').digest('base64');
    const res = await fetch(url, { headers: { ...headers, authorization: `SharedKey ${parts.AccountName}:${signature}` } });
    const body = Buffer.from(await res.arrayBuffer());
    if (!res.ok) throw new Error(`GET ${url.pathname}: ${res.status} ${body.toString().slice(0, 300)}`);
    return body;
  };
}

/**
 * Lists the table folder through Azurite, as the bench does, and compares it with what
 * `write` wrote: every name in order, every size, and the bytes of the first, a middle and the last blob. Returns the
 * number of blobs and pages listed; throws at the first difference.
 */
export async function check({ connectionString, container, blobs, days, pageSize = 5000 }) {
  const get = client(connectionString);
  const want = blobNames(blobs, days);
  let listed = 0;
  let pages = 0;
  let marker = '';
  do {
    const query = { comp: 'list', maxresults: String(pageSize), prefix: TABLE_DIR, restype: 'container' };
    if (marker) query.marker = marker;
    const xml = (await get(container, query)).toString();
    pages++;
    for (const [, item] of xml.matchAll(/<Blob>(.*?)<\/Blob>/gs)) {
      const name = /<Name>(.*?)<\/Name>/s.exec(item)[1];
      const size = Number(/<Content-Length>(\d+)<\/Content-Length>/.exec(item)[1]);
      if (name !== want[listed]) throw new Error(`blob ${listed} is ${name}, expected ${want[listed]}`);
      if (size !== BODY.length) throw new Error(`${name} holds ${size} bytes, expected ${BODY.length}`);
      listed++;
    }
    marker = /<NextMarker>(.*?)<\/NextMarker>/s.exec(xml)?.[1] ?? '';
  } while (marker);
  if (listed !== blobs) throw new Error(`listed ${listed} blobs, expected ${blobs}`);
  for (const k of new Set([0, Math.floor(blobs / 2), blobs - 1])) {
    const bytes = await get(`${container}/${want[k]}`);
    if (!bytes.equals(BODY)) throw new Error(`${want[k]} reads ${JSON.stringify(bytes.toString())}`);
  }
  return { listed, pages };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [command, ...args] = process.argv.slice(2);
  const count = (s) => {
    if (!/^[1-9]\d*$/.test(s ?? '')) throw new Error(`not a positive count: ${s}`);
    return Number(s);
  };
  const started = performance.now();
  if (command === 'write' && args.length === 4) {
    const [dir, container, blobs, days] = args;
    write({ dir, container, blobs: count(blobs), days: count(days) });
    const took = (performance.now() - started) / 1000;
    console.log(`preload: ${blobs} blobs in ${days} day folders written to ${dir} in ${took.toFixed(1)} s`);
  } else if (command === 'check' && args.length === 3 && process.env.AZURITE_CONNECTION_STRING) {
    const [container, blobs, days] = args;
    const connectionString = process.env.AZURITE_CONNECTION_STRING;
    const { listed, pages } = await check({ connectionString, container, blobs: count(blobs), days: count(days) }).catch(
      (e) => {
        console.error(`preload check failed: ${e.message}`);
        process.exit(1);
      },
    );
    const took = (performance.now() - started) / 1000;
    console.log(`preload check: Azurite lists ${listed} blobs in ${pages} pages as written, contents read back (${took.toFixed(1)} s)`);
  } else {
    console.error('usage: azurite-preload.mjs write <dir> <container> <blobs> <days>');
    console.error('       AZURITE_CONNECTION_STRING=... azurite-preload.mjs check <container> <blobs> <days>');
    process.exit(2);
  }
}
