-- A token may expire (`revisit tokens create --expires-days N`): after `expires_at` it is
-- refused like a revoked one. NULL: it lasts until revoked.
ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;
