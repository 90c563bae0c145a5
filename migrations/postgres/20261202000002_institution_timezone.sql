-- An institution away from the chain's time zone keeps its own (an IANA name); quiet hours
-- follow it. NULL: the chain's (`app.timezone`).
ALTER TABLE institutions ADD COLUMN timezone TEXT;
