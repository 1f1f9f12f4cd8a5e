#!/usr/bin/env node
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { authorityExists, defaultHome, loadOrCreateAuthority, retireAuthority } from '../ca/index.js';
import { describeCa, SETUP_TARGETS, setupInstructions, type SetupTarget } from './ca.js';
import { runRecord } from './record.js';
import { runFlows, runShow, runVerify } from './inspect.js';
import { runReplay } from './replay.js';
import { registerUi } from './ui.js';
import { registerInterop } from './interop.js';
import { filterHelp, filtersHelpPage } from '../filter/index.js';
import { ERRORS, EXIT, formatError, RegtapeError } from '../errors/index.js';
import { SHOW_SCHEMA, VERIFY_SCHEMA } from '../inspect/index.js';
import { COMPLETION_SHELLS, completionScript, type CompletionShell } from './completion.js';
import { REPORT_SCHEMA } from '../report/index.js';
import { runReport } from './report.js';

const collect = (v: string, prev: string[]) => [...prev, v];

function positiveNumber(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${flag} needs a positive number of seconds, got '${v}'`);
  return n;
}

export function buildProgram(): Command {
  const program = new Command();
  // Set before the subcommands are added, so they inherit it: usage errors print as
  // `regtape: bad-argument: …` and throw (exit 2 in main) instead of exiting with 1.
  program.exitOverride().configureOutput({ outputError: (s, write) => write(usageLine(s)) });
  program
    .name('regtape')
    .description('Record, inspect and replay container-registry traffic (docker, containerd, podman, skopeo, crane).')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      `
Quick start:
  regtape record                                  # proxy on 127.0.0.1:8080, writes regtape-<time>.db
  regtape ca --setup dockerd                      # how to point dockerd at it and trust the CA
  HTTPS_PROXY=http://127.0.0.1:8080 skopeo inspect --cert-dir DIR docker://IMAGE

Environment:
  REGTAPE_HOME     where the CA lives (default: $XDG_CONFIG_HOME/regtape, else ~/.config/regtape)
  XDG_CONFIG_HOME  base of the default REGTAPE_HOME
  NO_COLOR         disable colour (any non-empty value), in every command and the inspector
  FORCE_COLOR      colour even when output is not a terminal (FORCE_COLOR=0 disables it)

Exit status:
  ${EXIT.ok}   success
  ${EXIT.check}   the command ran and what it checked failed (verify found damage, replay --strict had misses)
  ${EXIT.usage}   bad input: an argument, a filter, a file that is not a regtape recording
  ${EXIT.environment}   the environment refused: a port in use, a permission, a full disk, no terminal
  ${EXIT.internal}  a bug in regtape (please report it)
  Errors print one line, \`regtape: <code>: <sentence>\`; the codes are listed in docs/ERRORS.md.

Shell completion: regtape completion bash|zsh|fish`,
    );

  program
    .command('completion')
    .description('print a shell completion script (bash, zsh or fish)')
    .addArgument(new Argument('<shell>', 'the shell').choices([...COMPLETION_SHELLS]))
    .addHelpText(
      'after',
      `
Install:
  bash: echo 'eval "$(regtape completion bash)"' >> ~/.bashrc
  zsh:  regtape completion zsh > "\${fpath[1]}/_regtape"   (or eval "$(regtape completion zsh)" after compinit)
  fish: regtape completion fish > ~/.config/fish/completions/regtape.fish`,
    )
    .action((shell: CompletionShell) => void process.stdout.write(completionScript(program, shell)));

  program
    .command('ca')
    .description("show regtape's CA (created on first use) and how to make clients trust it")
    .addOption(new Option('--setup <client>', 'print setup steps for a client').choices([...SETUP_TARGETS]))
    .option('--proxy <url>', 'proxy URL to use in --setup output', 'http://127.0.0.1:8080')
    .option('--path', 'print only the CA certificate path')
    .option('--pem', 'print only the CA certificate (PEM)')
    .option('--name-constraints <domains>', 'create a CA that may only sign for these DNS domains (comma-separated, e.g. docker.io,docker.com)')
    .option('--regenerate', 'replace an existing CA (the old files are kept as *.old-<time>; clients must trust the new one)')
    .addHelpText(
      'after',
      `
Trusting the CA system-wide lets regtape impersonate any host. --name-constraints limits it (X.509 name
constraints, honoured by Go, OpenSSL and browsers) to the registries you debug:
  regtape ca --regenerate --name-constraints docker.io,docker.com,cloudflare.docker.com`,
    )
    .action((opts: { setup?: SetupTarget; proxy: string; path?: boolean; pem?: boolean; nameConstraints?: string; regenerate?: boolean }) => {
      const home = defaultHome();
      const domains = opts.nameConstraints?.split(',').map((d) => d.trim()).filter(Boolean);
      if (opts.nameConstraints !== undefined && !domains?.length) throw new RegtapeError('bad-argument', '--name-constraints needs at least one domain, e.g. docker.io,docker.com');
      if (opts.regenerate) retireAuthority(home);
      else if (domains && authorityExists(home)) {
        throw new RegtapeError('bad-argument', `a CA already exists in ${home}; add --regenerate to replace it with one limited to ${domains.join(', ')}`);
      }
      const ca = loadOrCreateAuthority(home, { nameConstraints: domains });
      if (opts.path) return void process.stdout.write(`${ca.certPath}\n`);
      if (opts.pem) return void process.stdout.write(ca.certPem);
      if (opts.setup) return void process.stdout.write(setupInstructions(opts.setup, ca, opts.proxy));
      process.stdout.write(`${describeCa(ca)}\n`);
    });

  program
    .command('record')
    .description('run the recording proxy: every flow (registry, token server, CDN) goes into a recording')
    .option('-l, --listen <host:port>', 'address to listen on', '127.0.0.1:8080')
    .option('-o, --out <file.db>', 'recording file (default: regtape-<date>-<time>.db; bodies go to <name>.blobs/ beside it)')
    .option('--map <host[:port]=addr:port>', 'route a host name to another address (repeatable), e.g. registry.test=127.0.0.1:5000', collect, [])
    .option('--upstream-ca <file>', 'also trust this PEM CA for upstream TLS (repeatable)', collect, [])
    .option('--insecure-upstream', 'do not verify upstream TLS certificates')
    .option('--keep-secrets', 'store tokens, passwords and signed URLs unredacted (not recommended)')
    .option('-q, --quiet', 'no line per flow')
    .option('-v, --verbose', 'debug logging')
    .option('--ui', 'show the inspector while recording (flows appear live)')
    .option('--upstream-timeout <seconds>', 'abort an exchange when the upstream sends nothing for this long', (v) => positiveNumber(v, '--upstream-timeout'), 120)
    .option('--append', 'add to an existing --out recording (without it, an existing file is refused)')
    .option('--client-timeout <seconds>', 'close a client connection idle this long with no exchange running on it', (v) => positiveNumber(v, '--client-timeout'), 120)
    .option('--expose', 'allow --listen on a non-loopback address (prints a warning)')
    .option('--addon <file.mjs>', 'run your own addon on every flow, after redaction and classification (repeatable; see below)', collect, [])
    .addHelpText(
      'after',
      `
Clients go through it with HTTPS_PROXY=http://<listen> and must trust the CA (regtape ca --setup dockerd).
Stop with Ctrl-C: open transfers are recorded as aborted, the file is closed cleanly and a summary printed.

An addon file is an ES module whose default export is { name, requestHead?(ctx), responseHead?(ctx),
flowFinished?(ctx), flowStored?(flow) } (or an array of them), e.g.
  export default { name: 'big', flowStored: (f) => f.responseBytes > 1e8 && console.error('big:', f.request.target) };

Examples:
  regtape record -o pull.db
  regtape record --map registry.test=127.0.0.1:5443 --upstream-ca lab/ca.pem`,
    )
    .action(async (opts: { listen: string; out?: string; map: string[]; upstreamCa: string[]; insecureUpstream?: boolean; keepSecrets?: boolean; quiet?: boolean; verbose?: boolean; ui?: boolean; upstreamTimeout?: number; clientTimeout?: number; expose?: boolean; addon: string[]; append?: boolean }) => {
      await runRecord({ ...opts, home: defaultHome() });
    });

  program
    .command('replay')
    .description('serve a recording as an offline registry: an HTTPS proxy for unchanged clients and/or a mirror endpoint')
    .argument('<file.db>', 'recording')
    .option('-l, --listen <host:port>', 'proxy mode address (clients use HTTPS_PROXY and trust the regtape CA)', '127.0.0.1:8080')
    .option('--no-proxy', 'no proxy mode (mirror only)')
    .option('-m, --mirror <host:port>', 'also serve a registry endpoint here (registry-mirrors, hosts.toml, registries.conf)')
    .option('--mirror-tls', 'serve the mirror over HTTPS with a certificate from the regtape CA')
    .option('--registry <host>', 'mirror mode: the recorded registry to serve when the request has no ns= (default: the only/first one)')
    .option('--strict', 'exit with status 1 at shutdown if any request had no recorded answer')
    .option('--report <file.json>', 'write the misses and the recorded flows never used to a JSON file at shutdown')
    .option('--fault <rule>', "misbehave on purpose: 'FILTER => ACTION [once|xN]' (repeatable; see below)", collect, [])
    .option('--prefer <last|success>', 'a request answered differently at different times gets the last recorded answer (default) or the last success', 'last')
    .option('--ratelimit-countdown [n]', "count ratelimit-remaining down on manifest GETs (from N, else from the recorded value) and answer 429 at zero")
    .option('-v, --verbose', 'debug logging')
    .option('--expose', 'allow --listen / --mirror on a non-loopback address (prints a warning)')
    .addHelpText(
      'after',
      `
Matching is protocol-aware: Accept compared as a set with the registry's selection rules, Authorization by
class (none / credentials), CDN downloads by host and path, docker.io = index.docker.io = registry-1.docker.io,
Range/HEAD/If-None-Match synthesised from stored bodies. Recorded failures (401, 403, 404, 429, 5xx) replay
as recorded, with the recorded headers; tokens are JWTs of the replay's own with the recorded scopes. A
request with no recorded answer is a miss: a 404 naming the closest recorded request and the one difference,
counted for --strict and --report.

Faults ('FILTER => ACTION [once|xN]', FILTER in the filter language, first matching rule wins):
  429 / 500 / 503 …   answer with that status (429 with Retry-After and rate-limit headers)
  reset               close the connection without an answer
  truncate:BYTES      send only BYTES of the body, then close (a short read)
  flip[:OFFSET]       flip one byte of the body (default: the middle): a digest mismatch
  delay:MS            wait before answering;  drip:BYTES_PER_SECOND  send the body slowly
  expire              401 with error="invalid_token" (a token expiring mid-pull)

Examples:
  regtape replay pull.db                                   # proxy on 127.0.0.1:8080
  regtape replay pull.db --fault '~op cdn-blob & ~repo lab/big => truncate:1000000 once'
  regtape replay pull.db --no-proxy --mirror 127.0.0.1:5000 --strict --report misses.json`,
    )
    .action(async (file: string, opts: { listen: string; proxy: boolean; mirror?: string; registry?: string; strict?: boolean; report?: string; verbose?: boolean; fault: string[]; expose?: boolean; mirrorTls?: boolean; prefer: string; ratelimitCountdown?: string | boolean }) =>
      runReplay(file, { ...opts, home: defaultHome() }),
    );

  program
    .command('show')
    .description('print the pulls and pushes in a recording as trees (index → manifest → config, layers) with their flows')
    .argument('<file.db>', 'recording')
    .option('-f, --filter <expr>', 'only flows matching a filter expression (see `regtape flows --help`)')
    .option('--no-flows', 'operations only, without their flows')
    .option('--json', `the operations and problems as one JSON document (schema ${SHOW_SCHEMA}, docs/JSON.md)`)
    .addHelpText(
      'after',
      '\nEach operation (pull, inspect, copy, push, login, catalog, tags, ping, auth, connect) is grouped per client\n(IP and User-Agent) and time, with a problems section: one line per problem, the flows it cites (#id)\nand what to do.\n\nColour on a terminal; NO_COLOR=1 turns it off.\n\nExamples:\n  regtape show pull.db --filter "~repo lab/alpine"\n  regtape show pull.db --json | jq \'.operations[].problemLines[]\'',
    )
    .action(async (file: string, opts: { filter?: string; flows?: boolean; json?: boolean }) => runShow(file, opts));

  program
    .command('flows')
    .description('list the flows of a recording, one per line or as JSON')
    .argument('<file.db>', 'recording')
    .option('-f, --filter <expr>', 'only flows matching this filter expression')
    .option('--json', 'one JSON object per line (format: docs/JSON.md)')
    .addHelpText('after', () => `\nFilter language (mitmproxy's, plus registry operators):\n${filterHelp()}\n\nExamples:\n  regtape flows pull.db --filter '~repo lab/alpine & ~op cdn-blob'\n  regtape flows pull.db --filter '~c 401 | ~c 429' --json | jq .url`)
    .action(async (file: string, opts: { filter?: string; json?: boolean }) => runFlows(file, opts));

  program
    .command('verify')
    .description('re-hash every stored body of a recording and check the database (exit 1 on any problem)')
    .argument('<file.db>', 'recording')
    .option('--json', `the result as one JSON document (schema ${VERIFY_SCHEMA}, docs/JSON.md)`)
    .action(async (file: string, opts: { json?: boolean }) => runVerify(file, opts));

  registerUi(program);
  registerInterop(program);
  program
    .command('report')
    .description('write one self-contained HTML page about a recording: operations, per-layer waterfall, manifest tree, token scopes, problems, every flow')
    .argument('<file.db>', 'recording')
    .option('-o, --output <report.html>', 'where to write the page (default: NAME.report.html in the current directory)')
    .option('--json', `print the model behind the page instead (schema ${REPORT_SCHEMA}, docs/JSON.md)`)
    .addHelpText('after', '\nThe page has no script and loads nothing (a Content-Security-Policy forbids it); headers and bodies\nappear as stored, so secrets are REDACTED markers. Small enough to attach to a bug report.\n\nExamples:\n  regtape report pull.db -o pull.html\n  regtape report pull.db --json | jq \'.operations[].waterfall[] | select(.kind == "layer")\'')
    .action(async (file: string, opts: { output?: string; json?: boolean }) => runReport(file, opts));

  registerHelp(program);
  return program;
}

