-- When the payment in full completed, as the gateway reported it: the earliest of the times
-- its reports carried. NULL when none said (a free enrolment, a payment learned only by
-- asking the gateway, or a purchase stored before this column); readers then fall back to
-- created_at. Existing purchases keep NULL: their reports' times were not kept.
ALTER TABLE purchases ADD COLUMN paid_at timestamptz;
