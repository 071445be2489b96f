// ragworker's tables as a Drizzle ORM schema, for TypeScript apps that read them (and insert
// `files` rows): it matches what `ragworker migrate` creates, column for column, index for
// index and policy for policy; `tests/api/drizzle.rs` checks it against a migrated database.
//
// ragworker owns these tables: keep this file out of your drizzle-kit `schema` paths (or
// list only your own tables in `tablesFilter`), so `drizzle-kit push`/`generate` never tries
// to create, alter or drop them. Import it in your code like any schema module.
//
// What Drizzle cannot express stays with the migrations: the triggers (the ownership rule,
// NOTIFY, uploads that register themselves), the grants, ragworker's SQL functions.

import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  check,
  date,
  foreignKey,
  halfvec,
  index,
  integer,
  jsonb,
  numeric,
  pgEnum,
  pgPolicy,
  pgTable,
  pgView,
  primaryKey,
  text,
  timestamp,
  unique,
  uuid,
} from 'drizzle-orm/pg-core';
import { authenticatedRole, authUid } from 'drizzle-orm/supabase';

/** The embedding column's dimension: ragworker's `embedding.dimensions` (1536 for
 * text-embedding-3-small, 384 for the local model). Set it to yours. */
export const EMBEDDING_DIMENSIONS = Number(process.env.RAGWORKER_EMBEDDING_DIMENSIONS ?? 1536);

export const processingStatus = pgEnum('processing_status', [
  'pending',
  'processing',
  'completed',
  'failed',
]);

const createdAt = () => timestamp('created_at', { withTimezone: true }).notNull().defaultNow();

/** One uploaded document and its place in ragworker's queue. Apps insert rows with
 * `processingStatus` 'pending' (the default); ragworker sets every other status. */
export const files = pgTable(
  'files',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id').notNull(),
    orgId: uuid('org_id'),
    conversationId: uuid('conversation_id'),
    originalName: text('original_name').notNull(),
    storageBucket: text('storage_bucket').notNull(),
    /** `<user_id>/...` under the default ownership rule. */
    storagePath: text('storage_path').notNull(),
    mimeType: text('mime_type'),
    fileSize: bigint('file_size', { mode: 'number' }),
    processingStatus: processingStatus('processing_status').notNull().default('pending'),
    extractedText: text('extracted_text'),
    chunkCount: integer('chunk_count').notNull().default(0),
    attempts: integer('attempts').notNull().default(0),
    lastError: text('last_error'),
    // The queue's lease; written by ragworker only.
    lockedBy: text('locked_by'),
    lockedUntil: timestamp('locked_until', { withTimezone: true }),
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true }).notNull().defaultNow(),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    processedAt: timestamp('processed_at', { withTimezone: true }),
    // The fencing token of the current claim; written by ragworker only (reset on insert).
    claimSeq: bigint('claim_seq', { mode: 'number' }).notNull().default(0),
    // What the file's chunks were made from; written by ragworker only (reset on insert).
    contentSha256: text('content_sha256'),
    storageVersion: text('storage_version'),
    processedWith: jsonb('processed_with').$type<Record<string, unknown>>(),
  },
  (t) => [
    index('files_claimable_pending_idx')
      .on(t.nextAttemptAt)
      .where(sql`processing_status = 'pending'`),
    index('files_lease_expiry_idx')
      .on(t.lockedUntil)
      .where(sql`processing_status = 'processing'`),
    index('files_user_idx').on(t.userId),
    index('files_object_idx').on(t.storageBucket, t.storagePath),
    pgPolicy('files_owner', {
      for: 'all',
      to: authenticatedRole,
      using: sql`${authUid} = user_id`,
      withCheck: sql`${authUid} = user_id`,
    }),
    pgPolicy('files_org_read', {
      for: 'select',
      to: authenticatedRole,
      using: sql`org_id in (select public.ragworker_user_orgs())`,
    }),
  ],
);

