/**
 * Migration 2: stores (a tree per brand), people, grants, personal tokens,
 * sessions and login transactions, the audit log, pivot rules and requests;
 * models and signing log entries get their store. Existing brands get their
 * base store and models their store as store-migration.ts decides (the same
 * plan as LevelDB's layout 2), then the new columns become NOT NULL.
 */
import type { PoolClient } from 'pg'
import { planStores } from '../../store-migration.js'
import { brandFromRow, modelFromRow, STORE_COLUMNS, insertSql, storeParams } from '../rows.js'

export const before = `
CREATE TABLE stores (
  id                   text COLLATE "C" NOT NULL,
  brand_id             text COLLATE "C" NOT NULL,
  kind                 text NOT NULL,
  parent_id            text COLLATE "C",
  display_name         text NOT NULL,
  partner              json,
  require_pivot_review boolean NOT NULL,
  created_at           bigint NOT NULL,
  updated_at           bigint NOT NULL,
  CONSTRAINT stores_pkey PRIMARY KEY (id),
  CONSTRAINT stores_id_brand_key UNIQUE (id, brand_id),
  CONSTRAINT stores_brand_fkey FOREIGN KEY (brand_id) REFERENCES brands (id),
  CONSTRAINT stores_parent_fkey FOREIGN KEY (parent_id, brand_id) REFERENCES stores (id, brand_id)
);
CREATE INDEX stores_brand_idx ON stores (brand_id, id);

-- StoreRepository.version(): grows with every store write, across instances
CREATE TABLE stores_version (
  one     boolean NOT NULL DEFAULT true,
  version bigint NOT NULL,
  CONSTRAINT stores_version_pkey PRIMARY KEY (one),
  CONSTRAINT stores_version_one CHECK (one)
);
INSERT INTO stores_version (one, version) VALUES (true, 1);

ALTER TABLE models ADD COLUMN store_id text COLLATE "C";
ALTER TABLE signing_log ADD COLUMN store_id text COLLATE "C";
ALTER TABLE signing_log ADD COLUMN from_model text COLLATE "C";
ALTER TABLE serial_bindings ADD COLUMN pivoted_to json;
ALTER TABLE serial_bindings ADD COLUMN pivoted_from text;
ALTER TABLE signing_keys ADD COLUMN reason text;
ALTER TABLE signing_keys ADD COLUMN changed_at bigint;

ALTER TABLE admin_tokens RENAME TO tokens;
ALTER TABLE tokens RENAME CONSTRAINT admin_tokens_pkey TO tokens_pkey;
ALTER TABLE tokens ADD COLUMN kind text NOT NULL DEFAULT 'admin';
ALTER TABLE tokens ALTER COLUMN kind DROP DEFAULT;
ALTER TABLE tokens ADD COLUMN person_id text COLLATE "C";
ALTER TABLE tokens ADD COLUMN permissions text[];
ALTER TABLE tokens ADD COLUMN stores text[];
ALTER TABLE tokens ADD COLUMN expires_at bigint;
ALTER TABLE tokens ADD COLUMN revoked_at bigint;
ALTER TABLE tokens ADD COLUMN revoked_by text;
ALTER TABLE tokens ADD COLUMN last_used_at bigint;
CREATE INDEX tokens_person_idx ON tokens (person_id, hash) WHERE person_id IS NOT NULL;

CREATE TABLE people (
  id            text COLLATE "C" NOT NULL,
  email         text COLLATE "C" NOT NULL,
  display_name  text,
  disabled      boolean NOT NULL,
  identities    json NOT NULL,
  created_at    bigint NOT NULL,
  updated_at    bigint NOT NULL,
  last_login_at bigint,
  CONSTRAINT people_pkey PRIMARY KEY (id),
  CONSTRAINT people_email_key UNIQUE (email)
);

CREATE TABLE grants (
  person_id   text COLLATE "C" NOT NULL,
  store_id    text COLLATE "C" NOT NULL,
  role        text NOT NULL,
  inheritable boolean NOT NULL,
  granted_by  text NOT NULL,
  created_at  bigint NOT NULL,
  CONSTRAINT grants_pkey PRIMARY KEY (person_id, store_id),
  CONSTRAINT grants_person_fkey FOREIGN KEY (person_id) REFERENCES people (id),
  CONSTRAINT grants_store_fkey FOREIGN KEY (store_id) REFERENCES stores (id)
);
CREATE INDEX grants_store_idx ON grants (store_id, person_id);

CREATE TABLE sessions (
  hash            text COLLATE "C" NOT NULL,
  person_id       text COLLATE "C" NOT NULL,
  provider_id     text NOT NULL,
  created_at      bigint NOT NULL,
  expires_at      bigint NOT NULL,
  idle_expires_at bigint NOT NULL,
  ip              text,
  user_agent      text,
  CONSTRAINT sessions_pkey PRIMARY KEY (hash)
);
CREATE INDEX sessions_person_idx ON sessions (person_id);
CREATE INDEX sessions_expiry_idx ON sessions (expires_at);

CREATE TABLE login_transactions (
  id            text COLLATE "C" NOT NULL,
  provider_id   text NOT NULL,
  state         text NOT NULL,
  nonce         text NOT NULL,
  code_verifier text NOT NULL,
  return_to     text,
  created_at    bigint NOT NULL,
  expires_at    bigint NOT NULL,
  CONSTRAINT login_transactions_pkey PRIMARY KEY (id)
);
CREATE INDEX login_transactions_expiry_idx ON login_transactions (expires_at);

-- The audit chain: entry holds the whole AuditEntry; the other columns are
-- for filtering. audit_head is the chain's head, one row, locked FOR UPDATE
-- by every append, so appends from every instance form one chain.
CREATE TABLE audit_log (
  seq       bigint NOT NULL,
  logged_at bigint NOT NULL,
  action    text NOT NULL,
  outcome   text NOT NULL,
  brand_id  text COLLATE "C",
  store_id  text COLLATE "C",
  actor_id  text COLLATE "C" NOT NULL,
  entry     json NOT NULL,
  CONSTRAINT audit_log_pkey PRIMARY KEY (seq)
);
CREATE INDEX audit_log_store_idx ON audit_log (store_id, seq) WHERE store_id IS NOT NULL;
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, seq);
CREATE TABLE audit_head (
  one  boolean NOT NULL DEFAULT true,
  seq  bigint NOT NULL,
  hash text NOT NULL,
  CONSTRAINT audit_head_pkey PRIMARY KEY (one),
  CONSTRAINT audit_head_one CHECK (one)
);
INSERT INTO audit_head (one, seq, hash) VALUES (true, 0, '${'0'.repeat(64)}');

CREATE TABLE pivot_rules (
  id         text COLLATE "C" NOT NULL,
  brand_id   text COLLATE "C" NOT NULL,
  from_model text COLLATE "C" NOT NULL,
  to_model   text COLLATE "C" NOT NULL,
  store_id   text COLLATE "C" NOT NULL,
  -- '' means every serial of from_model
  serial     text COLLATE "C" NOT NULL,
  created_by text NOT NULL,
  created_at bigint NOT NULL,
  CONSTRAINT pivot_rules_pkey PRIMARY KEY (id),
  CONSTRAINT pivot_rules_key UNIQUE (brand_id, from_model, to_model, serial)
);
CREATE INDEX pivot_rules_store_idx ON pivot_rules (store_id, id);

CREATE TABLE pivot_requests (
  request_id    text COLLATE "C" NOT NULL,
  brand_id      text COLLATE "C" NOT NULL,
  from_model    text COLLATE "C" NOT NULL,
  to_model      text COLLATE "C" NOT NULL,
  store_id      text COLLATE "C" NOT NULL,
  serial        text COLLATE "C" NOT NULL,
  device_key_id text NOT NULL,
  status        text NOT NULL,
  created_at    bigint NOT NULL,
  decided_at    bigint,
  decided_by    text,
  reason        text,
  CONSTRAINT pivot_requests_pkey PRIMARY KEY (request_id)
);
CREATE INDEX pivot_requests_store_idx ON pivot_requests (store_id, created_at DESC);
`

