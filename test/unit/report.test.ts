/**
 * `regtape report`: the model (one waterfall bar per layer, redirect and CDN legs joined, token scopes),
 * the page's safety (escaped text, no script, no network), and the page in headless Chromium: it loads with
 * no console error and no request, shows one bar per layer of a real fixture pull, and a screenshot is
 * written to test-output/ (look at it). Skipped, saying why, only when Chromium is missing, never under CI.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRecording, type LoadedRecording } from '../../src/inspect/index.js';
import { buildReportModel, renderReport, type ReportModel } from '../../src/report/index.js';
import type { Recording } from '../../src/store/index.js';
import { D, openFixture, type FixtureName } from '../support/fixtures.js';

const CHROMIUM = '/usr/bin/chromium';
const OUT = path.resolve(import.meta.dirname, '../../test-output');

const models = new Map<FixtureName, { model: ReportModel; html: string; loaded: LoadedRecording }>();
const recs: Recording[] = [];
beforeAll(async () => {
  for (const n of ['dockerd-pull-multiarch', 'failing-pulls', 'dockerd-push'] as FixtureName[]) {
    const rec = openFixture(n);
    recs.push(rec);
    const loaded = await loadRecording(rec);
    const model = await buildReportModel(loaded, rec, `fixtures/${n}.db`);
    models.set(n, { model, html: renderReport(model), loaded });
  }
});
afterAll(() => {
  for (const r of recs) r.close();
});

describe('report model', () => {
  it('one bar per layer and config of each pull, each joining the registry 307 and the CDN download', () => {
    const { model, loaded } = models.get('dockerd-pull-multiarch')!;
    const [alpine] = model.operations;
    const layers = alpine!.waterfall.filter((r) => r.kind === 'layer');
    // In the order the client asked for them (dockerd fetches in parallel; the README lists that order).
    expect(layers.map((r) => r.digest).sort()).toEqual([D.alpineAmd64Layer0, D.alpineAmd64Layer1].sort());
    for (const row of layers) {
      expect(row.legs.map((l) => [l.role, l.host, l.status])).toEqual([
        ['blob-redirect', 'registry.test', 307],
        ['cdn-blob', 'cdn.test', 200],
      ]);
      const cdn = loaded.flows.find((f) => f.id === row.legs[1]!.flowId)!;
      // Offsets from the pull's start; the transfer ends when the CDN flow ended.
      expect(row.legs[1]!.transfer[1]).toBe(cdn.timings.end! - alpine!.totals.start);
      expect(row.legs[1]!.wait[0]).toBeLessThanOrEqual(row.legs[1]!.transfer[0]);
    }
    expect(model.tokens.map((t) => [t.flowId, t.operation, t.scopesGranted.map((s) => s.name), t.expiresIn])).toEqual([
      [2, 'registry.test/lab/alpine:3.9', ['lab/alpine'], 300],
      [13, 'registry.test/lab/oci:1', ['lab/oci'], 300],
    ]);
  });

  it('body previews as stored: the token response is redacted, binary layers are not shown', () => {
    const { model } = models.get('dockerd-pull-multiarch')!;
    const token = model.flows.find((f) => f.id === 2)!;
    expect(token.responseBody?.text).toMatch(/REDACTED-[0-9a-f]{8}/);
    expect(token.responseBody?.redacted).toBe(true);
    const layer = model.flows.find((f) => f.role === 'cdn-blob' && (f.responseBody?.size ?? 0) > 100_000)!;
    expect(layer.responseBody?.text).toBeNull();
  });

  it('the page is small, has no script and forbids network; recorded text is escaped, never markup', () => {
    const { html } = models.get('failing-pulls')!;
    expect(Buffer.byteLength(html)).toBeLessThan(300_000);
    expect(html).not.toMatch(/<script/i);
    expect(html).toContain('http-equiv="Content-Security-Policy" content="default-src &#x27;none&#x27;; style-src &#x27;unsafe-inline&#x27;; img-src data:"');
    const evil = structuredClone(models.get('dockerd-push')!.model);
    evil.flows[0]!.requestHeaders = [['User-Agent', '<img src=x onerror=alert(1)></td><script>alert(2)</script>']];
    evil.operations[0]!.problems.push({ code: 'mirror', message: '<b>bold</b>', flowIds: [1], advice: '"><svg onload=alert(3)>' });
    const page = renderReport(evil);
    expect(page).not.toContain('<img src=x');
    expect(page).not.toContain('<script>');
    expect(page).not.toContain('<svg onload');
    expect(page).toContain('&lt;img src=x onerror=alert(1)&gt;&lt;/td&gt;&lt;script&gt;');
  });
});

const chromium = fs.existsSync(CHROMIUM);
if (!chromium) {
  if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing; .ci/run installs the chromium package`);
  console.log(`report in Chromium: skipped, ${CHROMIUM} is not installed (apt-get install chromium)`);
}

describe.skipIf(!chromium)('report in headless Chromium', () => {
  it('loads with no console error and no request, one waterfall bar per layer, and a screenshot', async () => {
    const { chromium: pw } = await import('playwright-core');
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'regtape-chromium-'));
    const browser = await pw.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      viewport: { width: 1200, height: 900 },
    });
    try {
      fs.mkdirSync(OUT, { recursive: true });
      const file = path.join(OUT, 'dockerd-pull-multiarch.report.html');
      fs.writeFileSync(file, models.get('dockerd-pull-multiarch')!.html);
      const page = await browser.newPage();
      const errors: string[] = [];
      const requests: string[] = [];
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('request', (r) => !r.url().startsWith('file:') && requests.push(r.url()));
      await page.goto(`file://${file}`, { waitUntil: 'load' });
      expect(errors).toEqual([]);
      expect(requests).toEqual([]);
      // The alpine pull: 2 layers; the oci pull: 1 layer — one bar each, drawn with a visible width.
      const bars = await page.$$eval('section.op', (ops) => ops.map((op) => [...op.querySelectorAll('.wf-row[data-kind="layer"]')].map((r) => (r.querySelector('.seg.transfer') as unknown as { getBoundingClientRect(): { width: number } }).getBoundingClientRect().width)));
      expect(bars.map((b) => b.length)).toEqual([2, 1]);
      for (const w of bars.flat()) expect(w).toBeGreaterThan(0);
      expect(await page.title()).toBe('regtape report: fixtures/dockerd-pull-multiarch.db');
      const shot = path.join(OUT, 'report-dockerd-pull-multiarch.png');
      await page.screenshot({ path: shot, fullPage: false });
      expect(fs.statSync(shot).size).toBeGreaterThan(10_000);
      console.log(`report screenshot: ${shot}`);
    } finally {
      await browser.close();
      fs.rmSync(profile, { recursive: true, force: true });
    }
  }, 120_000);
});
