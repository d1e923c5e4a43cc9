/**
 * batchpipe's public API: the stages as streams, the whole `prepare` flow, the ledger, the
 * validators, the scheduler (submit, collect, drive, cancel, status over a provider, and its events),
 * the results (extraction, output schemas, applying result files, the result source, CSV/JSONL
 * output), and cost (token counts of request files, the price table, costs of tokens and usage).
 * Everything not exported here is internal.
 */
export { countRequestFile, type FileTokens } from './cost/file-tokens.js';
export {
  actualCost,
  type Cost,
  estimateCost,
  loadPriceTable,
  type PricePath,
  type PriceTable,
  usageCost,
} from './cost/prices.js';
export type { CostSettings } from './cost/run-cost.js';
export { openAiUsage } from './cost/usage.js';
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
export type {
  BatchCreatedEvent,
  BatchEndedEvent,
  BatchesCancellingEvent,
  BatchPolledEvent,
  BatchpipeEvent,
  BatchRedownloadEvent,
  EventListener,
  FileUploadedEvent,
  FileWrittenEvent,
  PrepareProgressEvent,
  RequestRetriedEvent,
  ResultsAppliedEvent,
  RunWaitingEvent,
} from './events.js';
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
export { type BackendName, type OpenProviderOptions, openProvider } from './providers/open-provider.js';
export {
  type BatchIntent,
  type BatchProvider,
  type CreateBatchRequest,
  type FindSince,
  type ProviderCapabilities,
  ProviderError,
  type RemoteFile,
  type UploadRequest,
} from './providers/port.js';
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
  type RejectedResultRow,
  type RequestResultRow,
  type ResultError,
  type ResultRow,
  type ResultSource,
  type ResultSourceOptions,
  resultSource,
} from './results/result-source.js';
export { type WriteResultsOptions, writeResults } from './results/write-results.js';
export {
  cancel,
  collect,
  type DirectSettings,
  type DriveCallOptions,
  drive,
  type SchedulerOptions,
  status,
  submit,
} from './scheduler/api.js';
export type { Budget } from './scheduler/budget.js';
export type { DriveResult } from './scheduler/drive.js';
export type { CostStatus, RunStatus } from './scheduler/status.js';
export { type LocalServer, type LocalServerOptions, startLocalServer } from './server/index.js';
export {
  type BatchSinkOptions,
  batchSink,
  csvSource,
  type EncodedLine,
  type EncodedRequest,
  jsonlEncode,
  jsonlSource,
  promptTemplate,
  type RequestEnvelope,
  type SourceOptions,
  type StageReject,
  type StreamRun,
  validateRequests,
} from './streams.js';
export {
  compileRequestBuilder,
  derivedCustomId,
  type RequestTemplateOptions,
} from './transforms/request-builder.js';
export { compileTemplate } from './transforms/template.js';
export type {
  BatchRequestCounts,
  BatchStatus,
  RemoteBatch,
  RemoteBatchError,
  RunIdentity,
  Usage,
} from './types.js';
export {
  ENDPOINTS,
  type Endpoint,
  type Envelope,
  PROVIDERS,
  type ProviderName,
  type RecordOrigin,
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
