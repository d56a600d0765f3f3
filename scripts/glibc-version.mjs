// The newest glibc symbol version an ELF binary needs, read from its version-needs section
// (.gnu.version_r, SHT_GNU_verneed): the dynamic loader refuses to start the binary on a
// system whose glibc is older than any GLIBC_x.y listed there.
// Usage: node scripts/glibc-version.mjs <binary> [floor]   prints e.g. `GLIBC_2.28`; with a
// floor (e.g. 2.28) exits 1 when the binary needs a newer glibc than the floor.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const SHT_GNU_VERNEED = 0x6ffffffe;

/** Every version name (`GLIBC_2.17`, `GCC_3.0`, ...) the binary needs, by library. */
export function versionNeeds(buf) {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46) throw new Error('not an ELF file');
  if (buf[4] !== 2 || buf[5] !== 1) throw new Error('only 64-bit little-endian ELF is read');
  const shoff = Number(buf.readBigUInt64LE(0x28));
  const shentsize = buf.readUInt16LE(0x3a);
  const shnum = buf.readUInt16LE(0x3c);
  if (shoff === 0 || shnum === 0) throw new Error('the ELF file has no section headers');
  const section = (i) => {
    const at = shoff + i * shentsize;
    if (at + 64 > buf.length) throw new Error(`section header ${i} lies past the end of the file`);
    return {
      type: buf.readUInt32LE(at + 4),
      offset: Number(buf.readBigUInt64LE(at + 24)),
      size: Number(buf.readBigUInt64LE(at + 32)),
      link: buf.readUInt32LE(at + 40),
      info: buf.readUInt32LE(at + 44),
    };
  };
  const cstr = (at) => {
    const end = buf.indexOf(0, at);
    if (end < 0) throw new Error(`unterminated string at ${at}`);
    return buf.toString('latin1', at, end);
  };
  const needs = [];
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    if (s.type !== SHT_GNU_VERNEED) continue;
    const strtab = section(s.link).offset;
    // s.info entries, each with vn_cnt aux entries, chained by relative offsets.
    let entry = s.offset;
    for (let n = 0; n < s.info; n++) {
      const cnt = buf.readUInt16LE(entry + 2);
      const file = cstr(strtab + buf.readUInt32LE(entry + 4));
      let aux = entry + buf.readUInt32LE(entry + 8);
      for (let k = 0; k < cnt; k++) {
        needs.push({ file, version: cstr(strtab + buf.readUInt32LE(aux + 8)) });
        aux += buf.readUInt32LE(aux + 12);
      }
      entry += buf.readUInt32LE(entry + 12);
    }
  }
  return needs;
}

/** `GLIBC_2.28` → [2, 28]; anything else (GLIBC_PRIVATE, GCC_3.0) → null. */
export function glibcVersion(name) {
  const m = /^GLIBC_(\d+)\.(\d+)(?:\.(\d+))?$/.exec(name);
  return m ? m.slice(1).filter(Boolean).map(Number) : null;
}

export function compare(a, b) {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** The newest GLIBC_x.y the binary needs, as [major, minor(, patch)], or null if none. */
export function newestGlibc(buf) {
  let newest = null;
  for (const { version } of versionNeeds(buf)) {
    const v = glibcVersion(version);
    if (v && (!newest || compare(v, newest) > 0)) newest = v;
  }
  return newest;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [binary, floor] = process.argv.slice(2);
  if (!binary) {
    console.error('usage: node scripts/glibc-version.mjs <binary> [floor, e.g. 2.28]');
    process.exit(2);
  }
  const newest = newestGlibc(readFileSync(binary));
  const shown = newest ? `GLIBC_${newest.join('.')}` : 'no GLIBC_x.y version';
  console.log(`${binary} needs ${shown}`);
  if (floor && newest && compare(newest, floor.split('.').map(Number)) > 0) {
    console.error(`${binary} needs ${shown}, newer than the floor GLIBC_${floor}: it would not start on the oldest supported Functions image (docs/deploy.md)`);
    process.exit(1);
  }
}
