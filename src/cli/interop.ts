import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { InvalidArgumentError, type Command } from 'commander';
import { diffRecordings, renderDiff } from '../diff/index.js';
import { DEFAULT_MAX_BODY, exportOciLayout, indexWord, parseSize, Sink, writeCurl, writeFileAtomically, writeHar, type OciExportResult } from '../export/index.js';
import { compileFilterOption } from './inspect.js';
import { importHar, mergeRecordings, type ImportSummary } from '../import/index.js';
import { formatBytes, loadRecording, styleFor } from '../inspect/index.js';
import { isOci } from '../registry/index.js';
import { Recording } from '../store/index.js';
import { RegtapeError } from '../errors/index.js';

const collect = (v: string, prev: string[]) => [...prev, v];

function sizeOption(v: string): number {
  try {
    return parseSize(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

const err = (line: string) => void process.stderr.write(`${line}\n`);
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

interface ExportOptions {
  har?: string;
  curl?: boolean;
  ociLayout?: string;
  filter?: string;
  maxBody: number;
  image: string[];
}

/** stdout closed early (`| head`): stop quietly, like other Unix tools. */
async function toStdout(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPIPE') throw e;
  }
}

async function runExport(file: string, o: ExportOptions): Promise<void> {
  const modes = [o.har !== undefined && '--har', o.curl && '--curl', o.ociLayout !== undefined && '--oci-layout'].filter(Boolean);
  if (modes.length !== 1) throw new RegtapeError('bad-argument', modes.length ? `give one of ${modes.join(', ')}, not several` : 'say what to export: --har OUT.har, --curl or --oci-layout DIR (see `regtape export --help`)');
  if (o.image.length && o.ociLayout === undefined) throw new RegtapeError('bad-argument', '--image is for --oci-layout; use --filter to pick flows for --har and --curl');
  if (o.filter && o.ociLayout !== undefined) throw new RegtapeError('bad-argument', '--filter picks flows for --har and --curl; use --image REPO:TAG to pick images for --oci-layout');
  const filter = compileFilterOption(o.filter);
  const rec = Recording.open(file, { readonly: true });
  try {
    if (o.har !== undefined) {
      const opts = { filter, maxBody: o.maxBody, comment: `Exported by regtape from ${path.basename(file)}. Secrets were redacted when recorded (REDACTED-xxxxxxxx markers). Bodies over ${o.maxBody} bytes are left out (see each entry's comment and _regtape).` };
      if (o.har === '-') {
        return await toStdout(async () => {
          const stats = await writeHar(rec, new Sink(process.stdout), opts);
          if (stats.bodiesOverLimit) err(`${plural(stats.bodiesOverLimit, 'body', 'bodies')} over --max-body ${o.maxBody} bytes left out`);
        });
      }
      const stats = await writeFileAtomically(o.har, (sink) => writeHar(rec, sink, opts));
      const notes = [
        stats.bodiesOverLimit && `${plural(stats.bodiesOverLimit, 'body', 'bodies')} over --max-body ${o.maxBody} bytes left out (sha256 and size in each entry's comment)`,
        stats.bodiesMissing && `${plural(stats.bodiesMissing, 'body', 'bodies')} missing from the recording's .blobs directory`,
      ].filter(Boolean);
      err(`wrote ${plural(stats.entries, 'entry', 'entries')} to ${o.har}${notes.length ? `; ${notes.join('; ')}` : ''}`);
      return;
    }
    if (o.curl) {
      return await toStdout(async () => {
        const stats = await writeCurl(rec, new Sink(process.stdout), { filter });
        if (stats.variables.length) err(`${stats.commands} commands; secrets come from ${stats.variables.map((v) => `$${v}`).join(', ')}`);
      });
    }
    const dir = o.ociLayout!;
    const result = await exportOciLayout(rec, dir, { images: o.image, log: (l) => err(`note: ${l}`) });
    reportOci(result, dir);
  } finally {
    rec.close();
  }
}

function reportOci(r: OciExportResult, dir: string): void {
  for (const s of r.skipped) err(`skipped ${s.name}: ${s.why}`);
  for (const img of r.images) {
    const what = img.mode === 'index' ? `${indexWord(img.mediaType)} with ${img.platforms.join(', ')}` : img.mode === 'platforms' ? img.platforms.join(', ') : 'image';
    err(`${img.name} → ${dir} (${what})${img.refNames.length ? ` as ${img.refNames.join(', ')}` : ''}`);
  }
  err(`${r.blobsWritten} blobs written (${formatBytes(r.bytesWritten)})${r.blobsPresent ? `, ${r.blobsPresent} already there` : ''}`);
  const refs = r.images.flatMap((i) => i.refNames.map((n) => ({ n, oci: isOci(i.mediaType) })));
  const docker = r.images.filter((i) => !isOci(i.mediaType));
  if (refs.some((x) => x.oci)) err(`try: skopeo inspect oci:${dir}:${refs.find((x) => x.oci)!.n}`);
  if (docker.length && (r.images.length > 1 || r.images.some((i) => i.mode === 'platforms' && i.platforms.length > 1))) {
    err(
      `note: ${docker.map((i) => i.name).join(', ')} ${docker.length === 1 ? 'is' : 'are'} in Docker format; skopeo and podman (containers/image) look up oci:DIR:NAME only among OCI-typed entries, so export one Docker-format image per directory (--image) and use oci:DIR`,
    );
  } else if (docker.length) err(`try: skopeo inspect oci:${dir}`);
}

function importSummary(s: ImportSummary, input: string, out: string): string {
  const skipped = Object.entries(s.skipped);
  const nSkipped = skipped.reduce((n, [, k]) => n + k, 0);
  const parts = [
    nSkipped && `${nSkipped} skipped (${skipped.map(([why, n]) => `${n} ${why}`).join(', ')})`,
    s.errors && `${s.errors} imported as transport errors (no response)`,
    s.bodiesOmitted && `${plural(s.bodiesOmitted, 'body', 'bodies')} not in the HAR`,
    s.redactions && `${plural(s.redactions, 'secret')} redacted`,
  ].filter(Boolean);
  return `imported ${s.imported} of ${s.entries} entries from ${input}${s.creator ? ` (${s.creator})` : ''} into ${out}${parts.length ? `: ${parts.join(', ')}` : ''}`;
}

/**
 * `-` is standard input: streamed into a private temporary file first (the HAR reader
 * needs a file it can reopen; memory stays bounded), removed afterwards.
 */
async function withInputFile(input: string, run: (file: string) => Promise<void>): Promise<void> {
  if (input !== '-') return run(input);
  if (process.stdin.isTTY) throw new RegtapeError('bad-argument', "import -: standard input is a terminal; pipe a HAR into it (e.g. `cat save.har | regtape import - --out x.db`)");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-stdin-'));
  try {
    const file = path.join(dir, 'stdin.har');
    await pipeline(process.stdin, fs.createWriteStream(file, { mode: 0o600 }));
    await run(file).catch((e: unknown) => {
      throw e instanceof RegtapeError ? new RegtapeError(e.code, e.message.replaceAll(file, 'standard input'), { cause: e }) : e;
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Registers `regtape export`, `import`, `diff` and `merge`. */
export function registerInterop(program: Command): void {
  program
    .command('export')
    .description('export a recording as HAR 1.2, as curl commands, or its pulled images as an OCI image layout')
    .argument('<file.db>', 'recording')
    .option('--har <out.har>', 'write HAR 1.2 (streamed entry by entry; "-" for stdout)')
    .option('--curl', 'print one curl command per flow (redacted secrets become $REGTAPE_… variables)')
    .option('--oci-layout <dir>', 'write the pulled images as an OCI image layout (oci-layout, index.json, blobs/sha256/)')
    .option('-f, --filter <expr>', '--har/--curl: only flows matching this filter expression (see `regtape flows --help`)')
    .option('--max-body <bytes>', '--har: leave out bodies larger than this (500k, 1m, 2MB…)', sizeOption, DEFAULT_MAX_BODY)
    .option('--image <[host/]repo[:tag|@digest]>', '--oci-layout: only this image (repeatable; default: every image pulled)', collect, [])
    .addHelpText(
      'after',
      `
HAR: valid HAR 1.2 with headers in wire order (duplicates kept), queryString, postData,
timings (blocked/dns -1: not measured; connect includes ssl; -1 on a reused connection),
text bodies as text, others base64 with "encoding": "base64". Bodies over --max-body
(default 1 MiB) are left out; the entry's comment gives their size and sha256. regtape's
own facts (flow state, exact timings, body digests, registry facts) are in "_regtape".
The export reads the recording only: it is exactly as redacted as the recording.

curl: shell-quoted, one command per flow, -H per header in order. Small text bodies are
inline; larger ones are read from the recording's body file (--data-binary @FILE) or
stdin. Redacted secrets become variables: "\${REGTAPE_TOKEN}", "\${REGTAPE_PASSWORD}", …

OCI layout: blobs are the recorded bodies byte for byte (re-hashed while copied), so
digests equal the registry's. Only what was fetched is there: an index or manifest
list is written only when every platform it lists was fetched whole; otherwise the
complete platform manifests go into index.json one by one with their platform (one
platform: named TAG; several: TAG-os-arch[-variant]). Entries carry
org.opencontainers.image.ref.name (the tag) and io.containerd.image.name. DIR must be
new, empty, or an OCI layout (images are added; same names replaced). skopeo/podman
find oci:DIR:NAME only among OCI-typed entries: a Docker-format image is read with
oci:DIR when it is alone in the layout.

Examples:
  regtape export pull.db --har pull.har
  regtape export pull.db --har - --filter '~repo lab/alpine' --max-body 10m | jq '.log.entries | length'
  regtape export pull.db --curl --filter '~op manifest' > replay.sh
  regtape export pull.db --oci-layout ./alpine --image registry.test/lab/alpine:3.9
  skopeo copy oci:./alpine dir:/tmp/alpine`,
    )
    .action(async (file: string, o: ExportOptions) => runExport(file, o));

  program
    .command('import')
    .description('import a HAR file (mitmproxy save.har, browsers, Charles, regtape export) as a new recording')
    .argument('<in.har>', "HAR file (also gzip- or zlib-compressed, e.g. mitmproxy .zhar); '-' reads standard input")
    .requiredOption('-o, --out <file.db>', 'recording to create (bodies over 64 KiB go to <name>.blobs/ beside it)')
    .option('--append', 'add the flows to an existing recording instead of refusing to touch it')
    .addHelpText(
      'after',
      `
Each entry becomes a flow, stored like a recorded one: redacted the way the recorder
redacts (Authorization, cookies, signed query values, token/password fields in JSON and
form bodies up to 1 MiB; markers already in the HAR are kept), and classified (registry
facts). The HAR is read entry by entry and long strings (base64 layers) are streamed
through files, so memory stays bounded whatever its size.
HAR bodies are decoded content; where the headers say Content-Encoding they are
encoded again so the stored body matches its headers. Entries without a response (and
without an error), non-HTTP entries and bodies the HAR left out are reported on stderr,
one line each, and counted in the summary. A new recording appears only when the whole
HAR was read (temp file + rename); --append adds everything in one transaction.

Examples:
  regtape import save.har --out mitm.db
  regtape import pull.har --out pull.db --append
  mitmdump -nr flows --set hardump=/dev/stdout | regtape import - --out mitm.db`,
    )
    .action(async (input: string, o: { out: string; append?: boolean }) => {
      await withInputFile(input, async (file) => {
        const summary = await importHar(file, o.out, { append: o.append, report: (l) => err(`regtape import: ${l}`) });
        err(importSummary(summary, input === '-' ? 'standard input' : input, o.out));
      });
    });

  program
    .command('diff')
    .description('compare two recordings pull by pull: digests, layers, media types, auth, status codes, headers, timings')
    .argument('<a.db>', 'recording A (before)')
    .argument('<b.db>', 'recording B (after)')
    .option('--json', 'machine-readable output (format: docs/JSON.md)')
    .option('--exit-code', 'exit with status 1 when something changed (like git diff --exit-code)')
    .addHelpText(
      'after',
      `
Operations (a pull or push of one registry/repo/reference) are matched by
registry + repo + reference. Per match: what the tag resolved to, media types,
platforms, manifests, config and layers added/removed, WWW-Authenticate challenges,
status codes and response headers of requests made in both, wall time (B/A ratio) and
layers whose throughput changed 2× or more. Ignored as per-run noise: Date and caching
headers, rate-limit counters, trace/request ids, signed query values, token markers,
upload ids. Colour on a terminal; NO_COLOR=1 turns it off.

Examples:
  regtape diff before.db after.db
  regtape diff before.db after.db --json | jq '.operations[] | select(.digest.changed)'`,
    )
    .action(async (a: string, b: string, o: { json?: boolean; exitCode?: boolean }) => {
      const ra = Recording.open(a, { readonly: true });
      try {
        const rb = Recording.open(b, { readonly: true });
        try {
          const result = diffRecordings(await loadRecording(ra), await loadRecording(rb), { a, b });
          process.stdout.write(o.json ? `${JSON.stringify(result, null, 2)}\n` : `${renderDiff(result, styleFor(process.stdout))}\n`);
          if (o.exitCode && (result.summary.changed || result.summary.onlyA || result.summary.onlyB)) process.exitCode = 1;
        } finally {
          rb.close();
        }
      } finally {
        ra.close();
      }
    });

  program
    .command('merge')
    .description('merge recordings into one (flows appended in order, sessions kept, bodies stored once)')
    .argument('<a.db>', 'first recording')
    .argument('<more.db...>', 'further recordings')
    .requiredOption('-o, --out <c.db>', 'recording to write (must not exist, unless --force)')
    .option('--force', 'replace --out if it exists')
    .addHelpText(
      'after',
      `
Flow ids are renumbered in input order (uuids are kept; a flow already in the output is
not copied twice). Bodies are deduplicated by digest: inline rows once, body files
hard-linked (or copied) once. The output is written under a temp name and renamed into
place with its .blobs/ directory, so it appears complete or not at all.

Examples:
  regtape merge run1.db run2.db run3.db --out fixture.db
  regtape merge old.db extra.db --out old.db --force`,
    )
    .action(async (a: string, more: string[], o: { out: string; force?: boolean }) => {
      const s = await mergeRecordings([a, ...more], o.out, { force: o.force, report: (l) => err(`regtape merge: ${l}`) });
      err(
        `merged ${s.flows} flows from ${s.inputs.length} recordings into ${o.out} (${s.inputs.map((i) => `${path.basename(i.path)}: ${i.flows}`).join(', ')}); ` +
          `${s.bodies.total} distinct bodies, ${s.bodies.deduplicated} duplicates stored once, ${s.bodies.linked + s.bodies.copied} body files ${s.bodies.copied ? `(${s.bodies.copied} copied)` : 'linked'}` +
          (s.duplicates ? `; ${s.duplicates} flows already present skipped` : ''),
      );
    });
}
