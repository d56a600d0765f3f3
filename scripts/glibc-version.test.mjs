// The ELF reader behind the glibc floor check: a hand-built ELF with known version needs,
// a real binary against binutils' own reading of it, and refusals of what is not an ELF file.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { compare, newestGlibc, versionNeeds } from './glibc-version.mjs';

/** A minimal 64-bit ELF: section headers [null, .dynstr, .gnu.version_r] and nothing else. */
function elfNeeding(libs) {
  const names = ['\0'];
  const offsetOf = (s) => {
    const at = names.join('').length;
    names.push(`${s}\0`);
    return at;
  };
  const entries = [];
  for (const [file, versions] of libs) {
    const vn = Buffer.alloc(16 + 16 * versions.length);
    vn.writeUInt16LE(1, 0);
    vn.writeUInt16LE(versions.length, 2);
    vn.writeUInt32LE(offsetOf(file), 4);
    vn.writeUInt32LE(16, 8);
    versions.forEach((v, k) => {
      const aux = 16 + 16 * k;
      vn.writeUInt32LE(offsetOf(v), aux + 8);
      vn.writeUInt32LE(k + 1 < versions.length ? 16 : 0, aux + 12);
    });
    entries.push(vn);
  }
  entries.forEach((vn, i) => vn.writeUInt32LE(i + 1 < entries.length ? vn.length : 0, 12));
  const strtab = Buffer.from(names.join(''), 'latin1');
  const verneed = Buffer.concat(entries);
  const strAt = 64;
  const vnAt = strAt + strtab.length;
  const shAt = vnAt + verneed.length;
  const header = Buffer.alloc(64);
  header.writeUInt32BE(0x7f454c46, 0);
  header[4] = 2;
  header[5] = 1;
  header.writeBigUInt64LE(BigInt(shAt), 0x28);
  header.writeUInt16LE(64, 0x3a);
  header.writeUInt16LE(3, 0x3c);
  const sh = Buffer.alloc(64 * 3);
  const section = (i, type, offset, size, link, info) => {
    sh.writeUInt32LE(type, 64 * i + 4);
    sh.writeBigUInt64LE(BigInt(offset), 64 * i + 24);
    sh.writeBigUInt64LE(BigInt(size), 64 * i + 32);
    sh.writeUInt32LE(link, 64 * i + 40);
    sh.writeUInt32LE(info, 64 * i + 44);
  };
  section(1, 3, strAt, strtab.length, 0, 0);
  section(2, 0x6ffffffe, vnAt, verneed.length, 1, entries.length);
  return Buffer.concat([header, strtab, verneed, sh]);
}

test('the newest GLIBC_x.y among every library, numerically, ignoring other names', () => {
  const elf = elfNeeding([
    ['libgcc_s.so.1', ['GCC_3.0', 'GCC_4.2.0']],
    ['libc.so.6', ['GLIBC_2.3', 'GLIBC_2.29', 'GLIBC_2.2.5', 'GLIBC_PRIVATE']],
    ['libm.so.6', ['GLIBC_2.17']],
  ]);
  assert.deepEqual(versionNeeds(elf).map((n) => n.version), [
    'GCC_3.0', 'GCC_4.2.0', 'GLIBC_2.3', 'GLIBC_2.29', 'GLIBC_2.2.5', 'GLIBC_PRIVATE', 'GLIBC_2.17',
  ]);
  assert.deepEqual(newestGlibc(elf), [2, 29]);
  assert.equal(newestGlibc(elfNeeding([['libgcc_s.so.1', ['GCC_3.0']]])), null);
});

test('versions compare as numbers, not text', () => {
  assert.ok(compare([2, 28], [2, 3]) > 0);
  assert.ok(compare([2, 2, 5], [2, 2]) > 0);
  assert.equal(compare([2, 28], [2, 28]), 0);
});

test('what is not a 64-bit ELF file is refused with a reason', () => {
  assert.throws(() => versionNeeds(Buffer.from('#!/bin/sh\necho hi\n'.repeat(8))), /not an ELF file/);
  const elf32 = elfNeeding([['libc.so.6', ['GLIBC_2.0']]]);
  elf32[4] = 1;
  assert.throws(() => versionNeeds(elf32), /64-bit/);
  const truncated = elfNeeding([['libc.so.6', ['GLIBC_2.0']]]).subarray(0, 100);
  assert.throws(() => versionNeeds(truncated), /past the end/);
});

test('a real binary reads as binutils reads it', (t) => {
  let dump;
  try {
    dump = execFileSync('objdump', ['-p', process.execPath], { encoding: 'utf8', maxBuffer: 1 << 26 });
  } catch {
    t.skip('objdump (binutils) is not installed');
    return;
  }
  // objdump -p prints "Version References:" then "  required from libc.so.6:" and
  // "    0x... 0x.. 03 GLIBC_2.17" lines.
  const section = dump.split('Version References:')[1] ?? '';
  const fromObjdump = [...section.matchAll(/^\s+0x[0-9a-f]+ 0x[0-9a-f]+ \d+ (\S+)$/gm)].map((m) => m[1]);
  assert.ok(fromObjdump.length > 0, 'objdump lists version references of node');
  const ours = versionNeeds(readFileSync(process.execPath)).map((n) => n.version);
  assert.deepEqual([...ours].sort(), [...fromObjdump].sort());
});
