// The repository stands on its own: nothing tracked may point at a file a user of the project
// does not have. Checks every file `git ls-files` lists:
//   - in markdown, every relative link ([x](path), [x](path#anchor), [x]: path) must reach a
//     tracked file or folder inside the repository, and its #anchor a heading of that file;
//   - everywhere, a section citation (`docs/kusto.md §errors`) must name a tracked markdown
//     file and one of its headings; a bare `§x` is only allowed inside markdown, for its own
//     headings;
//   - nowhere may a file mention the read-only material the project was started from (the
//     FORBIDDEN list below); the repository's own copies live in docs/.
// Usage: node scripts/check-links.mjs [repository root]   (exit 1 on any problem, or if it
// found nothing to check). Run by `make test` through `node --test scripts/`.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, posix, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// This checker and its tests name the forbidden strings on purpose.
const SELF = new Set(['scripts/check-links.mjs', 'scripts/check-links.test.mjs']);
// Generated, large, and only package names and URLs.
const SKIP = new Set(['package-lock.json']);

const FORBIDDEN = [
  { text: '../shared', why: 'a folder outside the repository' },
  { text: '/work/shared', why: 'a folder outside the repository' },
  { text: 'reference/kusto.md', why: 'a reference users do not have; cite docs/kusto.md' },
  { text: 'reference/functions-host.md', why: 'a reference users do not have; cite docs/functions-host.md' },
  { text: 'style-anchors.md', why: 'a reference users do not have' },
  { text: 'DESIGN.md', why: 'a brief users do not have; the architecture is docs/design.md' },
];

const EXTERNAL = /^(?:[a-z][a-z0-9+.-]*:|\/\/)/i;
const INLINE_LINK = /!?\[(?:[^\]\\]|\\.)*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/g;
const REFERENCE_DEF = /^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)/;
// `path.md §a, §b` or `path.md §a–§b`: a file, then one or more section names.
const CITATION = /([\w./-]+\.md)((?:\s*(?:,|and|–|-)?\s*§[\w.-]*\w)+)/g;
const SECTION = /§([\w.-]*\w)/g;

/** Every file git tracks under `root`, as repository-relative POSIX paths. */
export function trackedFiles(root) {
  const out = execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8' });
  return out.split('\0').filter(Boolean);
}

