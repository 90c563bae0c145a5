-- What the compliance check did to a revisit's message (a rewrite asked of the LLM, a fall
-- back to the template, and why), for staff and the report. NULL: the first text passed.
ALTER TABLE revisits ADD COLUMN compliance TEXT;
