/** The report page's stylesheet (inline in the page: no network). */
export const REPORT_CSS = `
:root { --fg: #1d2330; --dim: #6b7385; --bg: #fff; --line: #e3e6ec; --connect: #f0a23b; --tls: #b36ae2; --wait: #3ea0d8; --transfer: #2fa86b; --bad: #c8372d; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); margin: 0 auto; max-width: 1200px; padding: 16px 24px 48px; }
h1 { font-size: 20px; margin: 0; } h2 { font-size: 17px; border-bottom: 1px solid var(--line); padding-bottom: 4px; margin-top: 28px; } h3 { font-size: 15px; margin: 0 0 2px; }
code, pre, .wf-label, .wf-flows, td, th { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12px; }
.dim { color: var(--dim); } .err { color: var(--bad); }
a { color: inherit; }
.op { border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; margin: 12px 0; }
.op p { margin: 0 0 6px; }
ul.tree, ul.tree ul { list-style: none; padding-left: 18px; margin: 4px 0; } ul.tree { padding-left: 4px; }
ul.problems { padding-left: 18px; } .problem { color: var(--bad); margin: 4px 0; } .problem .advice { color: var(--fg); }
.waterfall { margin-top: 8px; }
.wf-row { display: grid; grid-template-columns: 250px 1fr 110px; align-items: center; gap: 8px; height: 20px; }
.wf-row:nth-child(even) { background: #f7f8fa; }
.wf-label { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.wf-track { position: relative; height: 12px; }
.wf-flows { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.wf-scale { display: flex; justify-content: space-between; margin-left: 258px; margin-right: 118px; color: var(--dim); font-size: 11px; }
.leg { position: absolute; inset: 0; display: block; }
.seg { position: absolute; top: 0; height: 12px; min-width: 1px; border-radius: 2px; display: inline-block; }
.legend { margin-top: 4px; color: var(--dim); font-size: 12px; } .legend .seg { position: static; width: 14px; vertical-align: middle; margin-left: 10px; }
.seg.connect { background: var(--connect); } .seg.tls { background: var(--tls); } .seg.wait { background: var(--wait); } .seg.transfer { background: var(--transfer); }
table { border-collapse: collapse; margin: 4px 0; } th, td { text-align: left; vertical-align: top; padding: 1px 8px 1px 0; word-break: break-all; } th { color: var(--dim); font-weight: normal; white-space: nowrap; }
table.tokens th { color: var(--fg); border-bottom: 1px solid var(--line); }
details.flow { border-bottom: 1px solid var(--line); padding: 3px 0; } details.flow summary { cursor: pointer; font-family: ui-monospace, Menlo, monospace; font-size: 12px; word-break: break-all; }
.status { font-weight: bold; } .s2 { color: var(--transfer); } .s3 { color: var(--wait); } .s4, .s5, .se { color: var(--bad); }
pre { background: #f5f6f8; padding: 6px 8px; white-space: pre-wrap; word-break: break-all; max-height: 320px; overflow: auto; margin: 2px 0 8px; }
`;
