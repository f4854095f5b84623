-- Sign-out ends sessions: a token carries the generation it was issued under and is honoured
-- only while it is the user's current one; signing out adds one. bigint because SQL has no
-- unsigned type; the CHECK keeps it within the domain's u32, so an increment past that fails
-- instead of storing a value the domain refuses. Existing users start at 0, like new ones.
ALTER TABLE users ADD COLUMN session_generation bigint NOT NULL DEFAULT 0
    CONSTRAINT users_session_generation_check CHECK (session_generation BETWEEN 0 AND 4294967295);