/** Base stores for existing brands, stores of existing models and log entries, as LevelDB's layout 2 does. */
export async function data(c: PoolClient, now: number): Promise<void> {
  const brands = (await c.query('SELECT * FROM brands')).rows.map(brandFromRow)
  const models = (await c.query('SELECT * FROM models')).rows.map(modelFromRow)
  const plan = planStores(brands, models, now)
  // parents first (the base store of each brand is planned before its sub-stores)
  for (const st of plan.stores) await c.query(insertSql('stores', STORE_COLUMNS), storeParams(st))
  for (const [key, storeId] of plan.modelStore) {
    const i = key.indexOf('/')
    await c.query('UPDATE models SET store_id = $3 WHERE brand_id = $1 AND name = $2', [key.slice(0, i), key.slice(i + 1), storeId])
  }
  await c.query('UPDATE signing_log l SET store_id = m.store_id FROM models m WHERE l.brand_id = m.brand_id AND l.model = m.name')
}

export const after = `
ALTER TABLE models ALTER COLUMN store_id SET NOT NULL;
ALTER TABLE models ADD CONSTRAINT models_store_fkey FOREIGN KEY (store_id, brand_id) REFERENCES stores (id, brand_id);
CREATE INDEX models_store_idx ON models (store_id, brand_id, name);
CREATE INDEX signing_log_store_idx ON signing_log (store_id, id) WHERE store_id IS NOT NULL;
CREATE INDEX signing_log_device_key_idx ON signing_log (device_key_id, id) WHERE device_key_id IS NOT NULL;
`
