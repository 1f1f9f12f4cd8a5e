import { describe, expect, it } from 'vitest';
import { HostMap, parseMapRule } from '../../src/proxy/host-map.js';
import { RegtapeError } from '../../src/errors/index.js';

describe('parseMapRule', () => {
  it.each([
    ['registry.test=127.0.0.1:5000', { host: 'registry.test', port: undefined, toHost: '127.0.0.1', toPort: 5000 }],
    ['registry.test:443=127.0.0.1:5443', { host: 'registry.test', port: 443, toHost: '127.0.0.1', toPort: 5443 }],
    ['[::1]:443=[::1]:8443', { host: '::1', port: 443, toHost: '::1', toPort: 8443 }],
    ['Registry.Test=localhost:5000', { host: 'registry.test', port: undefined, toHost: 'localhost', toPort: 5000 }],
    [' registry.test = 10.0.0.2:80 ', { host: 'registry.test', port: undefined, toHost: '10.0.0.2', toPort: 80 }],
  ])('%s', (spec, expected) => {
    expect(parseMapRule(spec)).toEqual(expected);
  });

  it.each([
    // [spec, what the message must say]
    ['registry.test', /expected HOST\[:PORT\]=ADDR:PORT/],
    ['registry.test=127.0.0.1', /target needs a port/],
    ['registry.test=127.0.0.1:http', /bad port 'http'.*1-65535/],
    ['registry.test=127.0.0.1:0', /bad port '0'/],
    ['registry.test=127.0.0.1:65536', /bad port '65536'/],
    ['registry.test:abc=127.0.0.1:5000', /bad port 'abc' in HOST/],
    ['=127.0.0.1:5000', /empty host in HOST/],
    ['registry.test=[::1:5000', /unclosed '\['/],
    ['registry.test=[::1]5000', /expected ':PORT' after '\]'/],
    ['registry.test=bad_host!:5000', /not an address or host name/],
  ])('rejects %s with a message that says what is wrong', (spec, message) => {
    let err: unknown;
    try {
      parseMapRule(spec);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RegtapeError);
    const msg = (err as Error).message;
    expect(msg).toMatch(message);
    // The message names the rule the user typed.
    expect(msg).toContain(spec);
  });

  it('HostMap.parse fails on the first bad rule', () => {
    expect(() => HostMap.parse(['a.test=127.0.0.1:1', 'b.test'])).toThrow(RegtapeError);
  });
});

describe('HostMap.resolve', () => {
  const map = HostMap.parse(['registry.test=127.0.0.1:5000', 'registry.test:443=127.0.0.1:5443', '[::1]:443=[::1]:8443']);

  it('prefers a host:port rule over a host-only rule', () => {
    expect(map.resolve('registry.test', 443)).toEqual({ host: '127.0.0.1', port: 5443, mapped: true });
  });

  it('falls back to the host-only rule for other ports', () => {
    expect(map.resolve('registry.test', 80)).toEqual({ host: '127.0.0.1', port: 5000, mapped: true });
    expect(map.resolve('registry.test', 8080)).toEqual({ host: '127.0.0.1', port: 5000, mapped: true });
  });

  it('prefers the host:port rule whatever the rule order', () => {
    const reversed = HostMap.parse(['registry.test:443=127.0.0.1:5443', 'registry.test=127.0.0.1:5000']);
    expect(reversed.resolve('registry.test', 443)).toEqual({ host: '127.0.0.1', port: 5443, mapped: true });
    expect(reversed.resolve('registry.test', 80)).toEqual({ host: '127.0.0.1', port: 5000, mapped: true });
  });

  it('matches host names case-insensitively', () => {
    expect(map.resolve('REGISTRY.test', 443)).toEqual({ host: '127.0.0.1', port: 5443, mapped: true });
  });

  it('maps IPv6 literals', () => {
    expect(map.resolve('::1', 443)).toEqual({ host: '::1', port: 8443, mapped: true });
    expect(map.resolve('::1', 80)).toEqual({ host: '::1', port: 80, mapped: false });
  });

  it('passes unmapped hosts through unchanged', () => {
    expect(map.resolve('other.test', 443)).toEqual({ host: 'other.test', port: 443, mapped: false });
    expect(new HostMap().resolve('registry.test', 443)).toEqual({ host: 'registry.test', port: 443, mapped: false });
  });
});
