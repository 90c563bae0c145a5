-- Change capture for the projections; see the PostgreSQL migration of the same name. SQLite
-- has row triggers only: one row here per written row, its key as a one-element JSON array.

CREATE TABLE changes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,
    keys        TEXT NOT NULL,
    changed_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE projection_backlog (
    batch       TEXT PRIMARY KEY,
    projection  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    keys        INTEGER NOT NULL,
    oldest      TEXT NOT NULL
);

CREATE INDEX projection_backlog_projection ON projection_backlog (projection, oldest);

CREATE TRIGGER institutions_changes_insert AFTER INSERT ON institutions
BEGIN INSERT INTO changes (kind, keys) VALUES ('institution', json_array(CAST(NEW.id AS TEXT))); END;
CREATE TRIGGER institutions_changes_update AFTER UPDATE ON institutions
BEGIN INSERT INTO changes (kind, keys) VALUES ('institution', json_array(CAST(NEW.id AS TEXT))); END;
CREATE TRIGGER doctors_changes_insert AFTER INSERT ON doctors
BEGIN INSERT INTO changes (kind, keys) VALUES ('doctor', json_array(CAST(NEW.id AS TEXT))); END;
CREATE TRIGGER doctors_changes_update AFTER UPDATE ON doctors
BEGIN INSERT INTO changes (kind, keys) VALUES ('doctor', json_array(CAST(NEW.id AS TEXT))); END;
CREATE TRIGGER projects_changes_insert AFTER INSERT ON projects
BEGIN INSERT INTO changes (kind, keys) VALUES ('project', json_array(CAST(NEW.id AS TEXT))); END;
CREATE TRIGGER projects_changes_update AFTER UPDATE ON projects
BEGIN INSERT INTO changes (kind, keys) VALUES ('project', json_array(CAST(NEW.id AS TEXT))); END;
CREATE TRIGGER products_changes_insert AFTER INSERT ON products
BEGIN INSERT INTO changes (kind, keys) VALUES ('product', json_array(CAST(NEW.id AS TEXT))); END;
CREATE TRIGGER products_changes_update AFTER UPDATE ON products
BEGIN INSERT INTO changes (kind, keys) VALUES ('product', json_array(CAST(NEW.id AS TEXT))); END;
CREATE TRIGGER persons_changes_insert AFTER INSERT ON persons
BEGIN INSERT INTO changes (kind, keys) VALUES ('person', json_array(CAST(NEW.id AS TEXT))); END;
CREATE TRIGGER persons_changes_update AFTER UPDATE ON persons
BEGIN INSERT INTO changes (kind, keys) VALUES ('person', json_array(CAST(NEW.id AS TEXT))); END;
CREATE TRIGGER customers_changes_insert AFTER INSERT ON customers
BEGIN INSERT INTO changes (kind, keys) VALUES ('customer', json_array(CAST(NEW.id AS TEXT))); END;
CREATE TRIGGER customers_changes_update AFTER UPDATE ON customers
BEGIN INSERT INTO changes (kind, keys) VALUES ('customer', json_array(CAST(NEW.id AS TEXT))); END;
CREATE TRIGGER consumption_records_changes_insert AFTER INSERT ON consumption_records
BEGIN INSERT INTO changes (kind, keys)
      VALUES ('order', json_array(CAST(NEW.institution_id AS TEXT) || '/' || NEW.order_number)); END;
CREATE TRIGGER consumption_records_changes_update AFTER UPDATE ON consumption_records
BEGIN INSERT INTO changes (kind, keys)
      VALUES ('order', json_array(CAST(NEW.institution_id AS TEXT) || '/' || NEW.order_number)); END;
CREATE TRIGGER revisits_changes_insert AFTER INSERT ON revisits
BEGIN INSERT INTO changes (kind, keys) VALUES ('revisit', json_array(CAST(NEW.id AS TEXT))); END;
CREATE TRIGGER revisits_changes_update AFTER UPDATE ON revisits
BEGIN INSERT INTO changes (kind, keys) VALUES ('revisit', json_array(CAST(NEW.id AS TEXT))); END;
