import { describe, expect, it } from 'vitest';
import type { FlowRecord } from '../../src/flow/index.js';
import { Classifier, parseScope } from '../../src/registry/index.js';
import { makeFlow } from '../support/flows.js';

function flow(method: string, host: string, target: string, headers: Array<[string, string]> = [], status = 200, resHeaders: Array<[string, string]> = []): FlowRecord {
  return makeFlow({ id: 1, uuid: 'u', request: { method, host, target, headers }, response: { status, reason: '', headers: resHeaders } });
}

describe('token requests', () => {
  it('reads the scopes of an OAuth POST from its form body (the query has none)', () => {
    const c = new Classifier();
    c.classify(flow('GET', 'registry.test', '/v2/', [], 401, [['WWW-Authenticate', 'Bearer realm="https://auth.test/token",service="registry.test"']]));
    const post = flow('POST', 'auth.test', '/token', [['Content-Type', 'application/x-www-form-urlencoded']]);
    const body = Buffer.from('grant_type=refresh_token&refresh_token=REDACTED-12345678&service=registry.test&client_id=docker&scope=repository%3Alab%2Fpushed%3Apush%2Cpull+repository%3Alab%2Ftiny%3Apull');
    const facts = c.classify(post, { requestBody: body });
    expect(facts.role).toBe('token');
    expect(facts.registry).toBe('registry.test');
    expect(facts.scopesRequested).toEqual([
      { type: 'repository', name: 'lab/pushed', actions: ['push', 'pull'] },
      { type: 'repository', name: 'lab/tiny', actions: ['pull'] },
    ]);
    // Without the body the scopes are unknown, not invented.
    expect(new Classifier().classify(post).scopesRequested).toEqual([]);
  });

  it('splits scopes from both ends, so a registry host with a port stays in the name', () => {
    expect(parseScope('repository:localhost:5000/lab/x:pull,push')).toEqual({ type: 'repository', name: 'localhost:5000/lab/x', actions: ['pull', 'push'] });
    expect(parseScope('registry:catalog:*')).toEqual({ type: 'registry', name: 'catalog', actions: ['*'] });
    expect(parseScope('nonsense')).toBeNull();
  });
});
