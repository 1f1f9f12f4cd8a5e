/**
 * The report page: one self-contained HTML file rendered on the server with react-dom/server (React
 * escapes every text and attribute value, so recorded text never becomes markup). No script, no network:
 * a Content-Security-Policy forbids both; the waterfall is CSS-positioned boxes.
 */
import { renderToStaticMarkup } from 'react-dom/server';
import { formatMs } from '../inspect/index.js';
import { citeFlows, describeMediaType, dockerRate, dockerSize, shortDigest } from '../registry/index.js';
import type { BodyPreview, ReportFlow, ReportModel, WaterfallLeg, WaterfallRow } from './model.js';
import { REPORT_CSS } from './style.js';

type Op = ReportModel['operations'][number];

const pct = (v: number, total: number) => `${((Math.max(0, v) / total) * 100).toFixed(3)}%`;

function Segment({ part, range, total }: { part: string; range: [number, number] | undefined; total: number }) {
  if (!range) return null;
  const width = Math.max(range[1] - range[0], total / 1000);
  return <span className={`seg ${part}`} style={{ left: pct(range[0], total), width: pct(width, total) }} title={`${part} ${formatMs(range[1] - range[0])}`} />;
}

function Leg({ leg, total }: { leg: WaterfallLeg; total: number }) {
  return (
    <a className={`leg role-${leg.role}`} href={`#flow-${leg.flowId}`} title={`#${leg.flowId} ${leg.role} ${leg.host} ${leg.status ?? ''}`}>
      <Segment part="connect" range={leg.connect} total={total} />
      <Segment part="tls" range={leg.tls} total={total} />
      <Segment part="wait" range={leg.wait} total={total} />
      <Segment part="transfer" range={leg.transfer} total={total} />
    </a>
  );
}

function Waterfall({ op }: { op: Op }) {
  const total = Math.max(1, op.totals.wallMs);
  if (!op.waterfall.length) return null;
  return (
    <div className="waterfall">
      <div className="wf-scale">
        <span>0</span>
        <span>{formatMs(total / 2)}</span>
        <span>{formatMs(total)}</span>
      </div>
      {op.waterfall.map((row: WaterfallRow, i) => (
        <div className="wf-row" data-kind={row.kind} data-digest={row.digest ?? ''} key={i}>
          <div className="wf-label">
            {row.label} <span className="dim">{dockerSize(row.bytes)}</span>
          </div>
          <div className="wf-track">
            {row.legs.map((leg) => (
              <Leg leg={leg} total={total} key={leg.flowId} />
            ))}
          </div>
          <div className="wf-flows dim">{citeFlows(row.legs.map((l) => l.flowId))}</div>
        </div>
      ))}
      <div className="legend">
        <span className="seg connect" /> connect <span className="seg tls" /> TLS <span className="seg wait" /> wait (to first byte) <span className="seg transfer" /> transfer
      </div>
    </div>
  );
}

function Tree({ op }: { op: Op }) {
  const blobs = (manifest?: string) =>
    op.blobs
      .filter((b) => b.manifest === manifest)
      .map((b) => (
        <li key={b.digest} className={`blob ${b.kind}`}>
          <code>{shortDigest(b.digest)}</code> {b.kind} {dockerSize(b.size || b.bytes)}{' '}
          <span className="dim">
            {b.mountedFrom ? `mounted from ${b.mountedFrom}` : b.transfers.length ? b.transfers.map((t) => `${t.direction === 'up' ? 'up to' : 'from'} ${t.cdn ? 'CDN ' : ''}${t.host ?? ''} ${formatMs(t.ms)}${t.ms > 0 ? ` ${dockerRate(t.throughput)}` : ''}`).join('; ') : 'not transferred'}
          </span>
        </li>
      ));
  const orphans = op.blobs.filter((b) => !b.manifest || !op.manifests.some((m) => m.digest === b.manifest));
  return (
    <ul className="tree">
      {op.index && (
        <li>
          index <code>{shortDigest(op.index.digest)}</code> {describeMediaType(op.index.mediaType)}: {op.index.platforms.join(', ')}
        </li>
      )}
      {op.manifests.map((m) => (
        <li key={m.digest}>
          manifest <code>{shortDigest(m.digest)}</code> {describeMediaType(m.mediaType)} {m.platform ? `(${m.platform})` : ''}
          <ul>{blobs(m.digest)}</ul>
        </li>
      ))}
      {orphans.length > 0 && <ul>{orphans.map((b) => blobs(b.manifest)).flat()}</ul>}
    </ul>
  );
}

