-- Every message is checked for another customer's full name: the check looks the message's
-- two-to-four-character runs up among persons' names.
CREATE INDEX persons_name ON persons (name);
