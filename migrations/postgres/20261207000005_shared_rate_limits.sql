-- Rate limits every worker process obeys together (store::rate_limits): a channel's or the
-- LLM's calls per second, and the LLM's calls at once.
--
-- Calls per second (GCRA): `tat` is when the next call may start; each call takes the next
-- start and moves it one interval on, so calls are spaced evenly across processes.
CREATE TABLE rate_limits (
    name  TEXT PRIMARY KEY,
    tat   TIMESTAMPTZ NOT NULL
);

-- Calls at once: one row per slot, held by a call with a lease; a process that dies holding
-- one loses it when the lease ends.
CREATE TABLE rate_slots (
    name    TEXT NOT NULL,
    slot    INTEGER NOT NULL,
    holder  TEXT,
    until   TIMESTAMPTZ,
    PRIMARY KEY (name, slot)
);
