/*
 * notes_store.h — repository of the `diag_notes` collection, written by
 * DiagnosticsService.RecordNote: the platform's end-to-end probe of
 * write → outbox → Kafka → consumer. A note is inserted once with its
 * NoteRecorded event in the same document (mq_outbox.h) and never updated
 * by handlers (only the relay removes delivered outbox entries).
 */
#ifndef NOTES_STORE_H
#define NOTES_STORE_H

#include "core/mq_arena.h"
#include "store/mq_outbox.h"
#include "store/mq_store.h"

#define MQ_NOTES_COLLECTION "diag_notes"

typedef struct mq_note {
  const char *id;
  const char *author;
  const char *text;
  int64_t created_ms;
} mq_note_t;

extern const mq_index_spec_t mq_notes_indexes[];
extern const size_t mq_notes_n_indexes;

/* Inserts the note and its events in one write. ALREADY_EXISTS on a
 * duplicate id; STORE_UNAVAILABLE when the database cannot be reached. */
mq_code_t mq_notes_insert(mq_store_t *s, const mq_note_t *note, const mq_event_t *evs, size_t n_evs, mq_error_t *err);
/* Reads a note; strings are copied into `a`. NOT_FOUND if absent. */
mq_code_t mq_notes_get(mq_store_t *s, const char *id, mq_arena_t *a, mq_note_t *out, mq_error_t *err);

#endif
