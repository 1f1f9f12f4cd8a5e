/**
 * Runs a command with a private /etc/hosts: `unshare --mount --propagation private` and a bind mount of
 * `hostsFile` over /etc/hosts inside that mount namespace. The host's /etc/hosts is never touched. Needs
 * root. Use it for direct (proxy-less) access to the lab by name, e.g. skopeo or curl.
 */
import { run, type RunOptions, type RunResult } from './proc.js';

/** Runs `argv` (argv[0] looked up in PATH) with `hostsFile` as /etc/hosts. */
export function runWithHosts(hostsFile: string, argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  if (argv.length === 0) throw new Error('runWithHosts: empty argv');
  return run(
    'unshare',
    ['--mount', '--propagation', 'private', '--', '/bin/sh', '-c', 'mount --bind "$0" /etc/hosts && exec "$@"', hostsFile, ...argv],
    opts,
  );
}
