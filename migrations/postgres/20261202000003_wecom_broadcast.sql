-- WeCom customer broadcast (企业微信客户群发). A customer is reached through the staff member who
-- has them as an external contact: `wecom_external_userid` is the customer's id in the chain's
-- WeCom, `wecom_userid` the staff member's. A message goes as a broadcast task that this staff
-- member confirms in their WeCom client (which doubles as approval): the revisit is `submitted`
-- with the task's `channel_ref` (its msgid) until the confirmation is seen.
ALTER TABLE customers
    ADD COLUMN wecom_external_userid  TEXT,
    ADD COLUMN wecom_userid           TEXT;

ALTER TABLE revisits DROP CONSTRAINT revisits_status_check;
ALTER TABLE revisits ADD CONSTRAINT revisits_status_check
    CHECK (status IN ('pending', 'generated', 'sending', 'submitted', 'sent', 'failed', 'skipped'));

ALTER TABLE revisits
    ADD COLUMN channel_ref   TEXT,
    ADD COLUMN submitted_at  TIMESTAMPTZ;