/** `regtape help [command|filters]` (in place of commander's implicit help command, which knows no topics). */
function registerHelp(program: Command): void {
  program.helpCommand(false);
  program
    .command('help')
    .description('help on a command, or on the filter language: regtape help filters')
    .argument('[topic]', 'a command name, or "filters"')
    .action((topic?: string) => {
      if (topic === 'filters') return void process.stdout.write(`${filtersHelpPage()}\n`);
      if (!topic) return void program.outputHelp();
      const cmd = program.commands.find((c) => c.name() === topic || c.aliases().includes(topic));
      if (!cmd) throw new RegtapeError('bad-argument', `no help topic '${topic}': give a command name (regtape --help lists them) or "filters"`);
      cmd.outputHelp();
    });
}

// `regtape flows x.db --json | head`: a closed pipe ends the command quietly, as in other Unix tools.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

/** Commander's `error: unknown option '--x'` as our one error line. */
function usageLine(s: string): string {
  return `regtape: bad-argument: ${s.replace(/^error: /, '')}`;
}

/** The one place errors reach the user: `regtape: <code>: <sentence>`, and the documented exit status. */
async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end with exitCode 0; everything else commander refuses is a usage error.
      process.exitCode = e.exitCode === 0 ? EXIT.ok : ERRORS['bad-argument'].exit;
      return;
    }
    const { line, exitCode } = formatError(e);
    process.stderr.write(`${line}\n`);
    process.exitCode = exitCode;
  }
}

void main();
