/**
 * batchpipe's public API: the stages as streams, the whole `prepare` flow, the ledger, the
 * validators, and the results (extraction, output schemas, applying result files, the result source,
 * CSV/JSONL output). Everything not exported here is internal.
 */
export {
  BatchpipeError,
  type BatchpipeErrorOptions,
  type ErrorCode,
  ErrorCodes,
  type IssueCode,
  IssueCodes,
  isBatchpipeError,
  type ResultErrorCode,
  ResultErrorCodes,
} from './errors.js';
export {
  type FileRow,
  Ledger,
  type LedgerOpenOptions,
  type RequestCounts,
  type RequestState,
} from './ledger/ledger.js';
export {
  DEFAULT_MAX_BYTES,
  DEFAULT_MAX_LINES,
  detectFormat,
  type InputFormat,
  type PrepareOptions,
  type PrepareSummary,
  prepare,
} from './prepare/prepare.js';
export { type ApplyCounts, type ApplyOptions, applyResultLines } from './results/apply.js';
export {
  type ExpectedOutput,
  type Extraction,
  expectedOutput,
  extractResult,
  type ResultUsage,
} from './results/extract.js';
export { RESULT_STATUSES, type ResultStatus } from './results/ledger-rows.js';
export {
  loadOutputSchema,
  type OutputSchema,
  outputSchemaFromJsonSchema,
  setOutputSchema,
} from './results/output-schema.js';
export {
  type ResultError,
  type ResultRow,
  type ResultSourceOptions,
  resultSource,
} from './results/result-source.js';
export { type WriteResultsOptions, writeResults } from './results/write-results.js';
export { type LocalServer, type LocalServerOptions, startLocalServer } from './server/index.js';
export {
  type BatchSinkOptions,
  batchSink,
  csvSource,
  type EncodedRequest,
  jsonlEncode,
  jsonlSource,
  promptTemplate,
  type RequestEnvelope,
  validateRequests,
} from './streams.js';
export {
  compileRequestBuilder,
  derivedCustomId,
  type RequestTemplateOptions,
} from './transforms/request-builder.js';
export { compileTemplate } from './transforms/template.js';
export {
  ENDPOINTS,
  type Endpoint,
  type Envelope,
  type RecordProblem,
  type Reject,
  type RejectedRecord,
  type RequestLine,
  type SourceRecord,
} from './types.js';
export { FileRules, type FileRulesOptions } from './validate/file-rules.js';
export {
  checkRequestLine,
  embeddingInputCount,
  modelOf,
  type ValidationIssue,
} from './validate/request-schema.js';
export {
  type FileProblem,
  type FileSummary,
  validateJsonl,
  validateJsonlFile,
} from './validate/validate-files.js';