/** A chunk of a file's text with its embedding. */
export const documentChunks = pgTable(
  'document_chunks',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    fileId: uuid('file_id').notNull(),
    userId: uuid('user_id').notNull(),
    orgId: uuid('org_id'),
    content: text('content').notNull(),
    chunkIndex: integer('chunk_index').notNull(),
    pageNumber: integer('page_number'),
    /** Heading path such as `Guide > Install > Linux`. */
    heading: text('heading'),
    tokenCount: integer('token_count').notNull(),
    embedding: halfvec('embedding', { dimensions: EMBEDDING_DIMENSIONS }).notNull(),
    embeddingModel: text('embedding_model').notNull(),
    /** `start_char` / `end_char`: offsets into `files.extracted_text`. */
    metadata: jsonb('metadata')
      .$type<{ start_char?: number; end_char?: number } & Record<string, unknown>>()
      .notNull()
      .default(sql`'{}'::jsonb`),
    createdAt: createdAt(),
    /** sha256 of exactly what was embedded (the text with its heading context). */
    contentHash: text('content_hash'),
    /**
     * Written by ragworker while the HNSW index exists: the chunk waits outside the index
     * (search scans it exactly) until the worker merges it (index.defer_max_rows).
     */
    indexPending: boolean('index_pending').notNull().default(false),
  },
  (t) => [
    foreignKey({
      name: 'document_chunks_file_id_fkey',
      columns: [t.fileId],
      foreignColumns: [files.id],
    }).onDelete('cascade'),
    unique('document_chunks_file_id_chunk_index_key').on(t.fileId, t.chunkIndex),
    index('document_chunks_user_idx').on(t.userId),
    // The HNSW index (document_chunks_embedding_idx, halfvec_cosine_ops, where not
    // index_pending) is not declared: ragworker builds it once the table holds
    // index.hnsw_min_rows chunks (the index policy).
    index('document_chunks_org_idx').on(t.orgId).where(sql`org_id is not null`),
    // The chunks waiting to be merged into the HNSW index, per tenant.
    index('document_chunks_pending_user_idx').on(t.userId).where(sql`index_pending`),
    index('document_chunks_pending_org_idx')
      .on(t.orgId)
      .where(sql`index_pending and org_id is not null`),
    // Full text, in the configuration `ragworker migrate` sets (search.text_search_config).
    index('document_chunks_fts_idx').using(
      'gin',
      sql`to_tsvector(public.ragworker_text_search_config(), content)`,
    ),
    pgPolicy('document_chunks_owner', {
      for: 'all',
      to: authenticatedRole,
      using: sql`${authUid} = user_id`,
      withCheck: sql`${authUid} = user_id`,
    }),
    pgPolicy('document_chunks_org_read', {
      for: 'select',
      to: authenticatedRole,
      using: sql`org_id in (select public.ragworker_user_orgs())`,
    }),
  ],
);

/** What embeddings cost, one row per processing of a file. */
export const usageLogs = pgTable(
  'usage_logs',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id').notNull(),
    orgId: uuid('org_id'),
    conversationId: uuid('conversation_id'),
    messageId: uuid('message_id'),
    action: text('action').notNull().default('embedding'),
    provider: text('provider').notNull(),
    model: text('model').notNull(),
    tokensUsed: bigint('tokens_used', { mode: 'number' }).notNull(),
    /** USD, as a decimal string (numeric(20, 10)). */
    costUsd: numeric('cost_usd', { precision: 20, scale: 10 }).notNull(),
    metadata: jsonb('metadata').$type<Record<string, unknown>>().notNull().default(sql`'{}'::jsonb`),
    createdAt: createdAt(),
  },
  (t) => [
    index('usage_logs_user_idx').on(t.userId, t.createdAt),
    index('usage_logs_file_idx').on(sql`(metadata ->> 'file_id')`),
    pgPolicy('usage_logs_owner', {
      for: 'select',
      to: authenticatedRole,
      using: sql`${authUid} = user_id`,
    }),
  ],
);

/** The key columns after the period and the counters `usage_metrics` and
 * `usage_metrics_monthly` share (the trigger adds the same sums to both). */
