/**
 * The recording's SQLite schema, versioned with `PRAGMA user_version` and migrated
 * forward one named step at a time. `PRAGMA application_id` marks the file as ours so
 * that a foreign SQLite file is refused, not altered.
 */

/** 'RGTP' — set in every recording. */
export const APPLICATION_ID = 0x52475450;

export interface Migration {
  /** The user_version after this step. */
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial',
    sql: `
      CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
      );
      -- Bodies by content: small ones inline, large ones as files in NAME.blobs/<sha256>.
      CREATE TABLE bodies (
        sha256   TEXT PRIMARY KEY,
        size     INTEGER NOT NULL,
        inline   BLOB
      );
      CREATE TABLE flows (
        id               INTEGER PRIMARY KEY,
        uuid             TEXT NOT NULL UNIQUE,
        session          INTEGER NOT NULL,
        state            TEXT NOT NULL,
        scheme           TEXT NOT NULL,
        host             TEXT NOT NULL,
        port             INTEGER NOT NULL,
        method           TEXT NOT NULL,
        target           TEXT NOT NULL,
        http_version     TEXT NOT NULL,
        req_headers      TEXT NOT NULL,
        req_body_sha256  TEXT REFERENCES bodies(sha256),
        req_body_size    INTEGER,
        req_body_redacted INTEGER NOT NULL DEFAULT 0,
        status           INTEGER,
        reason           TEXT,
        res_http_version TEXT,
        res_headers      TEXT,
        res_body_sha256  TEXT REFERENCES bodies(sha256),
        res_body_size    INTEGER,
        res_body_redacted INTEGER NOT NULL DEFAULT 0,
        t_start          REAL NOT NULL,
        t_connect        REAL,
        t_tls            REAL,
        t_request_sent   REAL,
        t_first_byte     REAL,
        t_end            REAL,
        client_addr      TEXT,
        server_addr      TEXT,
        error            TEXT,
        req_bytes        INTEGER NOT NULL DEFAULT 0,
        res_bytes        INTEGER NOT NULL DEFAULT 0,
        facts            TEXT NOT NULL DEFAULT '{}'
      );
      CREATE INDEX flows_host ON flows(host);
      CREATE TABLE sessions (
        id         INTEGER PRIMARY KEY,
        started    REAL NOT NULL,
        ended      REAL,
        tool       TEXT NOT NULL,
        options    TEXT NOT NULL DEFAULT '{}'
      );
    `,
  },
  {
    version: 2,
    name: 'registry facts, marks and comments',
    sql: `
      ALTER TABLE flows ADD COLUMN registry TEXT;
      ALTER TABLE flows ADD COLUMN marked INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE flows ADD COLUMN comment TEXT;
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
