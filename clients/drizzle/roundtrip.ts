// A typed round trip through ragworker's tables with Drizzle, as an app does it; driven by
// tests/api/drizzle.rs around a worker run:
//   tsx roundtrip.ts insert FILE_ID USER_ID BUCKET PATH   register an upload, as the user (RLS)
//   tsx roundtrip.ts read FILE_ID                          read it back typed, and search
// DATABASE_URL names the database. Prints one JSON object.

import { asc, eq, sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';

import { documentChunks, files, type DocumentChunk, type NewFile, type SimilarChunk } from './schema.ts';

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
const db = drizzle(pool);
const [command, ...args] = process.argv.slice(2);

if (command === 'insert') {
  const [id, userId, bucket, path] = args;
  const row: NewFile = {
    id,
    userId,
    originalName: path.split('/').pop() ?? path,
    storageBucket: bucket,
    storagePath: path,
    mimeType: 'text/plain',
  };
  // As the signed-in user, the way a Supabase app runs it under Row Level Security.
  const inserted = await db.transaction(async (tx) => {
    await tx.execute(
      sql`select set_config('request.jwt.claims', ${JSON.stringify({ sub: userId, role: 'authenticated' })}, true)`,
    );
    await tx.execute(sql`set local role authenticated`);
    return tx.insert(files).values(row).returning({ id: files.id, status: files.processingStatus });
  });
  console.log(JSON.stringify(inserted[0]));
} else if (command === 'read') {
  const [id] = args;
  const [file] = await db.select().from(files).where(eq(files.id, id));
  const chunks: DocumentChunk[] = await db
    .select()
    .from(documentChunks)
    .where(eq(documentChunks.fileId, id))
    .orderBy(asc(documentChunks.chunkIndex));
  const query: number[] = chunks[0].embedding;
  // A number[] interpolated into sql`` would become a record: send the vector's text form.
  const hits = await db.execute<SimilarChunk & Record<string, unknown>>(
    sql`select * from search_similar_chunks(${JSON.stringify(query)}::halfvec, ${file.userId}::uuid, -1, 3)`,
  );
  const top: SimilarChunk = hits.rows[0];
  console.log(
    JSON.stringify({
      status: file.processingStatus,
      chunkCount: file.chunkCount,
      chunks: chunks.length,
      dimensions: query.length,
      firstContent: chunks[0].content,
      startChar: chunks[0].metadata.start_char ?? null,
      top: { fileId: top.file_id, chunkIndex: top.chunk_index, similarity: Number(top.similarity) },
    }),
  );
} else {
  console.error(`usage: tsx roundtrip.ts insert|read ...`);
  process.exitCode = 2;
}
await pool.end();