const usageCounters = () => ({
    provider: text('provider').notNull(),
    model: text('model').notNull(),
    action: text('action').notNull(),
    tokens: bigint('tokens', { mode: 'number' }).notNull().default(0),
    unconfirmedTokens: bigint('unconfirmed_tokens', { mode: 'number' }).notNull().default(0),
    requests: bigint('requests', { mode: 'number' }).notNull().default(0),
    files: bigint('files', { mode: 'number' }).notNull().default(0),
    /** USD, as a decimal string (numeric(20, 10)). */
    costUsd: numeric('cost_usd', { precision: 20, scale: 10 }).notNull().default(sql`0`),
    events: bigint('events', { mode: 'number' }).notNull().default(0),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

/** Usage per user, organisation, UTC day, provider, model and action: the sums of
 * `usage_logs` for those keys, kept equal to them by a trigger on usage_logs. Users read
 * their own rows, organisation members their organisation's; nobody writes it. */
export const usageMetrics = pgTable(
  'usage_metrics',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id').notNull(),
    orgId: uuid('org_id'),
    day: date('day').notNull(),
    month: date('month')
      .notNull()
      .generatedAlwaysAs(sql`date_trunc('month', day::timestamp)::date`),
    ...usageCounters(),
  },
  (t) => [
    unique('usage_metrics_key')
      .on(t.userId, t.orgId, t.day, t.provider, t.model, t.action)
      .nullsNotDistinct(),
    index('usage_metrics_user_month_idx').on(t.userId, t.month),
    index('usage_metrics_org_month_idx')
      .on(t.orgId, t.month)
      .where(sql`org_id is not null`),
    pgPolicy('usage_metrics_read', {
      for: 'select',
      to: authenticatedRole,
      using: sql`${authUid} = user_id or org_id in (select public.ragworker_user_orgs())`,
    }),
  ],
);

/** `usage_metrics` per month (`month` is its first day, UTC), kept by the same trigger: what
 * `monthly_usage_summary` reads. */
export const usageMetricsMonthly = pgTable(
  'usage_metrics_monthly',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id').notNull(),
    orgId: uuid('org_id'),
    month: date('month').notNull(),
    ...usageCounters(),
  },
  (t) => [
    unique('usage_metrics_monthly_key')
      .on(t.userId, t.month, t.orgId, t.provider, t.model, t.action)
      .nullsNotDistinct(),
    index('usage_metrics_monthly_org_idx')
      .on(t.orgId, t.month)
      .where(sql`org_id is not null`),
    pgPolicy('usage_metrics_monthly_read', {
      for: 'select',
      to: authenticatedRole,
      using: sql`${authUid} = user_id or org_id in (select public.ragworker_user_orgs())`,
    }),
  ],
);

/** The columns the usage views share with `usage_metrics`. */
const usageTotals = {
  orgId: uuid('org_id'),
  userId: uuid('user_id').notNull(),
  provider: text('provider').notNull(),
  model: text('model').notNull(),
  action: text('action').notNull(),
  tokens: bigint('tokens', { mode: 'number' }).notNull(),
  unconfirmedTokens: bigint('unconfirmed_tokens', { mode: 'number' }).notNull(),
  requests: bigint('requests', { mode: 'number' }).notNull(),
  files: bigint('files', { mode: 'number' }).notNull(),
  /** USD, as a decimal string. */
  costUsd: numeric('cost_usd').notNull(),
  events: bigint('events', { mode: 'number' }).notNull(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull(),
};

/** A month's usage (`month` is its first day) per user, organisation, provider, model and
 * action; RLS of `usage_metrics` applies (security_invoker). */
export const monthlyUsageSummary = pgView('monthly_usage_summary', {
  month: date('month').notNull(),
  ...usageTotals,
})
  .with({ securityInvoker: true })
  .as(
    sql`select month, org_id, user_id, provider, model, action, tokens, unconfirmed_tokens,
       requests, files, cost_usd, events, updated_at
from usage_metrics_monthly`,
  );

/** Today's (UTC) rows of `usage_metrics`; RLS applies (security_invoker). */
export const currentDayUsage = pgView('current_day_usage', {
  day: date('day').notNull(),
  ...usageTotals,
})
  .with({ securityInvoker: true })
  .as(
    sql`select day, org_id, user_id, provider, model, action, tokens, unconfirmed_tokens, requests,
       files, cost_usd, events, updated_at
from usage_metrics
where month = date_trunc('month', now() at time zone 'UTC')::date
  and day = (now() at time zone 'UTC')::date`,
  );

/** The cost ledger: one row per embedding request and file, written before the request is
 * sent; `usage_logs` rows are rolled up from it. The operator's table: app users have no
 * access (RLS on, no policy, no grants). */
export const embeddingRequests = pgTable(
  'embedding_requests',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    requestId: uuid('request_id').notNull(),
    fileId: uuid('file_id').notNull(),
    claimSeq: bigint('claim_seq', { mode: 'number' }).notNull(),
    attempt: integer('attempt').notNull(),
    retry: integer('retry').notNull().default(0),
    workerId: text('worker_id').notNull(),
    userId: uuid('user_id').notNull(),
    orgId: uuid('org_id'),
    conversationId: uuid('conversation_id'),
    provider: text('provider').notNull(),
    model: text('model').notNull(),
    inputs: integer('inputs').notNull(),
    /** USD per million tokens when the request was sent, as a decimal string. */
    pricePerMillionUsd: numeric('price_per_million_usd').notNull().default('0'),
    tokensCounted: bigint('tokens_counted', { mode: 'number' }).notNull(),
    tokensBilled: bigint('tokens_billed', { mode: 'number' }),
    status: text('status', { enum: ['sent', 'billed', 'refused'] }).notNull().default('sent'),
    httpStatus: integer('http_status'),
    sentAt: timestamp('sent_at', { withTimezone: true }).notNull().defaultNow(),
    answeredAt: timestamp('answered_at', { withTimezone: true }),
    settledAt: timestamp('settled_at', { withTimezone: true }),
  },
  (t) => [
    index('embedding_requests_open_idx')
      .on(t.fileId, t.claimSeq)
      .where(sql`settled_at is null`),
    index('embedding_requests_sent_idx').on(t.sentAt),
    check('embedding_requests_status_check', sql`${t.status} in ('sent', 'billed', 'refused')`),
  ],
).enableRLS();

