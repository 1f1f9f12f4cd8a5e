export { buildReportModel, legOf, waterfall, REPORT_SCHEMA, PREVIEW_CHARS } from './model.js';
export type { ReportModel, ReportFlow, ReportToken, WaterfallRow, WaterfallLeg, BodyPreview } from './model.js';
export { renderReport } from './html.js';
