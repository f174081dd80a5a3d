/*
 * media_store.h — the images of organizations (catalog issue, item 6), in
 * MongoDB GridFS: bucket "media", laid out exactly as the GridFS spec says,
 * so any GridFS driver (mongoc_gridfs_bucket_*, mongofiles --prefix media)
 * reads them.
 *
 *   media.chunks    {_id: ObjectId, files_id: image id, n, data: binary} —
 *                   MQ_MEDIA_CHUNK_SIZE bytes each, the last one shorter.
 *   media.files     {_id: image id, length, chunkSize, uploadDate, filename,
 *                    — the GridFS fields — and ours: organization_id,
 *                    event_id, mime_type, width, height, sha256, alt_text,
 *                    created_by, event_ids[], _outbox}
 *   media_pending   {_id: image id, organization_id, at} — "chunks may exist
 *                    under this id that no files document owns"
 *   media_deletions {_id: image id, organization_id, by, at, _outbox} — the
 *                    record (and ImageDeleted event) of a deletion
 *
 * Why GridFS written chunk by chunk rather than through
 * mongoc_gridfs_bucket_open_upload_stream: an upload arrives over many gRPC
 * messages, possibly minutes apart; the bucket's stream would hold a pooled
 * MongoDB client for all that time. Here each chunk is one insert on a
 * client borrowed for that insert only, and the files document — which is
 * what makes a GridFS file exist — is written last. FerretDB 1.24 handles
 * all of it (checked: the bucket API reads back what is written here).
 *
 * Life of an upload (handlers/catalog/media.c):
 *   1. mq_media_pending_begin — before the first chunk is written;
 *   2. mq_media_put_chunk n = 0, 1, … under the new id (nobody refers to it);
 *   3. mq_media_commit — the files document with ImageUploaded in its outbox:
 *      from this insert on the image exists, never before;
 *   4. mq_media_pending_end.
 * Any failure before 3: mq_media_discard (chunks deleted unless a files
 * document exists). A process that dies between 1 and 4 leaves the pending
 * record: mq_media_sweep, run by every server's probe thread, discards
 * uploads pending for longer than the grace period (handlers bound an upload
 * to far less), and so completes anything a crash interrupted.
 * `event_ids` lists the events this service attached the image to (upload
 * with an event, SetCoverImage): what DeleteImage must detach it from.
 * Read next: handlers/catalog/media.c.
 */
#ifndef MEDIA_STORE_H
#define MEDIA_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/mq_arena.h"
#include "store/mq_outbox.h"
#include "store/mq_store.h"

/* The GridFS default chunk size (255 KiB): below MongoDB's 16 MiB document
 * limit with room to spare, and what drivers write. */
#define MQ_MEDIA_CHUNK_SIZE (255 * 1024)

typedef struct mq_image {
  const char *id, *organization_id, *event_id, *filename, *mime_type, *sha256, *alt_text, *created_by;
  uint32_t width, height;
  int64_t size_bytes;     /* GridFS "length" */
  int32_t chunk_size;     /* GridFS "chunkSize" */
  int64_t created_ms;     /* GridFS "uploadDate" */
  const char **event_ids; /* events it may be attached to (read only) */
  size_t n_event_ids;
} mq_image_t;

extern const mq_index_spec_t mq_media_indexes[];
extern const size_t mq_media_n_indexes;

/* Records that chunks of `image_id` may exist without a files document. */
mq_code_t mq_media_pending_begin(mq_store_t *s, const char *image_id, const char *organization_id, int64_t at_ms,
                                 mq_error_t *err);
/* Drops that record (the upload is committed or discarded). */
mq_code_t mq_media_pending_end(mq_store_t *s, const char *image_id, mq_error_t *err);

/* Inserts chunk `n` of `image_id`. */
mq_code_t mq_media_put_chunk(mq_store_t *s, const char *image_id, uint32_t n, const void *data, size_t len,
                             mq_error_t *err);

/* Inserts the files document of `img` (every field set; event_ids as given)
 * with `ev` in its outbox: the image exists from here on. */
mq_code_t mq_media_commit(mq_store_t *s, const mq_image_t *img, const mq_event_t *ev, mq_error_t *err);

/* An upload that will not be committed: deletes the chunks of `image_id`
 * unless its files document exists (a commit whose answer was lost), then
 * the pending record. Idempotent. */
mq_code_t mq_media_discard(mq_store_t *s, const char *image_id, mq_error_t *err);

/* The image with this id (strings copied into `a`). NOT_FOUND (field
 * "image_id") if absent. */
mq_code_t mq_media_get(mq_store_t *s, const char *image_id, mq_arena_t *a, mq_image_t *out, mq_error_t *err);

/* Adds `event_id` to the image's event_ids (no duplicates). NOT_FOUND if
 * the image is gone. */
mq_code_t mq_media_track_event(mq_store_t *s, const char *image_id, const char *event_id, mq_error_t *err);

/* Deletes image img->id: writes the deletion record carrying `ev` and any
 * of the image's outbox entries not yet delivered (so deleting right after
 * uploading cannot lose ImageUploaded; a copy delivered twice is deduped by
 * event id), marks the chunks pending (at 0: sweepable at once), deletes
 * the files document, then the chunks, then the mark. NOT_FOUND if it was
 * deleted already. After a failure part-way a retry completes the deletion
 * without a second event, and the sweep deletes chunks left behind. */
mq_code_t mq_media_delete(mq_store_t *s, const mq_image_t *img, const char *by, const mq_event_t *ev, mq_error_t *err);

typedef struct mq_media_query {
  const char *organization_id;
  const char *event_id; /* NULL: any */
  bool has_cursor;      /* strictly after (after_ms, after_id), newest first */
  int64_t after_ms;
  const char *after_id;
  uint32_t limit; /* out[] has room for this many */
} mq_media_query_t;

/* The organization's images by (uploadDate, _id) descending, after the cursor. */
mq_code_t mq_media_list(mq_store_t *s, const mq_media_query_t *q, mq_arena_t *a, mq_image_t *out, size_t *n,
                        mq_error_t *err);

/* Chunk `n` of `image_id` into a malloc'ed *data (caller frees), *len bytes.
 * NOT_FOUND if absent. For the HTTP route, which has no arena. */
mq_code_t mq_media_read_chunk(mq_store_t *s, const char *image_id, uint32_t n, void **data, size_t *len,
                              mq_error_t *err);

/* Discards every upload pending since before `older_than_ms` (see above).
 * Returns how many it completed; stops at the first store error. */
size_t mq_media_sweep(mq_store_t *s, int64_t older_than_ms);

#endif