/** The buckets files rows may name, and the rule their paths follow (`ragworker migrate`
 * writes it from the configuration). */
export const ragworkerBuckets = pgTable(
  'ragworker_buckets',
  {
    bucket: text('bucket').primaryKey(),
    ownership: text('ownership', { enum: ['user_folder', 'server_only'] })
      .notNull()
      .default('user_folder'),
    registerUploads: boolean('register_uploads').notNull().default(false),
  },
  (t) => [
    check('ragworker_buckets_ownership_check', sql`${t.ownership} in ('user_folder', 'server_only')`),
    pgPolicy('ragworker_buckets_read', {
      for: 'select',
      to: authenticatedRole,
      using: sql`true`,
    }),
  ],
);

/** Who belongs to which organisation: members read and search the organisation's files and
 * chunks. Written by the app's server (service role), read by its members. */
export const orgMembers = pgTable(
  'org_members',
  {
    orgId: uuid('org_id').notNull(),
    userId: uuid('user_id').notNull(),
    role: text('role', { enum: ['owner', 'admin', 'member'] }).notNull().default('member'),
    createdAt: createdAt(),
  },
  (t) => [
    primaryKey({ name: 'org_members_pkey', columns: [t.orgId, t.userId] }),
    index('org_members_user_idx').on(t.userId),
    check('org_members_role_check', sql`${t.role} in ('owner', 'admin', 'member')`),
    pgPolicy('org_members_own', {
      for: 'select',
      to: authenticatedRole,
      using: sql`${authUid} = user_id`,
    }),
  ],
);

export type File = typeof files.$inferSelect;
export type NewFile = typeof files.$inferInsert;
export type DocumentChunk = typeof documentChunks.$inferSelect;
export type UsageLog = typeof usageLogs.$inferSelect;
export type EmbeddingRequest = typeof embeddingRequests.$inferSelect;
export type UsageMetric = typeof usageMetrics.$inferSelect;
export type UsageMetricMonthly = typeof usageMetricsMonthly.$inferSelect;
export type MonthlyUsage = typeof monthlyUsageSummary.$inferSelect;
export type DayUsage = typeof currentDayUsage.$inferSelect;

/** A row of `search_similar_chunks(query_embedding, user_id, match_threshold, match_count)`
 * and of `search_org_chunks(query_embedding, org_id, match_threshold, match_count)`. */
export interface SimilarChunk {
  id: string;
  file_id: string;
  file_name: string;
  content: string;
  chunk_index: number;
  page_number: number | null;
  heading: string | null;
  similarity: number;
}

/** A row of `hybrid_search_chunks(query_text, query_embedding, user_id, match_count,
 * full_text_weight, semantic_weight, rrf_k)`: the fused score beside the similarity. */
export interface HybridChunk extends SimilarChunk {
  score: number;
}