/** The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens. */
export function slug(heading) {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** The anchors a markdown text offers: heading slugs (numbered when repeated) and explicit ids. */
export function anchorsOf(text) {
  const anchors = new Set();
  const seen = new Map();
  for (const { line } of proseLines(text)) {
    const heading = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading) {
      const base = slug(heading[1]);
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      anchors.add(n === 0 ? base : `${base}-${n}`);
    }
    for (const m of line.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(m[1]);
  }
  return anchors;
}

/** Lines outside fenced code blocks, with inline code spans removed, numbered from 1. */
function proseLines(text) {
  const out = [];
  let fence = null;
  text.split('\n').forEach((raw, i) => {
    const marker = /^ {0,3}(`{3,}|~{3,})/.exec(raw);
    if (marker) {
      if (fence === null) fence = marker[1][0];
      else if (marker[1][0] === fence) fence = null;
      return;
    }
    if (fence === null) out.push({ n: i + 1, line: raw.replace(/(`+)[^`]*?\1/g, '') });
  });
  return out;
}

function linkTargets(line) {
  const targets = [...line.matchAll(INLINE_LINK)].map((m) => m[1]);
  const def = REFERENCE_DEF.exec(line);
  if (def) targets.push(def[1]);
  return targets.map((t) => t.replace(/^<|>$/g, ''));
}

/** Checks one repository; returns how many files and markdown files it read, and the problems. */
export function checkRepo(root) {
  const files = trackedFiles(root).filter((f) => !SKIP.has(f) && existsSync(join(root, f)));
  const tracked = new Set(files);
  const texts = new Map();
  const read = (f) => {
    if (!texts.has(f)) texts.set(f, readFileSync(join(root, f), 'utf8'));
    return texts.get(f);
  };
  const anchorCache = new Map();
  const anchors = (f) => {
    if (!anchorCache.has(f)) anchorCache.set(f, anchorsOf(read(f)));
    return anchorCache.get(f);
  };
  const isTrackedDir = (rel) => files.some((f) => f.startsWith(`${rel}/`));
  const problems = [];
  const report = (file, line, message) => problems.push({ file, line, message });

  // Resolves `target` (already decoded) as seen from `file`; returns the repo path or a problem.
  const locate = (file, target) => {
    const abs = target.startsWith('/') ? join(root, target) : resolve(root, dirname(file), target);
    const rel = relative(root, abs).split('\\').join('/');
    if (rel.startsWith('..') || isAbsolute(rel)) return { problem: 'points outside the repository' };
    const clean = posix.normalize(rel).replace(/\/$/, '') || '.';
    if (tracked.has(clean) || clean === '.' || isTrackedDir(clean)) return { path: clean };
    if (existsSync(abs)) return { problem: `${clean} exists but is not tracked by git` };
    return { problem: `${clean} does not exist` };
  };

  let checked = 0;
  let markdown = 0;
  for (const file of files) {
    if (SELF.has(file)) continue;
    const text = read(file);
    if (text.includes('\0')) continue;
    checked += 1;
    const isMarkdown = file.endsWith('.md');
    if (isMarkdown) markdown += 1;
    const lines = text.split('\n');
    lines.forEach((line, i) => {
      for (const { text: bad, why } of FORBIDDEN) {
        if (line.includes(bad)) report(file, i + 1, `mentions ${bad}: ${why}`);
      }
    });
    checkCitations(file, lines, isMarkdown, locate, anchors, tracked, report);
    if (isMarkdown) checkLinks(file, text, locate, anchors, tracked, report);
  }
  return { checked, markdown, problems };
}

function checkLinks(file, text, locate, anchors, tracked, report) {
  for (const { n, line } of proseLines(text)) {
    for (const target of linkTargets(line)) {
      if (EXTERNAL.test(target)) continue;
      const [rawPath, anchor = ''] = target.split('#', 2);
      let path;
      try {
        path = decodeURIComponent(rawPath);
      } catch {
        report(file, n, `link ${target} is not a valid URL path`);
        continue;
      }
      const found = path === '' ? { path: file } : locate(file, path);
      if (found.problem) {
        report(file, n, `link ${target}: ${found.problem}`);
      } else if (anchor && found.path.endsWith('.md') && tracked.has(found.path)) {
        if (!anchors(found.path).has(decodeURIComponent(anchor))) {
          report(file, n, `link ${target}: ${found.path} has no heading #${anchor}`);
        }
      }
    }
  }
}

function checkCitations(file, lines, isMarkdown, locate, anchors, tracked, report) {
  lines.forEach((line, i) => {
    const covered = [];
    for (const m of line.matchAll(CITATION)) {
      covered.push([m.index, m.index + m[0].length]);
      const cited = m[1];
      const sections = [...m[2].matchAll(SECTION)].map((s) => s[1]);
      const found = [cited, `/${cited}`].map((p) => locate(file, p)).find((r) => r.path && tracked.has(r.path));
      if (!found) {
        report(file, i + 1, `cites ${cited} §${sections[0]}, which is not a tracked file of the repository (cite docs/...)`);
        continue;
      }
      for (const s of sections) {
        if (!anchors(found.path).has(s)) report(file, i + 1, `cites ${found.path} §${s}, which has no such heading`);
      }
    }
    for (const s of line.matchAll(SECTION)) {
      if (covered.some(([a, b]) => s.index >= a && s.index < b)) continue;
      if (!isMarkdown) {
        report(file, i + 1, `bare section citation §${s[1]}: name the file, e.g. docs/kusto.md §${s[1]}`);
      } else if (!anchors(file).has(s[1])) {
        report(file, i + 1, `§${s[1]} is not a heading of this file`);
      }
    }
  });
}

function main() {
  const here = dirname(fileURLToPath(import.meta.url));
  const root = resolve(process.argv[2] ?? join(here, '..'));
  const { checked, markdown, problems } = checkRepo(root);
  for (const p of problems) console.log(`${p.file}:${p.line}: ${p.message}`);
  console.log(`${checked} files checked (${markdown} markdown), ${problems.length} problem(s)`);
  if (checked === 0 || markdown === 0) {
    console.log('nothing to check: is this a git repository with tracked markdown files?');
    process.exit(1);
  }
  process.exit(problems.length === 0 ? 0 : 1);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
