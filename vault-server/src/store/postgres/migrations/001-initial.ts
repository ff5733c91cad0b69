/**
 * Migration 001: the initial schema. Runs inside the migration transaction
 * with `search_path` set to the store's schema, so names are unqualified.
 *
 * - Text keys that are listed or paged in order use COLLATE "C" (bytewise),
 *   the order LevelStore gives, whatever the database's default collation.
 * - Constraint names are part of the contract: postgres-store.ts maps a
 *   unique violation (SQLSTATE 23505) to an SV_* code by constraint name.
 * - Times are epoch milliseconds in bigint, as in the records.
 */
export const sql = `
CREATE TABLE brands (
  id                text COLLATE "C" NOT NULL,
  display_name      text NOT NULL,
  origin            text NOT NULL,
  account_assertion text NOT NULL,
  created_at        bigint NOT NULL,
  CONSTRAINT brands_pkey PRIMARY KEY (id)
);

CREATE TABLE signing_keys (
  key_id                text COLLATE "C" NOT NULL,
  account_id            text COLLATE "C" NOT NULL,
  purpose               text NOT NULL,
  name                  text NOT NULL,
  bits                  integer NOT NULL,
  account_key_assertion text NOT NULL,
  enabled               boolean NOT NULL,
  sealed                json NOT NULL,
  created_at            bigint NOT NULL,
  CONSTRAINT signing_keys_pkey PRIMARY KEY (key_id)
);
CREATE INDEX signing_keys_account_idx ON signing_keys (account_id, key_id);

CREATE TABLE models (
  brand_id         text COLLATE "C" NOT NULL,
  name             text COLLATE "C" NOT NULL,
  signing_key_id   text NOT NULL,
  api_key_hashes   text[] NOT NULL,
  serial_policy    json NOT NULL,
  duplicate_policy text NOT NULL,
  -- json, not jsonb: keeps the admin's header order and text exactly.
  model_headers    json NOT NULL,
  model_assertion  text NOT NULL,
  revision         integer NOT NULL,
  created_at       bigint NOT NULL,
  updated_at       bigint NOT NULL,
  CONSTRAINT models_pkey PRIMARY KEY (brand_id, name)
);
CREATE INDEX models_api_key_hashes_idx ON models USING gin (api_key_hashes);

CREATE TABLE consumed_request_ids (
  id         text NOT NULL,
  expires_at bigint NOT NULL,
  CONSTRAINT consumed_request_ids_pkey PRIMARY KEY (id)
);
CREATE INDEX consumed_request_ids_expiry_idx ON consumed_request_ids (expires_at);

CREATE TABLE serial_bindings (
  brand_id         text COLLATE "C" NOT NULL,
  model            text COLLATE "C" NOT NULL,
  serial           text COLLATE "C" NOT NULL,
  device_key_id    text COLLATE "C" NOT NULL,
  revision         integer NOT NULL,
  serial_assertion text NOT NULL,
  request_id       text NOT NULL,
  issued_at        bigint NOT NULL,
  released         boolean NOT NULL,
  CONSTRAINT serial_bindings_pkey PRIMARY KEY (brand_id, model, serial),
  CONSTRAINT serial_bindings_device_key_key UNIQUE (brand_id, model, device_key_id)
);

CREATE TABLE serial_sequences (
  brand_id    text NOT NULL,
  model       text NOT NULL,
  next_number bigint NOT NULL,
  CONSTRAINT serial_sequences_pkey PRIMARY KEY (brand_id, model)
);

-- Ordered and paged by id (time-ordered, see log-id.ts); each index ends with id
-- so that a filtered page is one index range scan.
CREATE TABLE signing_log (
  id             text COLLATE "C" NOT NULL,
  logged_at      bigint NOT NULL,
  outcome        text NOT NULL,
  code           text,
  brand_id       text COLLATE "C",
  model          text COLLATE "C",
  serial         text COLLATE "C",
  device_key_id  text,
  revision       integer,
  client_address text,
  request_id     text,
  transport      text,
  timings        json,
  message        text,
  CONSTRAINT signing_log_pkey PRIMARY KEY (id)
);
CREATE INDEX signing_log_serial_idx ON signing_log (serial, id) WHERE serial IS NOT NULL;
CREATE INDEX signing_log_model_idx ON signing_log (brand_id, model, id);
CREATE INDEX signing_log_brand_idx ON signing_log (brand_id, id);
CREATE INDEX signing_log_outcome_idx ON signing_log (outcome, id);

CREATE TABLE admin_tokens (
  hash       text COLLATE "C" NOT NULL,
  name       text NOT NULL,
  roles      text[] NOT NULL,
  created_at bigint NOT NULL,
  CONSTRAINT admin_tokens_pkey PRIMARY KEY (hash)
);

CREATE TABLE meta (
  name  text NOT NULL,
  value text NOT NULL,
  CONSTRAINT meta_pkey PRIMARY KEY (name)
);
`
