-- SQLite twin of /migrations/2026-12-01-000001_user_session_generation: the user's session
-- generation (a token is honoured only while the generation it was issued under is current;
-- signing out adds one), kept within the domain's u32 by the CHECK. Existing users start at 0.
-- A column constraint, so that the down migration can drop the column.
ALTER TABLE users ADD COLUMN session_generation integer NOT NULL DEFAULT 0
    CONSTRAINT users_session_generation_check CHECK (session_generation BETWEEN 0 AND 4294967295);
