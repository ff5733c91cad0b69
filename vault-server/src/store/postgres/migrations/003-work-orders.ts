/**
 * Migration 3: work orders (issue 10). Models may require one; bindings and
 * signing log entries name the order they were issued under (or that a
 * refusal concerns). `provisioned` is counted in the binding's transaction
 * under the order's row lock (PgRegistrations.bind).
 */
export const sql = `
CREATE TABLE work_orders (
  id               text COLLATE "C" NOT NULL,
  brand_id         text COLLATE "C" NOT NULL,
  model            text COLLATE "C" NOT NULL,
  store_id         text COLLATE "C" NOT NULL,
  planned_quantity integer NOT NULL,
  serials          json NOT NULL,
  stations         text[],
  not_before       bigint NOT NULL,
  not_after        bigint NOT NULL,
  status           text NOT NULL,
  provisioned      integer NOT NULL,
  created_by       text NOT NULL,
  created_at       bigint NOT NULL,
  updated_at       bigint NOT NULL,
  closed_at        bigint,
  closed_by        text,
  reason           text,
  CONSTRAINT work_orders_pkey PRIMARY KEY (id),
  CONSTRAINT work_orders_provisioned_check CHECK (provisioned <= planned_quantity)
);
CREATE INDEX work_orders_model_idx ON work_orders (brand_id, model, id);
CREATE INDEX work_orders_store_idx ON work_orders (store_id, id);

ALTER TABLE models ADD COLUMN require_work_order boolean NOT NULL DEFAULT false;
ALTER TABLE serial_bindings ADD COLUMN work_order_id text COLLATE "C";
ALTER TABLE signing_log ADD COLUMN work_order_id text COLLATE "C";
CREATE INDEX signing_log_work_order_idx ON signing_log (work_order_id, id) WHERE work_order_id IS NOT NULL;
`
