-- local.sql — what marquee-ferretdb adds to FerretDB's PostgreSQL database
-- (applied at every start; idempotent). See main.go and docs/ARCHITECTURE.md.
--
-- Invariants:
--   1. Every btree index FerretDB creates on a top-level field, (_jsonb -> 'f'),
--      has a GIN sibling on the same expression, created in the same DDL
--      transaction by an event trigger: FerretDB's equality pushdown is
--      `_jsonb -> 'f' @> value`, which only GIN serves. Without GIN's pending
--      list (fastupdate off): with it, a burst of inserts left lookups
--      scanning the list until the next vacuum (5 ms instead of 0.5 at
--      100,000 documents, measured).
--   2. Every document of a FerretDB collection carries `_rev` (a long, 0 at
--      insert, +1 per update). An update whose new document carries a `_rev`
--      other than the stored one was computed from a stale read: it is refused
--      with SQLSTATE 40001 and changes nothing. A replacement without `_rev`
--      (a whole document from the client) is applied and stamped.
--   3. FerretDB's own metadata tables and capped collections are left alone.

CREATE SCHEMA IF NOT EXISTS marquee_local;

CREATE OR REPLACE FUNCTION marquee_local.with_rev(doc jsonb, rev bigint) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $f$
  SELECT jsonb_set(jsonb_set(
           CASE WHEN doc #> '{$s,$k}' @> '["_rev"]' THEN doc
                ELSE jsonb_set(doc, '{$s,$k}', (doc #> '{$s,$k}') || '["_rev"]') END,
           '{$s,p,_rev}', '{"t":"long"}'),
         '{_rev}', to_jsonb(rev))
$f$;

CREATE OR REPLACE FUNCTION marquee_local.rev() RETURNS trigger
LANGUAGE plpgsql AS $f$
DECLARE
  old_rev bigint := 0;
BEGIN
  IF TG_OP = 'UPDATE' THEN
    old_rev := coalesce((OLD._jsonb->>'_rev')::bigint, 0);
    IF NEW._jsonb ? '_rev' AND (NEW._jsonb->>'_rev')::bigint <> old_rev THEN
      RAISE EXCEPTION 'marquee: write conflict: the document changed since it was read'
        USING ERRCODE = 'serialization_failure';
    END IF;
    old_rev := old_rev + 1;
  END IF;
  NEW._jsonb := marquee_local.with_rev(NEW._jsonb, old_rev);
  RETURN NEW;
END
$f$;

CREATE OR REPLACE FUNCTION marquee_local.adopt_index(idx oid) RETURNS void
LANGUAGE plpgsql AS $f$
DECLARE
  tbl regclass;
  expr text;
BEGIN
  SELECT i.indrelid::regclass, pg_get_indexdef(i.indexrelid, 1, true) INTO tbl, expr
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
   WHERE i.indexrelid = idx AND a.amname = 'btree';
  IF expr IS NULL OR expr !~ '^\(_jsonb -> ''[^'']+''::text\)$'
     OR (SELECT relname FROM pg_class WHERE oid = tbl) = '_ferretdb_database_metadata' THEN
    RETURN;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
              WHERE i.indrelid = tbl AND a.amname = 'gin' AND pg_get_indexdef(i.indexrelid, 1, true) = expr) THEN
    RETURN;
  END IF;
  EXECUTE format('CREATE INDEX %I ON %s USING gin (%s) WITH (fastupdate = off)',
                 'mq_gin_' || tbl::oid || '_' || left(md5(expr), 12), tbl, expr);
END
$f$;

CREATE OR REPLACE FUNCTION marquee_local.adopt_table(tbl regclass) RETURNS void
LANGUAGE plpgsql AS $f$
DECLARE
  idx oid;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = tbl AND attname = '_jsonb' AND NOT attisdropped)
     OR EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = tbl AND attname = '_ferretdb_record_id')
     OR (SELECT relname FROM pg_class WHERE oid = tbl) = '_ferretdb_database_metadata' THEN
    RETURN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = tbl AND tgname = 'marquee_rev') THEN
    EXECUTE format('CREATE TRIGGER marquee_rev BEFORE INSERT OR UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION marquee_local.rev()', tbl);
  END IF;
  FOR idx IN SELECT indexrelid FROM pg_index WHERE indrelid = tbl LOOP
    PERFORM marquee_local.adopt_index(idx);
  END LOOP;
END
$f$;

CREATE OR REPLACE FUNCTION marquee_local.on_ddl() RETURNS event_trigger
LANGUAGE plpgsql AS $f$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
    IF r.command_tag = 'CREATE TABLE' AND r.object_type = 'table' THEN
      PERFORM marquee_local.adopt_table(r.objid);
    ELSIF r.command_tag = 'CREATE INDEX' AND r.object_type = 'index' THEN
      PERFORM marquee_local.adopt_index(r.objid);
    END IF;
  END LOOP;
END
$f$;

DROP EVENT TRIGGER IF EXISTS marquee_local_ddl;
CREATE EVENT TRIGGER marquee_local_ddl ON ddl_command_end WHEN TAG IN ('CREATE TABLE', 'CREATE INDEX')
  EXECUTE FUNCTION marquee_local.on_ddl();

SELECT marquee_local.adopt_table(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'marquee_local');

-- GIN siblings made before fastupdate was turned off
DO $f$
DECLARE
  i regclass;
BEGIN
  FOR i IN SELECT c.oid FROM pg_class c JOIN pg_am a ON a.oid = c.relam
            WHERE c.relkind = 'i' AND a.amname = 'gin' AND c.relname LIKE 'mq_gin_%'
              AND NOT coalesce(c.reloptions @> ARRAY['fastupdate=off'], false) LOOP
    EXECUTE format('ALTER INDEX %s SET (fastupdate = off)', i);
  END LOOP;
END
$f$;