function Operation({ op }: { op: Op }) {
  const what = op.kind === 'copy' && op.source ? `copy ${op.source.name} → ${op.name}` : `${op.kind} ${op.name}`;
  return (
    <section className="op" id={`op-${op.position}`} data-kind={op.kind}>
      <h3>
        {what} <span className="dim">{op.client.name ?? op.client.userAgent ?? ''}</span>
      </h3>
      <p className="dim">
        {op.totals.flows} flows, {dockerSize(op.totals.downloaded)} fetched, {dockerSize(op.totals.uploaded)} uploaded in {formatMs(op.totals.wallMs)}
        {op.totals.rate > 0 ? ` (${dockerRate(op.totals.rate)})` : ''}
        {op.rateLimit ? ` · rate limit ${op.rateLimit.remaining ?? '?'} left of ${op.rateLimit.limit ?? '?'}` : ''}
      </p>
      {op.problems.length > 0 && (
        <ul className="problems">
          {op.problems.map((p, i) => (
            <Problem p={p} key={i} />
          ))}
        </ul>
      )}
      <Tree op={op} />
      <Waterfall op={op} />
    </section>
  );
}

function Problem({ p }: { p: Op['problems'][number] }) {
  return (
    <li className="problem" data-code={p.code}>
      <strong>{p.message}</strong>{' '}
      {p.flowIds.map((id) => (
        <a href={`#flow-${id}`} key={id}>
          #{id}{' '}
        </a>
      ))}
      <div className="advice">{p.advice}</div>
    </li>
  );
}

function Headers({ headers }: { headers: ReportFlow['requestHeaders'] }) {
  return (
    <table className="headers">
      <tbody>
        {headers.map(([k, v], i) => (
          <tr key={i}>
            <th>{k}</th>
            <td>{v}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Body({ body, label }: { body: BodyPreview | null; label: string }) {
  if (!body) return null;
  return (
    <div className="body">
      <div className="dim">
        {label}: {dockerSize(body.size)}
        {body.contentType ? `, ${body.contentType}` : ''}
        {body.redacted ? ', secrets redacted' : ''}
        {body.text === null ? ' (not shown: binary or large)' : body.truncated ? ' (first part)' : ''}
      </div>
      {body.text !== null && <pre>{body.text}</pre>}
    </div>
  );
}

function Flow({ f }: { f: ReportFlow }) {
  return (
    <details className="flow" id={`flow-${f.id}`}>
      <summary>
        <span className="id">#{f.id}</span> <b>{f.method}</b> {f.url} <span className={`status s${String(f.status ?? 'err')[0]}`}>{f.status ?? f.state}</span> <span className="dim">{f.role ?? ''}</span>
        {f.error ? <span className="err"> {f.error}</span> : null}
      </summary>
      <Headers headers={f.requestHeaders} />
      <Body body={f.requestBody} label="request body" />
      <Headers headers={f.responseHeaders} />
      <Body body={f.responseBody} label="response body" />
    </details>
  );
}

function Tokens({ model }: { model: ReportModel }) {
  if (!model.tokens.length) return null;
  const scopes = (s: ReportModel['tokens'][number]['scopesGranted']) => s.map((x) => `${x.type}:${x.name}:${x.actions.join(',')}`).join(' ') || '—';
  return (
    <table className="tokens">
      <thead>
        <tr>
          <th>flow</th>
          <th>operation</th>
          <th>asked</th>
          <th>granted</th>
          <th>lifetime</th>
        </tr>
      </thead>
      <tbody>
        {model.tokens.map((t) => (
          <tr key={t.flowId}>
            <td>
              <a href={`#flow-${t.flowId}`}>#{t.flowId}</a>
            </td>
            <td>{t.operation ?? ''}</td>
            <td>{scopes(t.scopesRequested)}</td>
            <td>{scopes(t.scopesGranted)}</td>
            <td>{t.expiresIn !== null ? `${t.expiresIn} s` : ''}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Page({ model }: { model: ReportModel }) {
  const problems = model.operations.flatMap((op) => op.problems.map((p) => ({ op, p })));
  return (
    <html lang="en">
      <head>
        <meta charSet="utf-8" />
        <meta httpEquiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`regtape report: ${model.recording}`}</title>
        <style>{REPORT_CSS}</style>
      </head>
      <body>
        <header>
          <h1>regtape report</h1>
          <p>
            <code>{model.recording}</code>: {model.summary.flows} flows, {model.summary.operations} operations, {model.summary.size}, {model.summary.problems} problem{model.summary.problems === 1 ? '' : 's'}
          </p>
        </header>
        <h2>Problems</h2>
        {problems.length ? (
          <ul className="problems">
            {problems.map(({ op, p }, i) => (
              <Problem p={{ ...p, message: `${op.kind} ${op.name}: ${p.message}` }} key={i} />
            ))}
          </ul>
        ) : (
          <p className="dim">none found</p>
        )}
        <h2>Operations</h2>
        {model.operations.map((op) => (
          <Operation op={op} key={op.position} />
        ))}
        <h2>Tokens</h2>
        <Tokens model={model} />
        <h2>Flows</h2>
        <p className="dim">Headers and bodies as stored: secrets are replaced by REDACTED markers.</p>
        {model.flows.map((f) => (
          <Flow f={f} key={f.id} />
        ))}
      </body>
    </html>
  );
}

/** The whole page as one HTML document. */
export function renderReport(model: ReportModel): string {
  return `<!doctype html>\n${renderToStaticMarkup(<Page model={model} />)}\n`;
}
